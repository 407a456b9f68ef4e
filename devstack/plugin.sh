#!/bin/bash
#
# plugin.sh - DevStack plugin of nova-pyvirt
#
# Installs the nova-pyvirt compute driver into a private prefix,
# $PYVIRT_VROOT ($DEST/vroot): a Python venv with nova and the driver
# (bin/, lib/), configuration (etc/), instances and the image cache
# (var/lib/), and the plugin's own log (var/log/stack.log). nova.conf gets
# compute_driver = pyvirt.PyVirtDriver and a [pyvirt] section, and
# nova-compute runs from the vroot. Root is used for distro packages and
# for libvirt access of the stack user only. doc/source/devstack.rst has
# the details, including every file written outside $DEST.
#
# DevStack sources this file (in its own shell, under "set -o errexit")
# with the mode and phase as arguments:
#
#   stack pre-install   [1/7] distro packages  [2/7] libvirt access
#   stack install       [3/7] python packages  [4/7] tools and sample config
#   stack post-config   [5/7] nova.conf
#   stack extra         [6/7] driver check     [7/7] nova-compute
#   unstack             stop the nova-compute this plugin started
#   clean               unstack, undo nova.conf and group changes, remove
#                       the vroot and the build files left in the checkout
#
# Each step prints one numbered line; the output of the commands it runs
# goes to $PYVIRT_VROOT/var/log/stack.log. A failing step prints its name
# and the end of that log, and stops stack.sh.

# Save trace setting
_XTRACE_NOVA_PYVIRT=$(set +o | grep xtrace)
set +o xtrace

PYVIRT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYVIRT_LOG=$PYVIRT_VROOT/var/log/stack.log
PYVIRT_STATE_DIR=$PYVIRT_VROOT/var/lib/nova-pyvirt
PYVIRT_CONF_DIR=$PYVIRT_VROOT/etc/nova-pyvirt
PYVIRT_COMPUTE_DRIVER=pyvirt.PyVirtDriver
# [pyvirt] options this plugin writes (and removes again on clean).
PYVIRT_NOVA_OPTIONS="virt_type connection_uri images_type instances_path"


# Steps, logging and failures
# ---------------------------

# _pyvirt_begin mode number total description
function _pyvirt_begin {
    local mode=$1
    PYVIRT_STEP="[$2/$3]"
    PYVIRT_STEP_NAME=$4
    PYVIRT_STEP_LINE="nova-pyvirt ${mode:+$mode }$PYVIRT_STEP"
    PYVIRT_STEP_LINE+=" $PYVIRT_STEP_NAME"
    mkdir -p "$(dirname "$PYVIRT_LOG")"
    printf '\n=== %s %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" \
        "$PYVIRT_STEP_LINE" >>"$PYVIRT_LOG"
    echo_summary "$PYVIRT_STEP_LINE"
}

# _pyvirt_note text: an indented detail line under the current step.
function _pyvirt_note {
    echo "    $*" >>"$PYVIRT_LOG"
    echo_summary "    $*"
}

# _pyvirt_fail status message...: report the failed step with the end of
# the log and stop (die exits stack.sh with that status).
function _pyvirt_fail {
    local status=$1 message="${*:2}"
    local tail=${PYVIRT_LOG_TAIL:-25}
    echo "!!! $message" >>"$PYVIRT_LOG"
    echo_summary "$PYVIRT_STEP_LINE: FAILED"
    {
        echo "nova-pyvirt: step $PYVIRT_STEP '$PYVIRT_STEP_NAME' failed:" \
            "$message"
        if [[ -r $PYVIRT_LOG ]]; then
            echo "nova-pyvirt: last $tail lines of $PYVIRT_LOG:"
            tail -n "$tail" "$PYVIRT_LOG" | sed 's/^/    /'
        fi
    } >&2
    (exit "$status") || die $LINENO "nova-pyvirt: step $PYVIRT_STEP" \
        "'$PYVIRT_STEP_NAME' failed: $message (full log: $PYVIRT_LOG)"
}

# _pyvirt_run command...: run a command (or shell function) with its
# output in the log; stop on failure.
function _pyvirt_run {
    local status=0
    echo "+ $*" >>"$PYVIRT_LOG"
    "$@" >>"$PYVIRT_LOG" 2>&1 </dev/null || status=$?
    if [[ $status -ne 0 ]]; then
        _pyvirt_fail $status "'$*' exited with status $status"
    fi
}

# _pyvirt_capture variable command...: like _pyvirt_run, and also keep the
# command's standard output in the variable.
function _pyvirt_capture {
    local __var=$1 __out="" status=0
    shift
    echo "+ $*" >>"$PYVIRT_LOG"
    __out=$("$@" 2>>"$PYVIRT_LOG" </dev/null) || status=$?
    printf '%s\n' "$__out" >>"$PYVIRT_LOG"
    if [[ $status -ne 0 ]]; then
        _pyvirt_fail $status "'$*' exited with status $status"
    fi
    printf -v "$__var" '%s' "$__out"
}

# _pyvirt_replace_if_changed new target: move new over target when the
# contents differ (target keeps its inode and time stamp otherwise).
function _pyvirt_replace_if_changed {
    if cmp -s "$1" "$2"; then
        rm -f "$1"
    else
        mv -f "$1" "$2"
    fi
}


# [1/7] distro packages
# ---------------------

# The bindep.txt packages for this distribution in bindep's default
# profile: lines whose platform selectors match dpkg (or carry none) and
# that name no profile, or only negated ones.
function _pyvirt_bindep_packages {
    awk '
        /^[ \t]*(#|$)/ { next }
        {
            selectors = ""
            if (match($0, /\[[^]]*\]/)) {
                selectors = substr($0, RSTART + 1, RLENGTH - 2)
            }
            n = split(selectors, word, /[ \t]+/)
            platform_wanted = 0; platform_ok = 0; refused = 0
            for (i = 1; i <= n; i++) {
                w = word[i]
                if (w == "") continue
                negated = (substr(w, 1, 1) == "!")
                if (negated) w = substr(w, 2)
                dpkg = (w == "platform:dpkg" || w == "platform:debian" ||
                        w == "platform:ubuntu")
                if (w ~ /^platform:/) {
                    if (negated) { if (dpkg) refused = 1 }
                    else { platform_wanted = 1; if (dpkg) platform_ok = 1 }
                } else if (!negated && w != "default") {
                    refused = 1
                }
            }
            if (!refused && (!platform_wanted || platform_ok)) print $1
        }
    ' "$PYVIRT_DIR/bindep.txt"
}

function _pyvirt_install_distro_packages {
    local packages=() missing=() pkg
    _pyvirt_capture pkg _pyvirt_bindep_packages
    read -r -a packages <<<"${pkg//$'\n'/ }"
    for pkg in "${packages[@]}"; do
        if ! is_package_installed "$pkg"; then
            missing+=("$pkg")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        _pyvirt_note "${#packages[@]} packages from bindep.txt," \
            "all installed already"
        return 0
    fi
    _pyvirt_note "installing ${missing[*]}"
    _pyvirt_run install_package "${missing[@]}"
    for pkg in "${missing[@]}"; do
        if ! is_package_installed "$pkg"; then
            _pyvirt_fail 1 "package $pkg is still not installed" \
                "(OFFLINE=${OFFLINE:-False})"
        fi
    done
}


# [2/7] libvirt access
# --------------------

function _pyvirt_uri {
    echo "${PYVIRT_CONNECTION_URI:-qemu:///system}"
}

# Does the stack user need the libvirt group to reach the URI?
function _pyvirt_needs_libvirt_group {
    local uri
    uri=$(_pyvirt_uri)
    [[ $uri == qemu:///system* && $(id -u "$STACK_USER") != 0 ]]
}

function _pyvirt_grant_libvirt_access {
    local uri group=$PYVIRT_LIBVIRT_GROUP
    uri=$(_pyvirt_uri)
    if [[ $uri != qemu:///system* ]]; then
        _pyvirt_note "not needed for $uri"
    elif [[ $(id -u "$STACK_USER") == 0 ]]; then
        _pyvirt_note "not needed: $STACK_USER runs as root"
    elif id -nG "$STACK_USER" | grep -qw -- "$group"; then
        _pyvirt_note "$STACK_USER is in group $group already"
    else
        if ! getent group "$group" >/dev/null; then
            _pyvirt_fail 1 "group $group does not exist" \
                "(is libvirt installed?)"
        fi
        _pyvirt_run add_user_to_group "$STACK_USER" "$group"
        mkdir -p "$PYVIRT_STATE_DIR"
        echo "$STACK_USER $group" >"$PYVIRT_STATE_DIR/libvirt-group-added"
        _pyvirt_note "added $STACK_USER to group $group"
    fi
}


# [3/7] python packages
# ---------------------

# Everything the installed result depends on: the interpreter, DevStack's
# constraints, and the checkout (commit and every file git does not
# ignore, committed or not).
function _pyvirt_python_inputs {
    "$PYVIRT_VROOT/bin/python" -c 'import sys; print(sys.version)' || true
    sha256sum "$REQUIREMENTS_DIR/upper-constraints.txt" 2>/dev/null || true
    if git -C "$PYVIRT_DIR" rev-parse HEAD 2>/dev/null; then
        git -C "$PYVIRT_DIR" ls-files -z -co --exclude-standard |
            (cd "$PYVIRT_DIR" && xargs -0 -r sha256sum 2>/dev/null) || true
    else
        # Not a git checkout: no way to tell, always reinstall.
        date +%s%N
    fi
}

function _pyvirt_python_ready {
    [[ -x $PYVIRT_VROOT/bin/python ]] &&
        "$PYVIRT_VROOT/bin/python" -c \
            'import nova_pyvirt.driver, nova.virt.pyvirt' >/dev/null 2>&1
}

# Build leftovers that git ignores (build/, *.egg-info, pbr's AUTHORS and
# ChangeLog), relative to the checkout.
function _pyvirt_ignored_files {
    git -C "$PYVIRT_DIR" ls-files -o -i --exclude-standard --directory \
        2>/dev/null | sort || true
}

function _pyvirt_install_python {
    local stamp=$PYVIRT_STATE_DIR/python-packages.stamp
    local inputs before after
    mkdir -p "$PYVIRT_CONF_DIR" "$PYVIRT_STATE_DIR" \
        "$PYVIRT_VROOT/var/log" "$PYVIRT_VROOT/var/cache"
    if [[ ! -x $PYVIRT_VROOT/bin/python ]]; then
        _pyvirt_run "$PYVIRT_PYTHON" -m venv "$PYVIRT_VROOT"
    fi
    inputs=$(_pyvirt_python_inputs | sha256sum | cut -d' ' -f1)
    local recorded=""
    if [[ -r $stamp ]]; then
        recorded=$(cat "$stamp")
    fi
    if [[ $recorded == "$inputs" ]] && _pyvirt_python_ready; then
        _pyvirt_note "up to date"
        return 0
    fi
    before=$(_pyvirt_ignored_files)
    # The cache lives in the vroot too (clean removes it).
    PIP_VIRTUAL_ENV=$PYVIRT_VROOT \
        PIP_CACHE_DIR=$PYVIRT_VROOT/var/cache/pip \
        PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_NO_INPUT=1 \
        _pyvirt_run pip_install "$PYVIRT_DIR"
    after=$(_pyvirt_ignored_files)
    # Remember what the build added to the checkout, for clean.
    comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' \
        >>"$PYVIRT_STATE_DIR/checkout-build-files" || true
    if ! _pyvirt_python_ready; then
        local why="see the log"
        if [[ ${OFFLINE:-False} == True ]]; then
            why="OFFLINE=True: pip_install installed nothing"
        fi
        # The traceback, for the log.
        "$PYVIRT_VROOT/bin/python" -c \
            'import nova_pyvirt.driver, nova.virt.pyvirt' \
            >>"$PYVIRT_LOG" 2>&1 || true
        _pyvirt_fail 1 "nova_pyvirt.driver and nova.virt.pyvirt do not" \
            "import from $PYVIRT_VROOT ($why)"
    fi
    echo "$inputs" >"$stamp"
    local versions
    _pyvirt_capture versions "$PYVIRT_VROOT/bin/python" -c '
from importlib import metadata
print("nova %s, nova-pyvirt %s" % tuple(
    metadata.version(name) for name in ("nova", "nova-pyvirt")))'
    _pyvirt_note "$versions"
}


# [4/7] tools and sample configuration
# ------------------------------------

function _pyvirt_install_tools {
    local tmp
    # nova-compute of the vroot with DevStack's compute configuration.
    tmp=$(mktemp "$PYVIRT_VROOT/bin/.nova-pyvirt-compute.XXXXXX")
    cat >"$tmp" <<EOF
#!/bin/bash
# nova-compute from the nova-pyvirt vroot, with DevStack's compute
# configuration. Written by nova-pyvirt's DevStack plugin.
exec "$PYVIRT_VROOT/bin/nova-compute" --config-file "$NOVA_CPU_CONF" "\$@"
EOF
    chmod 0755 "$tmp"
    _pyvirt_replace_if_changed "$tmp" "$PYVIRT_VROOT/bin/nova-pyvirt-compute"

    tmp=$(mktemp "$PYVIRT_CONF_DIR/.sample.XXXXXX")
    _pyvirt_run "$PYVIRT_VROOT/bin/oslo-config-generator" \
        --namespace nova_pyvirt --output-file "$tmp"
    _pyvirt_replace_if_changed "$tmp" \
        "$PYVIRT_CONF_DIR/nova-pyvirt.conf.sample"

    local version
    _pyvirt_capture version "$PYVIRT_VROOT/bin/nova-pyvirt" version
    _pyvirt_note "$version: $PYVIRT_VROOT/bin/nova-pyvirt," \
        "nova-pyvirt-compute; sample config in $PYVIRT_CONF_DIR"
}


# [5/7] nova.conf
# ---------------

# _pyvirt_iniset file section option value: iniset, skipped when the file
# has that value already (so that a second stack leaves it untouched).
function _pyvirt_iniset {
    local current=""
    if ini_has_option "$1" "$2" "$3"; then
        current=$(iniget "$1" "$2" "$3")
        if [[ $current == "$4" ]]; then
            return 0
        fi
    fi
    iniset "$1" "$2" "$3" "$4"
}

function _pyvirt_configure_nova {
    local orig=$PYVIRT_STATE_DIR/nova-conf.orig
    if [[ ! -f $NOVA_CONF ]]; then
        _pyvirt_fail 1 "$NOVA_CONF does not exist (is nova enabled?)"
    fi
    # What clean restores: the compute driver before this plugin, and
    # which of the sections it writes to existed.
    if [[ ! -f $orig ]]; then
        mkdir -p "$PYVIRT_STATE_DIR"
        {
            if ini_has_option "$NOVA_CONF" DEFAULT compute_driver; then
                printf 'PYVIRT_ORIG_COMPUTE_DRIVER=%q\n' \
                    "$(iniget "$NOVA_CONF" DEFAULT compute_driver)"
            fi
            local section
            for section in DEFAULT pyvirt; do
                if grep -q "^\[$section\]" "$NOVA_CONF"; then
                    echo "PYVIRT_ORIG_SECTIONS+=' $section'"
                fi
            done
        } >"$orig"
    fi
    mkdir -p "$PYVIRT_INSTANCES_PATH"
    _pyvirt_iniset "$NOVA_CONF" DEFAULT compute_driver \
        "$PYVIRT_COMPUTE_DRIVER"
    _pyvirt_iniset "$NOVA_CONF" pyvirt virt_type "$PYVIRT_VIRT_TYPE"
    if [[ -n $PYVIRT_CONNECTION_URI ]]; then
        _pyvirt_iniset "$NOVA_CONF" pyvirt connection_uri \
            "$PYVIRT_CONNECTION_URI"
    fi
    _pyvirt_iniset "$NOVA_CONF" pyvirt images_type "$PYVIRT_IMAGES_TYPE"
    _pyvirt_iniset "$NOVA_CONF" pyvirt instances_path \
        "$PYVIRT_INSTANCES_PATH"
    _pyvirt_note "$NOVA_CONF: compute_driver = $PYVIRT_COMPUTE_DRIVER," \
        "[pyvirt] virt_type = $PYVIRT_VIRT_TYPE," \
        "instances_path = $PYVIRT_INSTANCES_PATH"
}


# [6/7] driver check
# ------------------

# The configuration nova-compute reads: nova-cpu.conf when DevStack runs
# nova-compute here (it derives that file from nova.conf), else nova.conf.
function _pyvirt_compute_conf {
    if is_service_enabled n-cpu && [[ -f $NOVA_CPU_CONF ]]; then
        echo "$NOVA_CPU_CONF"
    else
        echo "$NOVA_CONF"
    fi
}

# Load the compute driver as nova-compute does, from the vroot's Python
# and the final configuration (local.conf's sections applied), without
# connecting to libvirt.
function _pyvirt_check_driver {
    local conf summary
    conf=$(_pyvirt_compute_conf)
    _pyvirt_capture summary "$PYVIRT_VROOT/bin/python" -c '
import sys
import nova.conf
from nova.virt import driver, virtapi
CONF = nova.conf.CONF
CONF(["--config-file", sys.argv[1]], project="nova")
drv = driver.load_compute_driver(virtapi.VirtAPI(), None)
cls = type(drv)
print("%s.%s loaded from %s, virt_type = %s, connection_uri = %s" % (
    cls.__module__, cls.__name__, sys.prefix, CONF.pyvirt.virt_type,
    CONF.pyvirt.connection_uri or "(default)"))
' "$conf"
    _pyvirt_note "$summary"
}


# [7/7] nova-compute
# ------------------

function _pyvirt_start_compute {
    if ! is_service_enabled n-cpu; then
        _pyvirt_note "n-cpu is not enabled here: nothing to start"
        return 0
    fi
    local group=""
    if _pyvirt_needs_libvirt_group; then
        group=$PYVIRT_LIBVIRT_GROUP
    fi
    # DevStack started n-cpu from its own environment, where the driver is
    # not installed; run it from the vroot instead.
    _pyvirt_run stop_process n-cpu
    _pyvirt_run run_process n-cpu "$PYVIRT_VROOT/bin/nova-pyvirt-compute" \
        "$group"
    if [[ ! -f $PYVIRT_STATE_DIR/n-cpu.started ]]; then
        touch "$PYVIRT_STATE_DIR/n-cpu.started"
    fi
    _pyvirt_note "n-cpu runs $PYVIRT_VROOT/bin/nova-compute" \
        "--config-file $NOVA_CPU_CONF"
}


# unstack and clean
# -----------------

function _pyvirt_stop_compute {
    if [[ -f $PYVIRT_STATE_DIR/n-cpu.started ]]; then
        _pyvirt_run stop_process n-cpu
        rm -f "$PYVIRT_STATE_DIR/n-cpu.started"
        _pyvirt_note "stopped n-cpu"
    else
        _pyvirt_note "nothing to stop"
    fi
}

# _pyvirt_drop_empty_section file section: remove the section's line (and
# the blank line iniset put before it) when no option is left in it.
function _pyvirt_drop_empty_section {
    local file=$1 section=$2 tmp
    tmp=$(mktemp "$(dirname "$file")/.nova-pyvirt.XXXXXX")
    awk -v header="[$section]" '
        { line[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                if (line[i] != header) continue
                empty = 1
                for (j = i + 1; j <= NR && line[j] !~ /^\[.*\]/; j++) {
                    if (line[j] !~ /^[ \t]*(#.*)?$/) empty = 0
                }
                if (!empty) continue
                drop[i] = 1
                if (i > 1 && line[i - 1] == "") drop[i - 1] = 1
            }
            for (i = 1; i <= NR; i++) if (!(i in drop)) print line[i]
        }
    ' "$file" >"$tmp"
    chmod --reference="$file" "$tmp"
    _pyvirt_replace_if_changed "$tmp" "$file"
}

# _pyvirt_unconfigure file: undo step [5/7] in nova.conf, or in the
# nova-cpu.conf DevStack derived from it.
function _pyvirt_unconfigure {
    local file=$1 option section
    if [[ $(iniget "$file" DEFAULT compute_driver) == \
            "$PYVIRT_COMPUTE_DRIVER" ]]; then
        if [[ -n $PYVIRT_ORIG_COMPUTE_DRIVER ]]; then
            iniset "$file" DEFAULT compute_driver \
                "$PYVIRT_ORIG_COMPUTE_DRIVER"
        else
            inidelete "$file" DEFAULT compute_driver
        fi
    fi
    for option in $PYVIRT_NOVA_OPTIONS; do
        if ini_has_option "$file" pyvirt "$option"; then
            inidelete "$file" pyvirt "$option"
        fi
    done
    for section in DEFAULT pyvirt; do
        if [[ " $PYVIRT_ORIG_SECTIONS " != *" $section "* ]]; then
            _pyvirt_drop_empty_section "$file" "$section"
        fi
    done
}

function _pyvirt_unconfigure_nova {
    local orig=$PYVIRT_STATE_DIR/nova-conf.orig file undone=()
    local PYVIRT_ORIG_COMPUTE_DRIVER="" PYVIRT_ORIG_SECTIONS=""
    if [[ -f $orig ]]; then
        # shellcheck disable=SC1090
        source "$orig"
    fi
    for file in "$NOVA_CONF" "$NOVA_CPU_CONF"; do
        if [[ -f $file ]]; then
            _pyvirt_unconfigure "$file"
            undone+=("$(basename "$file")")
        fi
    done
    if [[ ${#undone[@]} -eq 0 ]]; then
        _pyvirt_note "$NOVA_CONF is gone: nothing to undo"
    elif [[ -n $PYVIRT_ORIG_COMPUTE_DRIVER ]]; then
        _pyvirt_note "${undone[*]}: compute_driver restored to" \
            "$PYVIRT_ORIG_COMPUTE_DRIVER, [pyvirt] options removed"
    else
        _pyvirt_note "${undone[*]}: compute_driver and [pyvirt] options" \
            "removed"
    fi
}

function _pyvirt_revoke_libvirt_access {
    local record=$PYVIRT_STATE_DIR/libvirt-group-added user group
    if [[ ! -f $record ]]; then
        _pyvirt_note "nothing to undo"
        return 0
    fi
    read -r user group <"$record"
    if id -nG "$user" | grep -qw -- "$group"; then
        _pyvirt_run sudo gpasswd -d "$user" "$group"
    fi
    rm -f "$record"
    _pyvirt_note "removed $user from group $group"
}

function _pyvirt_remove_vroot {
    local record=$PYVIRT_STATE_DIR/checkout-build-files entry
    if [[ -f $record ]]; then
        while read -r entry; do
            # Only plain relative names inside the checkout.
            if [[ -n $entry && $entry != /* && $entry != *..* ]]; then
                echo "+ rm -rf $PYVIRT_DIR/$entry" >>"$PYVIRT_LOG"
                rm -rf "${PYVIRT_DIR:?}/$entry"
            fi
        done <"$record"
    fi
    rm -rf "${PYVIRT_VROOT:?}"
    echo_summary "    removed $PYVIRT_VROOT"
}


# Dispatch
# --------

if is_service_enabled pyvirt; then
    case "$1/${2:-}" in
        stack/pre-install)
            _pyvirt_begin "" 1 7 "installing distro packages from bindep.txt"
            _pyvirt_install_distro_packages
            _pyvirt_begin "" 2 7 "granting libvirt access to $STACK_USER"
            _pyvirt_grant_libvirt_access
            ;;
        stack/install)
            _pyvirt_begin "" 3 7 \
                "installing python packages into $PYVIRT_VROOT"
            _pyvirt_install_python
            _pyvirt_begin "" 4 7 \
                "installing tools into $PYVIRT_VROOT/bin and $PYVIRT_CONF_DIR"
            _pyvirt_install_tools
            ;;
        stack/post-config)
            _pyvirt_begin "" 5 7 "configuring nova for $PYVIRT_COMPUTE_DRIVER"
            _pyvirt_configure_nova
            ;;
        stack/extra)
            _pyvirt_begin "" 6 7 \
                "checking that nova loads $PYVIRT_COMPUTE_DRIVER"
            _pyvirt_check_driver
            _pyvirt_begin "" 7 7 "starting nova-compute from $PYVIRT_VROOT"
            _pyvirt_start_compute
            ;;
        stack/test-config)
            # Nothing for tempest: the driver adds no API.
            :
            ;;
        unstack/*)
            if [[ -d $PYVIRT_VROOT ]]; then
                _pyvirt_begin unstack 1 1 \
                    "stopping nova-compute started from $PYVIRT_VROOT"
                _pyvirt_stop_compute
            fi
            ;;
        clean/*)
            if [[ -d $PYVIRT_VROOT ]]; then
                _pyvirt_begin clean 1 4 \
                    "stopping nova-compute started from $PYVIRT_VROOT"
                _pyvirt_stop_compute
                _pyvirt_begin clean 2 4 \
                    "removing pyvirt settings from $NOVA_CONF"
                _pyvirt_unconfigure_nova
                _pyvirt_begin clean 3 4 \
                    "undoing libvirt access for $STACK_USER"
                _pyvirt_revoke_libvirt_access
                _pyvirt_begin clean 4 4 "removing $PYVIRT_VROOT"
                _pyvirt_remove_vroot
            else
                echo_summary "nova-pyvirt clean: $PYVIRT_VROOT does not" \
                    "exist, nothing to do"
            fi
            ;;
    esac
fi

# Restore xtrace
$_XTRACE_NOVA_PYVIRT
