#!/bin/busybox sh
# /init of the nova_pyvirt test guest (PID 1, busybox ash).
#
# Reports what the guest sees on /dev/console (the serial port with
# console=ttyS0) using the line protocol described in README.md, then keeps
# polling for hot-plugged / unplugged disks and NICs until it is powered
# off.  Like a cloud image, it configures every NIC with a DHCP client and
# serves a known string over HTTP on port 80.
#
# This file is copied verbatim into the initramfs by build.py.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

/bin/busybox mkdir -p /proc /sys /dev /run /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
# Applet symlinks are created at build time; fall back to creating them here.
[ -x /bin/sh ] || /bin/busybox --install -s
exec </dev/console >/dev/console 2>&1

echo "PYVIRT-GUEST: boot start"
echo "PYVIRT-GUEST: kernel $(uname -r)"

# --- kernel command line -------------------------------------------------
# Split /proc/cmdline the way the kernel does (double quotes group words),
# one argument per line.
awk '{
    s = $0; n = length(s); arg = ""; q = 0; have = 0
    for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (c == "\"") { q = !q; have = 1; continue }
        if (!q && (c == " " || c == "\t")) {
            if (have) print arg
            arg = ""; have = 0; continue
        }
        arg = arg c; have = 1
    }
    if (have) print arg
}' /proc/cmdline > /run/cmdline.args

POWEROFF=0
KMSG=0
: > /run/pyvirt.writes
while IFS= read -r arg; do
    case "$arg" in
        pyvirt.poweroff=1) POWEROFF=1 ;;
        pyvirt.write=*) echo "${arg#pyvirt.write=}" >> /run/pyvirt.writes ;;
        pyvirt.kmsg=1|loglevel=*|debug|ignore_loglevel) KMSG=1 ;;
    esac
done < /run/cmdline.args

# Keep informational kernel messages (hot-plug, disk capacity...) off the
# console so they do not interleave with the protocol lines.  Warnings and
# errors still show.  pyvirt.kmsg=1 / loglevel= / debug leave it alone.
[ "$KMSG" = 1 ] || echo 4 > /proc/sys/kernel/printk

# --- modules ---------------------------------------------------------------
# /etc/pyvirt/modules lists "name [param=value...]" in dependency order
# (written by build.py).
loaded=""
failed=""
while read -r mod params; do
    [ -n "$mod" ] || continue
    # shellcheck disable=SC2086 # params are separate words on purpose
    if insmod "/lib/modules/pyvirt/$mod.ko" $params >/dev/null 2>&1; then
        loaded="$loaded,$mod"
    else
        failed="$failed,$mod"
    fi
done < /etc/pyvirt/modules
loaded=${loaded#,}
failed=${failed#,}
echo "PYVIRT-MODULES loaded=${loaded:--} failed=${failed:--}"

# --- ACPI power button -----------------------------------------------------
# button.ko + evdev.ko expose the ACPI power button as /dev/input/eventN;
# busybox acpid maps KEY_POWER to "PWRF/00000080" and runs
# /etc/acpi/PWRF/00000080.  acpid only opens the event devices that exist
# when it starts, so give the input devices a moment to appear.
mkdir -p /etc/acpi/PWRF
cat > /etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
echo "PYVIRT-GUEST: acpi shutdown" > /dev/console
sync
poweroff -f
EOF
chmod 0755 /etc/acpi/PWRF/00000080
i=0
while [ $i -lt 20 ] && ! ls /dev/input/event* >/dev/null 2>&1; do
    usleep 100000
    i=$((i + 1))
done
if ls /dev/input/event* >/dev/null 2>&1; then
    acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid \
        -a /run/acpid.conf -M /run/acpi.map
    echo "PYVIRT-GUEST: acpid started"
else
    echo "PYVIRT-GUEST: acpid not started (no /dev/input/event*)"
fi

# --- disks -----------------------------------------------------------------
# scsi_mod is loaded with scan=sync, but sd_mod/sr_mod still bind
# asynchronously: wait (up to ~5 s) until every SCSI disk (type 0) and CD-ROM
# (type 5) has its block device, so the initial report below is complete.
i=0
while [ $i -lt 50 ]; do
    pending=0
    for t in /sys/bus/scsi/devices/*/type; do
        [ -r "$t" ] || continue
        case "$(cat "$t")" in 0|5) ;; *) continue ;; esac
        [ -d "${t%/type}/block" ] || pending=1
    done
    [ $pending = 0 ] && break
    usleep 100000
    i=$((i + 1))
done

is_reported_disk() {
    case "$1" in
        ram*|loop*|'*') return 1 ;;
    esac
    return 0
}

disk_serial() {
    d=$1
    for f in "/sys/block/$d/serial" "/sys/block/$d/device/serial"; do
        [ -r "$f" ] || continue
        s=$(tr -cd '\041-\176' < "$f" 2>/dev/null)
        [ -n "$s" ] && { echo "$s"; return; }
    done
    # SCSI: unit serial number VPD page (4 byte header, then the serial).
    f="/sys/block/$d/device/vpd_pg80"
    if [ -r "$f" ]; then
        s=$(dd if="$f" bs=1 skip=4 2>/dev/null | tr -cd '\041-\176')
        [ -n "$s" ] && { echo "$s"; return; }
    fi
    echo -
}

disk_size() {
    s=$(cat "/sys/block/$1/size" 2>/dev/null)
    echo $(( ${s:-0} * 512 ))
}

disk_marker() {
    if [ -b "/dev/$1" ]; then
        m=$(dd if="/dev/$1" bs=512 count=1 2>/dev/null | head -n 1 |
            tr -cd '\040-\176')
        [ -n "$m" ] && { echo "$m"; return; }
    fi
    echo -
}

# report_disk NAME [EXTRA]: one PYVIRT-DISK line; marker is always last and
# runs to the end of the line (it may contain spaces).
report_disk() {
    d=$1
    extra=$2
    # A freshly hot-plugged disk may show up in sysfs a moment before its
    # device node; wait up to ~2 s for it.
    i=0
    while [ $i -lt 20 ] && [ ! -b "/dev/$d" ]; do
        usleep 100000
        i=$((i + 1))
    done
    serial=$(disk_serial "$d")
    size=$(disk_size "$d")
    marker=$(disk_marker "$d")
    extra=${extra:+ $extra}
    echo "PYVIRT-DISK name=$d serial=$serial size=$size$extra marker=$marker"
}

# Identity of every current disk: "name sysfs-path" (the path changes when a
# different device reuses the name).
list_disks() {
    for p in /sys/block/*; do
        d=${p##*/}
        is_reported_disk "$d" || continue
        echo "$d $(readlink "$p")"
    done
}

list_disks > /run/disks.known
while read -r d path; do
    report_disk "$d"
done < /run/disks.known

# --- pyvirt.write=DISK:TEXT --------------------------------------------------
while IFS= read -r spec; do
    [ -n "$spec" ] || continue
    d=${spec%%:*}
    text=${spec#*:}
    ok=0
    if [ -b "/dev/$d" ]; then
        printf '%s\n' "$text" |
            dd of="/dev/$d" conv=notrunc,fsync 2>/dev/null && ok=1
    fi
    if [ $ok = 1 ]; then
        sync
        blockdev --flushbufs "/dev/$d" 2>/dev/null
        echo "PYVIRT-WROTE $d"
    else
        echo "PYVIRT-WRITE-FAILED $d"
    fi
done < /run/pyvirt.writes

echo "PYVIRT-GUEST: ready"

if [ "$POWEROFF" = 1 ]; then
    echo "PYVIRT-GUEST: poweroff"
    sync
    poweroff -f
fi

# --- network ---------------------------------------------------------------
# Every NIC (other than lo) present after boot or hot-plugged later is
# brought up and configured by DHCP (busybox udhcpc), in the background so
# that a slow or absent DHCP server holds up nothing else.  The result is one
# PYVIRT-NET line per NIC; busybox httpd serves /srv/www on port 80.
NET_RUN=/run/pyvirt-net
mkdir -p "$NET_RUN" /srv/www /etc/pyvirt
echo "PYVIRT-HTTP hello from the test guest" > /srv/www/index.html
cat > /etc/pyvirt/udhcpc.script <<'SCRIPT'
#!/bin/sh
# udhcpc event script: configure $interface, record the address.
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        prefix=$mask
        if [ -z "$prefix" ]; then
            eval "$(ipcalc -p "$ip" "$subnet")"
            prefix=$PREFIX
        fi
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/$prefix" dev "$interface"
        if [ -n "$router" ] && ! ip route show | grep -q '^default'; then
            # shellcheck disable=SC2086 # the first router only
            set -- $router
            ip route add default via "$1" dev "$interface"
        fi
        echo "$ip/$prefix" > "/run/pyvirt-net/$interface.addr"
        ;;
esac
exit 0
SCRIPT
chmod 0755 /etc/pyvirt/udhcpc.script
ip link set lo up
NET_HTTPD=0

# net_up NAME MAC [EXTRA]: bring NAME up, run DHCP, print its line.
net_up() {
    n=$1
    mac=$2
    extra=$3
    rm -f "$NET_RUN/$n.addr"
    ip link set "$n" up
    udhcpc -f -q -n -t 20 -T 1 -A 1 -i "$n" -s /etc/pyvirt/udhcpc.script \
        >/dev/null 2>&1
    addr=-
    [ -r "$NET_RUN/$n.addr" ] && addr=$(cat "$NET_RUN/$n.addr")
    extra=${extra:+ $extra}
    echo "PYVIRT-NET name=$n mac=$mac$extra addr=$addr"
}

# Identity of every NIC: "name sysfs-path" (as for disks).
list_nics() {
    for p in /sys/class/net/*; do
        n=${p##*/}
        case "$n" in lo|'*') continue ;; esac
        echo "$n $(readlink "$p")"
    done
}

# net_poll [EXTRA]: bring up the NICs that are new since the last call,
# report those that are gone.
: > "$NET_RUN/known"
net_poll() {
    list_nics > "$NET_RUN/now"
    while read -r n path; do
        grep -qxF "$n $path" "$NET_RUN/now" ||
            echo "PYVIRT-NET name=$n event=removed"
    done < "$NET_RUN/known"
    while read -r n path; do
        grep -qxF "$n $path" "$NET_RUN/known" && continue
        if [ "$NET_HTTPD" = 0 ]; then
            httpd -p 80 -h /srv/www && NET_HTTPD=1
        fi
        mac=$(cat "/sys/class/net/$n/address" 2>/dev/null)
        net_up "$n" "${mac:--}" "$1" &
    done < "$NET_RUN/now"
    mv "$NET_RUN/now" "$NET_RUN/known"
}
net_poll

# --- pyvirt.counter=1 -------------------------------------------------------
# A line every 100 ms with a sequence number and the boot id, for live
# migration tests: the count goes on across a migration without a reboot
# (same boot id), and the gap in it shows the guest's pause.
if grep -qx 'pyvirt.counter=1' /run/cmdline.args; then
    (
        boot=$(cat /proc/sys/kernel/random/boot_id)
        n=0
        while :; do
            n=$((n + 1))
            echo "PYVIRT-COUNTER $n boot=$boot"
            usleep 100000
        done
    ) &
fi

# --- hot-plug watch --------------------------------------------------------
uptime_s() {
    read -r up _ < /proc/uptime
    echo "${up%%.*}"
}

next_alive=$(( $(uptime_s) + 10 ))
while :; do
    sleep 1
    list_disks > /run/disks.now
    while read -r d path; do
        grep -qxF "$d $path" /run/disks.now ||
            echo "PYVIRT-DISK name=$d event=removed"
    done < /run/disks.known
    while read -r d path; do
        grep -qxF "$d $path" /run/disks.known || report_disk "$d" event=added
    done < /run/disks.now
    mv /run/disks.now /run/disks.known
    net_poll event=added
    now=$(uptime_s)
    if [ "$now" -ge "$next_alive" ]; then
        read -r up _ < /proc/uptime
        echo "PYVIRT-GUEST: alive $up"
        next_alive=$(( now + 10 ))
    fi
done
