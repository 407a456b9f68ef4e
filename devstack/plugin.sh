#!/bin/bash
#
# plugin.sh - DevStack plugin of nova-pyvirt
#
# Installs the nova-pyvirt compute driver into a private prefix,
# $PYVIRT_VROOT ($DEST/vroot): a Python venv with nova and the driver
# (bin/, lib/), configuration (etc/) and its state (var/lib/). Instances
# and the image cache go where nova's [DEFAULT] instances_path says
# (DevStack's $NOVA_INSTANCES_PATH). nova.conf gets
# compute_driver = pyvirt.PyVirtDriver and a [pyvirt] section, and
# nova-compute runs from the vroot. Root is used for distro packages and
# for libvirt access of the stack user only. The plugin's step log is
# $PYVIRT_LOG ($LOGDIR/nova-pyvirt.log). doc/source/devstack.rst has the
# details, including every file written outside $DEST.
#
# DevStack sources this file (in its own shell, under "set -o errexit")
# with the mode and phase as arguments:
#
#   stack pre-install   [1/8] distro packages  [2/8] libvirt access
#   stack install       [3/8] python packages  [4/8] tools and sample config
#   stack post-config   [5/8] nova.conf
#   stack extra         [6/8] driver check     [7/8] nova-compute
#   stack test-config   [8/8] tempest's [compute-feature-enabled]
#   unstack             stop the nova-compute this plugin started
#   clean               unstack, undo nova.conf and group changes, remove
#                       the vroot and the build files left in the checkouts
#
# Each step prints one numbered line, and indented notes, through
# DevStack's echo_summary; the output of the commands it runs goes to
# $PYVIRT_LOG. A failing step prints its name and the end of that log, and
# stops stack.sh. devstack/override-defaults sets VIRT_DRIVER=pyvirt, so
# that DevStack sets up no other compute driver.

# Save trace setting
_XTRACE_NOVA_PYVIRT=$(set +o | grep xtrace)
set +o xtrace

PYVIRT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYVIRT_STATE_DIR=$PYVIRT_VROOT/var/lib/nova-pyvirt
PYVIRT_CONF_DIR=$PYVIRT_VROOT/etc/nova-pyvirt
PYVIRT_COMPUTE_DRIVER=pyvirt.PyVirtDriver
# [pyvirt] options this plugin writes (and removes again on clean).
PYVIRT_NOVA_OPTIONS="virt_type connection_uri images_type"
# [pyvirt] options that earlier versions of the plugin wrote and that the
# driver no longer has (nova's own replace them): removed when found.
PYVIRT_RETIRED_OPTIONS="instances_path"


# Steps, logging and failures
# ---------------------------

# _pyvirt_say text...: print one line through DevStack's echo_summary,
# exactly as given. echo_summary expands its arguments unquoted ("echo -e
# $@"): word splitting would drop a note's indentation and collapse its
# blanks, pathname expansion could turn a word such as "[pyvirt]" into a
# file name, and "echo -e" reads backslashes as escapes. So while it runs
# the line is one word (IFS is empty), pathname expansion is off, and
# backslashes are doubled.
function _pyvirt_say {
    local line=$*
    local IFS=''
    local restore_glob=False
    if [[ $- != *f* ]]; then
        restore_glob=True
        set -o noglob
    fi
    echo_summary "${line//\\/\\\\}"
    if [[ $restore_glob == True ]]; then
        set +o noglob
    fi
}

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
    _pyvirt_say "$PYVIRT_STEP_LINE"
}

# _pyvirt_note text: an indented detail line under the current step.
function _pyvirt_note {
    echo "    $*" >>"$PYVIRT_LOG"
    _pyvirt_say "    $*"
}

# _pyvirt_fail status message...: report the failed step with the end of
# the log and stop (die exits stack.sh with that status).
function _pyvirt_fail {
    local status=$1 message="${*:2}"
    local tail=${PYVIRT_LOG_TAIL:-25}
    echo "!!! $message" >>"$PYVIRT_LOG"
    _pyvirt_say "$PYVIRT_STEP_LINE: FAILED"
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


# [1/8] distro packages
# ---------------------

# bindep.txt is read by bindep itself, the one DevStack installs for
# plugins ($BINDEP_CMD, $DEST/bindep-venv), in bindep's default profile;
# DevStack's install_bindep installs what it lists.

# _pyvirt_bindep args...: bindep's output on one line. bindep exits with 1
# when it lists missing packages; only other failures are failures here.
function _pyvirt_bindep {
    local out status=0
    out=$("$PYVIRT_BINDEP" "$@" --file "$PYVIRT_DIR/bindep.txt") ||
        status=$?
    if [[ $status -ne 0 && ! ($status -eq 1 && -n $out) ]]; then
        return $status
    fi
    local words=()
    read -r -d '' -a words <<<"$out" || true
    echo "${words[*]}"
}

function _pyvirt_install_distro_packages {
    local all missing
    if [[ ! -x $PYVIRT_BINDEP ]]; then
        _pyvirt_fail 1 "$PYVIRT_BINDEP does not exist (DevStack installs" \
            "bindep into $DEST/bindep-venv before the pre-install phase)"
    fi
    _pyvirt_capture all _pyvirt_bindep -l newline
    _pyvirt_capture missing _pyvirt_bindep -b
    if [[ -z $missing ]]; then
        _pyvirt_note "$(wc -w <<<"$all") packages from bindep.txt," \
            "all installed already"
        return 0
    fi
    _pyvirt_note "installing $missing"
    _pyvirt_run install_bindep "$PYVIRT_DIR/bindep.txt"
    _pyvirt_capture missing _pyvirt_bindep -b
    if [[ -n $missing ]]; then
        _pyvirt_fail 1 "still not installed: $missing" \
            "(OFFLINE=${OFFLINE:-False})"
    fi
}


# [2/8] libvirt access
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


# [3/8] python packages
# ---------------------

# What pip installs into the vroot: DevStack's nova checkout when there is
# one (so that nova-compute runs the nova of this DevStack, its local
# changes included), and nova-pyvirt from the plugin's checkout.
function _pyvirt_python_sources {
    if [[ -f $PYVIRT_NOVA_DIR/setup.cfg ]]; then
        echo "$PYVIRT_NOVA_DIR"
    fi
    echo "$PYVIRT_DIR"
}

# _pyvirt_tree_state dir: what an install from dir depends on. A git
# checkout: its commit and every file git does not ignore, committed or
# not. Another tree: every file but build output.
function _pyvirt_tree_state {
    local dir=$1
    echo "$dir"
    if git -C "$dir" rev-parse --show-toplevel 2>/dev/null |
            grep -qxF "$(cd "$dir" && pwd -P)"; then
        git -C "$dir" rev-parse HEAD
        git -C "$dir" ls-files -z -co --exclude-standard |
            (cd "$dir" && xargs -0 -r sha256sum 2>/dev/null) || true
    else
        (cd "$dir" && find . \( -name .git -o -name build -o -name dist \
            -o -name .eggs -o -name '*.egg-info' -o -name __pycache__ \) \
            -prune -o -type f -print0 | sort -z |
            xargs -0 -r sha256sum 2>/dev/null) || true
    fi
}

# Everything the installed result depends on: the interpreter, DevStack's
# constraints, and the source trees.
function _pyvirt_python_inputs {
    local dir
    "$PYVIRT_VROOT/bin/python" -c 'import sys; print(sys.version)' || true
    sha256sum "$REQUIREMENTS_DIR/upper-constraints.txt" 2>/dev/null || true
    for dir in $(_pyvirt_python_sources); do
        _pyvirt_tree_state "$dir"
    done
}

function _pyvirt_python_ready {
    [[ -x $PYVIRT_VROOT/bin/python ]] &&
        "$PYVIRT_VROOT/bin/python" -c \
            'import nova_pyvirt.driver, nova.virt.pyvirt' >/dev/null 2>&1
}

# _pyvirt_build_files dir...: what a build leaves at the top of the source
# trees (build/, dist/, .eggs/, *.egg-info, pbr's AUTHORS and ChangeLog).
function _pyvirt_build_files {
    local dir
    for dir in "$@"; do
        find "$dir" -mindepth 1 -maxdepth 1 \( -name build -o -name dist \
            -o -name .eggs -o -name '*.egg-info' -o -name AUTHORS \
            -o -name ChangeLog \)
    done | sort
}

function _pyvirt_install_python {
    local stamp=$PYVIRT_STATE_DIR/python-packages.stamp
    local inputs before after sources=()
    mkdir -p "$PYVIRT_CONF_DIR" "$PYVIRT_STATE_DIR" "$PYVIRT_VROOT/var/cache"
    if [[ ! -x $PYVIRT_VROOT/bin/python ]]; then
        _pyvirt_run "$PYVIRT_PYTHON" -m venv "$PYVIRT_VROOT"
    fi
    mapfile -t sources < <(_pyvirt_python_sources)
    inputs=$(_pyvirt_python_inputs | sha256sum | cut -d' ' -f1)
    local recorded=""
    if [[ -r $stamp ]]; then
        recorded=$(cat "$stamp")
    fi
    if [[ $recorded == "$inputs" ]] && _pyvirt_python_ready; then
        _pyvirt_note "up to date"
        return 0
    fi
    before=$(_pyvirt_build_files "${sources[@]}")
    # The cache lives in the vroot too (clean removes it).
    PIP_VIRTUAL_ENV=$PYVIRT_VROOT \
        PIP_CACHE_DIR=$PYVIRT_VROOT/var/cache/pip \
        PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_NO_INPUT=1 \
        _pyvirt_run pip_install "${sources[@]}"
    after=$(_pyvirt_build_files "${sources[@]}")
    # Remember what the build added to the source trees, for clean.
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
import json
from importlib import metadata

def origin(name):
    url = json.loads(metadata.distribution(name).read_text(
        "direct_url.json") or "{}").get("url", "")
    return " from " + url[len("file://"):] if url.startswith("file://") else ""

def describe(name):
    return "%s %s%s" % (name, metadata.version(name), origin(name))

print(", ".join(map(describe, ("nova", "nova-pyvirt"))))'
    _pyvirt_note "$versions"
}


# [4/8] tools and sample configuration
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


# [5/8] nova.conf
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
    # The instances path is nova's [DEFAULT] instances_path, which
    # DevStack's lib/nova writes ($NOVA_INSTANCES_PATH): the driver and
    # nova's image cache pass both read it.
    local instances
    instances=$(iniget "$NOVA_CONF" DEFAULT instances_path)
    if [[ -n $instances ]]; then
        mkdir -p "$instances"
    else
        instances="nova's default"
    fi
    local option
    for option in $PYVIRT_RETIRED_OPTIONS; do
        if ini_has_option "$NOVA_CONF" pyvirt "$option"; then
            inidelete "$NOVA_CONF" pyvirt "$option"
        fi
    done
    _pyvirt_iniset "$NOVA_CONF" DEFAULT compute_driver \
        "$PYVIRT_COMPUTE_DRIVER"
    _pyvirt_iniset "$NOVA_CONF" pyvirt virt_type "$PYVIRT_VIRT_TYPE"
    if [[ -n $PYVIRT_CONNECTION_URI ]]; then
        _pyvirt_iniset "$NOVA_CONF" pyvirt connection_uri \
            "$PYVIRT_CONNECTION_URI"
    fi
    _pyvirt_iniset "$NOVA_CONF" pyvirt images_type "$PYVIRT_IMAGES_TYPE"
    _pyvirt_note "$NOVA_CONF: compute_driver = $PYVIRT_COMPUTE_DRIVER," \
        "[pyvirt] virt_type = $PYVIRT_VIRT_TYPE," \
        "[DEFAULT] instances_path = $instances"
}


# [6/8] driver check
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


# [7/8] nova-compute
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
    # With VIRT_DRIVER=pyvirt, DevStack's start_nova_compute starts n-cpu
    # as nova-compute of its own environment, where the driver is not
    # installed (it exits); run it from the vroot instead.
    _pyvirt_run stop_process n-cpu
    _pyvirt_run run_process n-cpu "$PYVIRT_VROOT/bin/nova-pyvirt-compute" \
        "$group"
    if [[ ! -f $PYVIRT_STATE_DIR/n-cpu.started ]]; then
        touch "$PYVIRT_STATE_DIR/n-cpu.started"
    fi
    _pyvirt_note "n-cpu runs $PYVIRT_VROOT/bin/nova-compute" \
        "--config-file $NOVA_CPU_CONF"
}


# [8/8] tempest
# -------------

# Tell tempest which compute features this driver has: nova-pyvirt's
# "tempest-features" command derives them from the driver class, and
# prints "option value" lines for [compute-feature-enabled]. DevStack's
# own tempest configuration ran before (extras.d runs before plugins).
function _pyvirt_configure_tempest {
    if ! is_service_enabled tempest; then
        _pyvirt_note "tempest is not enabled here: nothing to configure"
        return 0
    fi
    if [[ ! -f $TEMPEST_CONFIG ]]; then
        _pyvirt_fail 1 "$TEMPEST_CONFIG does not exist"
    fi
    local features option value on=() off=()
    _pyvirt_capture features "$PYVIRT_VROOT/bin/nova-pyvirt" \
        tempest-features
    while read -r option value; do
        if [[ -z $option ]]; then
            continue
        fi
        _pyvirt_iniset "$TEMPEST_CONFIG" compute-feature-enabled \
            "$option" "$value"
        if [[ $value == True ]]; then
            on+=("$option")
        else
            off+=("$option")
        fi
    done <<<"$features"
    local on_list=none off_list=none
    if [[ ${#on[@]} -gt 0 ]]; then
        printf -v on_list '%s, ' "${on[@]}"
        on_list=${on_list%, }
    fi
    if [[ ${#off[@]} -gt 0 ]]; then
        printf -v off_list '%s, ' "${off[@]}"
        off_list=${off_list%, }
    fi
    _pyvirt_note "$TEMPEST_CONFIG [compute-feature-enabled]:" \
        "on: $on_list; off: $off_list"
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

# _pyvirt_unconfigure file: undo step [5/8] in nova.conf, or in the
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
    for option in $PYVIRT_NOVA_OPTIONS $PYVIRT_RETIRED_OPTIONS; do
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
    local record=$PYVIRT_STATE_DIR/checkout-build-files entry parent
    if [[ -f $record ]]; then
        while read -r entry; do
            # Only build output at the top of the source trees.
            parent=$(dirname "$entry")
            if [[ -z $entry || $entry == *..* ]]; then
                continue
            fi
            case $parent in
                "$PYVIRT_DIR" | "$PYVIRT_NOVA_DIR") ;;
                *) continue ;;
            esac
            case $(basename "$entry") in
                build | dist | .eggs | *.egg-info | AUTHORS | ChangeLog)
                    echo "+ rm -rf $entry" >>"$PYVIRT_LOG"
                    rm -rf "$entry"
                    ;;
            esac
        done <"$record"
    fi
    rm -rf "${PYVIRT_VROOT:?}"
    _pyvirt_note "removed $PYVIRT_VROOT"
}


# Dispatch
# --------

if is_service_enabled pyvirt; then
    case "$1/${2:-}" in
        stack/pre-install)
            _pyvirt_begin "" 1 8 "installing distro packages from bindep.txt"
            _pyvirt_install_distro_packages
            _pyvirt_begin "" 2 8 "granting libvirt access to $STACK_USER"
            _pyvirt_grant_libvirt_access
            ;;
        stack/install)
            _pyvirt_begin "" 3 8 \
                "installing python packages into $PYVIRT_VROOT"
            _pyvirt_install_python
            _pyvirt_begin "" 4 8 \
                "installing tools into $PYVIRT_VROOT/bin and $PYVIRT_CONF_DIR"
            _pyvirt_install_tools
            ;;
        stack/post-config)
            _pyvirt_begin "" 5 8 "configuring nova for $PYVIRT_COMPUTE_DRIVER"
            _pyvirt_configure_nova
            ;;
        stack/extra)
            _pyvirt_begin "" 6 8 \
                "checking that nova loads $PYVIRT_COMPUTE_DRIVER"
            _pyvirt_check_driver
            _pyvirt_begin "" 7 8 "starting nova-compute from $PYVIRT_VROOT"
            _pyvirt_start_compute
            ;;
        stack/test-config)
            _pyvirt_begin "" 8 8 \
                "telling tempest which compute features the driver has"
            _pyvirt_configure_tempest
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
                _pyvirt_say "nova-pyvirt clean: $PYVIRT_VROOT does not" \
                    "exist, nothing to do"
            fi
            ;;
    esac
fi

# Restore xtrace
$_XTRACE_NOVA_PYVIRT
