#!/bin/busybox sh
# /init of the nova_pyvirt test guest (PID 1, busybox ash).
#
# Reports what the guest sees on /dev/console (the serial port with
# console=ttyS0) using the line protocol described in README.md, then keeps
# polling for hot-plugged / unplugged disks and NICs until it is powered
# off.  Like a cloud image, it reads a config drive (label config-2) if there
# is one (hostname, SSH keys, static addresses, user data) and starts an SSH
# server, configures every NIC with a DHCP client (or the static address
# network_data.json gives it) and serves a known string over HTTP on port 80.
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

# --- config drive ----------------------------------------------------------
# As cloud-init's ConfigDrive source: the file system labelled config-2 (an
# iso9660 CD-ROM or a vfat disk) is mounted read-only on /mnt/config and its
# openstack/latest/*.json give the hostname, the SSH keys and the static
# addresses; user_data runs later, once the NICs are configured.  Without a
# config drive only "PYVIRT-CONFIG-DRIVE none" is printed and nothing else
# changes.
CONFIG_MNT=/mnt/config
CONFIG_RUN=/run/config-drive
CONFIG_DRIVE=0

# json_flatten FILE: one "path<TAB>value" line per scalar of a JSON document
# (busybox has no JSON parser).  path joins object keys and array indexes
# with dots (public_keys.mykey, links.0.ethernet_mac_address); strings are
# unescaped, and a string holding newlines gives one line per line of text.
json_flatten() {
    awk '
    function hexval(h,   i, v) {
        v = 0
        for (i = 1; i <= length(h); i++)
            v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
        return v
    }
    function utf8(c) {
        if (c < 128) return sprintf("%c", c)
        if (c < 2048)
            return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
        return sprintf("%c%c%c", 224 + int(c / 4096),
                       128 + int(c / 64) % 64, 128 + c % 64)
    }
    function path(   i, p) {
        p = ""
        for (i = 1; i <= depth; i++) p = p (i > 1 ? "." : "") key[i]
        return p
    }
    function emit(p, v,   n, i, lines) {
        n = split(v, lines, "\n")
        if (n == 0) print p "\t"
        for (i = 1; i <= n; i++)
            if (lines[i] != "" || n == 1) print p "\t" lines[i]
    }
    { doc = doc $0 "\n" }
    END {
        n = length(doc); i = 1; depth = 0; want_key = 0
        while (i <= n) {
            c = substr(doc, i, 1)
            if (c == "{") { key[++depth] = ""; type[depth] = "o"; want_key = 1; i++ }
            else if (c == "[") { key[++depth] = 0; type[depth] = "a"; i++ }
            else if (c == "}" || c == "]") { depth--; i++ }
            else if (c == ",") {
                if (type[depth] == "a") key[depth]++; else want_key = 1
                i++
            }
            else if (c == ":") { want_key = 0; i++ }
            else if (c == " " || c == "\t" || c == "\n" || c == "\r") i++
            else if (c == "\"") {
                s = ""; i++
                while (i <= n) {
                    c = substr(doc, i, 1)
                    if (c == "\"") { i++; break }
                    if (c == "\\") {
                        e = substr(doc, i + 1, 1)
                        if (e == "u") {
                            s = s utf8(hexval(substr(doc, i + 2, 4))); i += 6
                            continue
                        }
                        if (e == "n") e = "\n"
                        else if (e == "t") e = "\t"
                        else if (e == "r") e = "\r"
                        else if (e == "b" || e == "f") e = ""
                        s = s e; i += 2
                        continue
                    }
                    if (match(substr(doc, i), /^[^"\\]+/)) {
                        s = s substr(doc, i, RLENGTH); i += RLENGTH
                    } else {
                        s = s c; i++
                    }
                }
                if (type[depth] == "o" && want_key) key[depth] = s
                else emit(path(), s)
            } else {
                # number, true, false or null
                if (match(substr(doc, i), /^[^],} \t\n\r]+/) < 1) RLENGTH = 1
                emit(path(), substr(doc, i, RLENGTH)); i += RLENGTH
            }
        }
    }' "$1"
}

# json_get FLAT PATH: the value(s) at PATH of a flattened document.
json_get() {
    awk -v p="$2" 'BEGIN { FS = "\t" } $1 == p {
        sub(/^[^\t]*\t/, ""); print }' "$1"
}

find_config_drive() {
    for label in config-2 CONFIG-2; do
        dev=$(findfs "LABEL=$label" 2>/dev/null) && [ -b "$dev" ] && {
            echo "$dev"
            return 0
        }
    done
    return 1
}

config_drive() {
    mkdir -p "$CONFIG_MNT" "$CONFIG_RUN"
    if ! dev=$(find_config_drive); then
        echo "PYVIRT-CONFIG-DRIVE none"
        return 1
    fi
    fs=-
    for t in iso9660 vfat; do
        if mount -t "$t" -o ro "$dev" "$CONFIG_MNT" 2>/dev/null; then
            fs=$t
            break
        fi
    done
    if [ "$fs" = - ]; then
        echo "PYVIRT-CONFIG-DRIVE dev=${dev#/dev/} fs=- uuid=- error=mount-failed"
        return 1
    fi
    md="$CONFIG_MNT/openstack/latest/meta_data.json"
    if [ ! -r "$md" ]; then
        echo "PYVIRT-CONFIG-DRIVE dev=${dev#/dev/} fs=$fs uuid=- error=no-meta_data.json"
        return 1
    fi
    json_flatten "$md" > "$CONFIG_RUN/meta_data"
    uuid=$(json_get "$CONFIG_RUN/meta_data" uuid | head -n 1)
    echo "PYVIRT-CONFIG-DRIVE dev=${dev#/dev/} fs=$fs uuid=${uuid:--}"
    CONFIG_DRIVE=1
    return 0
}

# Hostname: meta_data's "hostname" (nova's "<hostname>.<dhcp_domain>"); as
# cloud-init does, the host name is its first label and /etc/hosts maps the
# full name.
config_hostname() {
    fqdn=$(json_get "$CONFIG_RUN/meta_data" hostname | head -n 1 |
           tr -cd 'A-Za-z0-9.-')
    if [ -z "$fqdn" ]; then
        echo "PYVIRT-HOSTNAME none"
        return
    fi
    short=${fqdn%%.*}
    if hostname "$short"; then
        echo "$short" > /etc/hostname
        printf '127.0.0.1 localhost\n127.0.1.1 %s %s\n' "$fqdn" "$short" \
            > /etc/hosts
        echo "PYVIRT-HOSTNAME name=$short fqdn=$fqdn"
    else
        echo "PYVIRT-HOSTNAME name=$short error=failed"
    fi
}

# SSH keys: every line of every "public_keys" value.
config_keys() {
    mkdir -p /root/.ssh
    chmod 0700 /root /root/.ssh
    awk 'BEGIN { FS = "\t" } $1 ~ /^public_keys\./ {
        sub(/^[^\t]*\t/, ""); if ($0 ~ /[^ ]/) print }' \
        "$CONFIG_RUN/meta_data" > /root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
    echo "PYVIRT-KEYS count=$(wc -l < /root/.ssh/authorized_keys)"
}

# network_data.json: a NIC whose MAC has an "ipv4" (static) network gets
# that address and its default route instead of DHCP; written as
# $NET_RUN/static.<mac>: "address/prefix gateway|-".
config_network() {
    nd="$CONFIG_MNT/openstack/latest/network_data.json"
    if [ ! -r "$nd" ]; then
        echo "PYVIRT-NETWORK-DATA none"
        return
    fi
    json_flatten "$nd" > "$CONFIG_RUN/network_data"
    awk 'BEGIN { FS = "\t" }
    {
        n = split($1, p, ".")
        if (p[1] == "links" && p[3] == "id") link_id[p[2]] = $2
        if (p[1] == "links" && p[3] == "ethernet_mac_address")
            link_mac[p[2]] = tolower($2)
        if (p[1] == "networks" && n == 3) net[p[2], p[3]] = $2
        if (p[1] == "networks" && p[3] == "routes" && n == 5)
            route[p[2], p[4], p[5]] = $2
        if (p[1] == "networks" && n == 3 && p[3] == "id") nets[p[2]] = 1
        if (p[1] == "links" && p[3] == "id") links++
    }
    END {
        for (i in nets) {
            type = net[i, "type"]
            if (type == "ipv4_dhcp" || type == "dhcp4") dhcp++
            if (type != "ipv4") continue
            mac = ""
            for (l in link_id) if (link_id[l] == net[i, "link"]) mac = link_mac[l]
            if (mac == "" || net[i, "ip_address"] == "") continue
            gw = "-"
            for (r = 0; (i, r, "network") in route; r++)
                if (route[i, r, "network"] == "0.0.0.0") gw = route[i, r, "gateway"]
            print mac, net[i, "ip_address"], net[i, "netmask"], gw
            static++
        }
        printf "#links=%d dhcp=%d static=%d\n", links, dhcp, static
    }' "$CONFIG_RUN/network_data" > "$CONFIG_RUN/static"
    while read -r mac ip mask gw; do
        case "$mac" in '#'*) continue ;; esac
        eval "$(ipcalc -p "$ip" "$mask")"
        echo "$ip/$PREFIX $gw" > "$NET_RUN/static.$mac"
    done < "$CONFIG_RUN/static"
    echo "PYVIRT-NETWORK-DATA $(sed -n 's/^#//p' "$CONFIG_RUN/static")"
}

# SSH server: dropbear with a host key made at boot, public keys only
# (root's authorized_keys).
start_ssh() {
    mkdir -p /etc/dropbear /dev/pts
    mount -t devpts devpts /dev/pts 2>/dev/null
    key=/etc/dropbear/dropbear_ed25519_host_key
    if ! dropbearkey -t ed25519 -f "$key" > /run/dropbearkey.log 2>&1; then
        echo "PYVIRT-SSH port=22 failed (dropbearkey, see /run/dropbearkey.log)"
        return
    fi
    # -F -E: foreground, log to /run/dropbear.log; -s: no passwords.
    dropbear -F -E -s -p 22 -r "$key" -P /run/dropbear.pid \
        > /run/dropbear.log 2>&1 &
    i=0
    while [ $i -lt 50 ]; do
        if netstat -ltn 2>/dev/null | grep -q ':22 '; then
            echo "PYVIRT-SSH port=22 started"
            return
        fi
        kill -0 $! 2>/dev/null || break
        usleep 100000
        i=$((i + 1))
    done
    echo "PYVIRT-SSH port=22 failed ($(tail -n 1 /run/dropbear.log))"
}

# user_data: run when it is a script (starts with #!), once the NICs
# present at boot have been configured (or given up on).
run_user_data() {
    ud="$CONFIG_MNT/openstack/latest/user_data"
    if [ ! -r "$ud" ]; then
        echo "PYVIRT-USERDATA none"
        return
    fi
    if [ "$(head -c 2 "$ud")" != '#!' ]; then
        echo "PYVIRT-USERDATA skipped (not a #! script)"
        return
    fi
    i=0
    while [ $i -lt 600 ]; do
        pending=0
        while read -r n _; do
            [ -e "$NET_RUN/$n.done" ] || pending=1
        done < "$NET_RUN/boot-nics"
        [ $pending = 0 ] && break
        usleep 100000
        i=$((i + 1))
    done
    cp "$ud" /run/user-data
    chmod 0700 /run/user-data
    (cd / && HOME=/root /run/user-data) > /run/user-data.log 2>&1 < /dev/null
    echo "PYVIRT-USERDATA status=$?"
}

NET_RUN=/run/pyvirt-net
mkdir -p "$NET_RUN"
if config_drive; then
    config_hostname
    config_keys
    config_network
fi

# --- network ---------------------------------------------------------------
# Every NIC (other than lo) present after boot or hot-plugged later is
# brought up and configured by DHCP (busybox udhcpc), in the background so
# that a slow or absent DHCP server holds up nothing else.  The result is one
# PYVIRT-NET line per NIC; busybox httpd serves /srv/www on port 80.
mkdir -p /srv/www /etc/pyvirt
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

# net_up NAME MAC [EXTRA]: bring NAME up, run DHCP (or set the static
# address network_data.json gave its MAC), print its line.
net_up() {
    n=$1
    mac=$2
    extra=$3
    rm -f "$NET_RUN/$n.addr" "$NET_RUN/$n.done"
    ip link set "$n" up
    if [ -r "$NET_RUN/static.$mac" ]; then
        read -r cidr gw < "$NET_RUN/static.$mac"
        ip -4 addr flush dev "$n"
        ip addr add "$cidr" dev "$n" && echo "$cidr" > "$NET_RUN/$n.addr"
        if [ "$gw" != - ] && ! ip route show | grep -q '^default'; then
            ip route add default via "$gw" dev "$n"
        fi
    else
        udhcpc -f -q -n -t 20 -T 1 -A 1 -i "$n" \
            -s /etc/pyvirt/udhcpc.script >/dev/null 2>&1
    fi
    addr=-
    [ -r "$NET_RUN/$n.addr" ] && addr=$(cat "$NET_RUN/$n.addr")
    extra=${extra:+ $extra}
    echo "PYVIRT-NET name=$n mac=$mac$extra addr=$addr"
    : > "$NET_RUN/$n.done"
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
cp "$NET_RUN/known" "$NET_RUN/boot-nics"
# While the NICs get their addresses: the SSH server, then user_data.
if [ "$CONFIG_DRIVE" = 1 ]; then
    start_ssh
    run_user_data &
fi

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

# --- pyvirt.dirty=RATE[:SIZE] -----------------------------------------------
# A load for live migration benches: rewrite RATE MiB of memory per second,
# going round a SIZE MiB buffer (default 16) on a tmpfs of its own.  The
# data is random (QEMU sends zero pages as a flag, not as data), and the
# pace comes from /proc/uptime, so a slow dd call is made up for on the
# next tick; a backlog of more than one second (the guest was paused) is
# dropped.
uptime_cs() {
    read -r up _ < /proc/uptime
    echo $(( ${up%%.*} * 100 + 1${up#*.} - 100 ))
}

dirty_memory() {
    rate=$1
    size=$2
    pages=$((size * 256))
    per_s=$((rate * 256))
    dir=/run/dirty
    mkdir -p $dir
    # The root file system may use half of the memory at most: the
    # buffer gets a tmpfs of its own, sized for it.
    if ! mount -t tmpfs -o size=$((size + 2))m tmpfs $dir; then
        echo "PYVIRT-DIRTY error=mount-failed"
        return
    fi
    head -c 1048576 /dev/urandom > $dir/src
    i=0
    while [ $i -lt "$size" ]; do
        cat $dir/src || break
        i=$((i + 1))
    done > $dir/buf
    if [ $i -lt "$size" ]; then
        echo "PYVIRT-DIRTY error=no-memory size=$size"
        return
    fi
    echo "PYVIRT-DIRTY rate=$rate size=$size started"
    start=$(uptime_cs)
    done_pages=0
    off=0
    while :; do
        due=$(( ($(uptime_cs) - start) * per_s / 100 ))
        if [ $((due - done_pages)) -gt "$per_s" ]; then
            done_pages=$((due - per_s))
        fi
        while [ "$done_pages" -lt "$due" ]; do
            n=$((due - done_pages))
            [ $n -gt 256 ] && n=256
            [ $((off + n)) -gt $pages ] && n=$((pages - off))
            dd if=$dir/src of=$dir/buf bs=4096 count=$n \
                seek=$off conv=notrunc 2>/dev/null
            off=$(( (off + n) % pages ))
            done_pages=$((done_pages + n))
        done
        usleep 100000
    done
}

DIRTY=$(sed -n 's/^pyvirt\.dirty=//p' /run/cmdline.args | tail -n 1)
if [ -n "$DIRTY" ]; then
    rate=${DIRTY%%:*}
    size=16
    case "$DIRTY" in *:*) size=${DIRTY#*:} ;; esac
    case "$rate:$size" in
        *[!0-9:]*|:*|*:|0:*|*:0)
            echo "PYVIRT-DIRTY error=bad-value value=$DIRTY" ;;
        *) dirty_memory "$rate" "$size" & ;;
    esac
fi

# --- pyvirt.watch=DEV ------------------------------------------------------
# The first line of DEV every second, read past the guest's page cache
# (O_DIRECT): a test sees that the guest still reaches the disk's storage,
# e.g. a volume after a live migration, through the new host's connection.
sed -n 's/^pyvirt\.watch=//p' /run/cmdline.args > /run/pyvirt.watch
if [ -s /run/pyvirt.watch ]; then
    (
        n=0
        while :; do
            n=$((n + 1))
            while read -r d; do
                m=$(dd if="/dev/$d" bs=512 count=1 iflag=direct 2>/dev/null |
                    head -n 1 | tr -cd '\040-\176')
                echo "PYVIRT-DISK-READ name=$d n=$n marker=${m:--}"
            done < /run/pyvirt.watch
            sleep 1
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
