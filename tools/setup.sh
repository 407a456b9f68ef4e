#!/bin/bash
#
# Prepare this machine (Debian 12, run as root) for nova-pyvirt's demo and
# test suite:
#
#   1. Debian packages listed in bindep.txt
#   2. a Python venv at .venv
#   3. requirements.txt, test-requirements.txt and doc/requirements.txt in
#      the venv, with the tested versions of upper-constraints.txt
#   4. nova-pyvirt itself, installed like a release (pip install ., not
#      editable), so nova/virt/pyvirt/ lands inside nova's package
#   5. /dev/kvm group and mode, when the device exists
#   6. the test guest image (tools/guest_image/build.py), when present
#
# Idempotent and non-interactive. A step whose inputs did not change since
# it last succeeded is skipped (stamps under .cache/setup/ hold a hash of the
# inputs), so a second run takes seconds. Full command output goes to
# .cache/setup.log; on failure the failed step and the end of the log are
# printed.
#
# Environment:
#   PYTHON       interpreter that creates the venv (default: python3)
#   SETUP_FORCE  set to 1 to redo every step

set -o errexit
set -o nounset
set -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/.cache
STAMPS=$CACHE/setup
LOG=$CACHE/setup.log
VENV=$REPO/.venv
PYTHON=${PYTHON:-python3}
SETUP_FORCE=${SETUP_FORCE:-}

STEPS=6
STEP=0
STEP_NAME=starting
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_CREATED=

export DEBIAN_FRONTEND=noninteractive
export PIP_NO_INPUT=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Nothing below may wait for a keyboard.
exec </dev/null

mkdir -p "$STAMPS"

# One setup at a time per checkout (pip and apt are not safe to run twice).
exec 9>"$CACHE/setup.lock"
if ! flock --nonblock 9; then
    echo "setup: waiting for another tools/setup.sh in $REPO"
    flock 9
fi

: >"$LOG"

function on_exit {
    local rc=$?
    if [[ -n $POLICY_RC_CREATED ]]; then
        as_root rm -f "$POLICY_RC" || true
    fi
    if [[ $rc -ne 0 ]]; then
        echo "setup: step [$STEP/$STEPS] '$STEP_NAME' failed" \
            "(exit status $rc); last lines of $LOG:" >&2
        tail -n 40 "$LOG" | sed 's/^/    /' >&2
        echo "setup: FAILED: $STEP_NAME" >&2
    fi
}
trap on_exit EXIT

function as_root {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    else
        sudo -n "$@"
    fi
}

# Run a command with its output appended to the log.
function run {
    echo "+ $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1
}

function begin {
    STEP=$((STEP + 1))
    STEP_NAME=$1
    echo "=== [$STEP/$STEPS] $STEP_NAME" >>"$LOG"
}

function report {
    echo "setup [$STEP/$STEPS] $STEP_NAME${1:+ ($1)}"
}

# Short hash of the given files' names and contents, plus any extra words
# passed after "--".
function inputs_hash {
    local files=() extra=()
    while [[ $# -gt 0 && $1 != -- ]]; do
        files+=("$1")
        shift
    done
    if [[ $# -gt 0 ]]; then
        shift
        extra=("$@")
    fi
    {
        printf '%s\n' "${extra[@]}"
        sha256sum "${files[@]}"
    } | sha256sum | cut -c1-16
}

function is_done {
    local name=$1 hash=$2
    [[ -z $SETUP_FORCE && -f $STAMPS/$name ]] &&
        [[ $(cat "$STAMPS/$name") == "$hash" ]]
}

function mark_done {
    echo "$2" >"$STAMPS/$1"
}

# Does a bindep "[...]" selector apply to this (dpkg) machine? Profiles are
# not filtered: the demo and the tests together need all of them.
function bindep_applies {
    local word wanted=0 matched=0
    for word in $1; do
        case $word in
            '!platform:dpkg' | '!platform:debian')
                return 1
                ;;
            platform:dpkg | platform:debian)
                wanted=1
                matched=1
                ;;
            platform:*)
                wanted=1
                ;;
        esac
    done
    [[ $wanted -eq 0 || $matched -eq 1 ]]
}

# Print the bindep.txt packages that apply to this machine.
function bindep_packages {
    local line pkg selector
    while read -r line; do
        line=${line%%#*}
        read -r pkg selector <<<"$line"
        if [[ -z $pkg ]]; then
            continue
        fi
        selector=${selector#[}
        selector=${selector%]}
        if bindep_applies "$selector"; then
            echo "$pkg"
        fi
    done <"$REPO/bindep.txt"
}

function is_installed {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
        grep -q 'install ok installed'
}

function python_version {
    "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'
}

# --- 1. Debian packages ------------------------------------------------
begin "system packages"
missing=()
for pkg in $(bindep_packages); do
    if ! is_installed "$pkg"; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    report "up to date"
else
    report "installing ${#missing[@]}: ${missing[*]}"
    # Keep package scripts from starting daemons (tgtd, ganesha, rpcbind,
    # sshd, libvirtd): the tests start their own, bound to loopback.
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$CACHE/policy-rc.d"
        as_root install -m 0755 "$CACHE/policy-rc.d" "$POLICY_RC"
        POLICY_RC_CREATED=1
    fi
    run as_root apt-get -q -o DPkg::Lock::Timeout=1200 update
    run as_root apt-get -q -y -o DPkg::Lock::Timeout=1200 \
        -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold \
        install "${missing[@]}"
    if [[ -n $POLICY_RC_CREATED ]]; then
        as_root rm -f "$POLICY_RC"
        POLICY_RC_CREATED=
    fi
fi

# --- 2. Python venv ----------------------------------------------------
begin "python venv"
want=$(python_version "$PYTHON")
have=
if [[ -x $VENV/bin/python ]]; then
    have=$(python_version "$VENV/bin/python" 2>/dev/null || true)
fi
if [[ -n $have && $have == "$want" && -z $SETUP_FORCE ]]; then
    report "up to date, python $have"
else
    report "creating $VENV with $PYTHON $want"
    rm -rf "$VENV" "$STAMPS"/requirements "$STAMPS"/project
    run "$PYTHON" -m venv "$VENV"
fi
PY_ID="python $(python_version "$VENV/bin/python")"

# --- 3. Python requirements --------------------------------------------
begin "python requirements"
cd "$REPO"
hash=$(inputs_hash requirements.txt test-requirements.txt \
    doc/requirements.txt upper-constraints.txt -- "$PY_ID")
if is_done requirements "$hash"; then
    report "up to date"
else
    report "pip install -c upper-constraints.txt -r requirements.txt -r ..."
    run "$VENV/bin/pip" install -c upper-constraints.txt \
        -r requirements.txt -r test-requirements.txt -r doc/requirements.txt
    mark_done requirements "$hash"
fi

# --- 4. nova-pyvirt ----------------------------------------------------
begin "install nova-pyvirt"
mapfile -t sources < <(find nova nova_pyvirt -name '*.py' -type f | sort)
hash=$(inputs_hash setup.cfg setup.py pyproject.toml requirements.txt \
    "${sources[@]}" -- "$PY_ID")
purelib=$("$VENV/bin/python" -c \
    'import sysconfig; print(sysconfig.get_paths()["purelib"])')
shim=$purelib/nova/virt/pyvirt/__init__.py
if is_done project "$hash" && [[ -f $shim ]]; then
    report "up to date"
else
    report "pip install ."
    run "$VENV/bin/pip" install --no-deps --force-reinstall "$REPO"
    mark_done project "$hash"
fi

# --- 5. /dev/kvm -------------------------------------------------------
begin "kvm device"
if [[ -e /dev/kvm ]] && getent group kvm >/dev/null; then
    as_root chgrp kvm /dev/kvm
    as_root chmod 660 /dev/kvm
    report "/dev/kvm root:kvm 0660"
else
    report "skipped, no /dev/kvm or no kvm group"
fi

# --- 6. Test guest image -----------------------------------------------
begin "guest image"
if [[ -f $REPO/tools/guest_image/build.py ]]; then
    report "tools/guest_image/build.py"
    run "$VENV/bin/python" "$REPO/tools/guest_image/build.py"
else
    report "skipped, tools/guest_image/build.py not present"
fi

STEP_NAME=done
echo "setup: done (log: $LOG)"
