#!/bin/bash
#
# The quick checks, run by .ci/run before the test suite: flake8 (with
# hacking and the local N3xx checks of tools/hacking), bashate, reno lint,
# and the documentation and release notes builds with warnings as errors.
# Uses the .venv that tools/setup.sh prepares (PYVIRT_CHECKS_VENV chooses
# another). Stops at the first check that fails, naming it, with its
# output; exits 0 when all pass.

set -o errexit
set -o nounset
set -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PYVIRT_CHECKS_VENV:-$REPO/.venv}
export PATH=$VENV/bin:$PATH

exec </dev/null
cd "$REPO"

# The shell scripts bashate checks (the same as tox -e bashate).
function shell_files {
    local file
    for file in tools/*.sh .ci/run devstack/* \
            tests/fixtures/devstack/functions \
            tests/fixtures/devstack/stackrc \
            tests/fixtures/devstack/common tests/fixtures/devstack/*.sh; do
        if [[ -f $file ]]; then
            echo "$file"
        fi
    done
}

# check name command...: run it with its output kept; on failure print the
# output and stop.
function check {
    local name=$1 out status=0
    shift
    out=$("$@" 2>&1) || status=$?
    if [[ $status -ne 0 ]]; then
        printf '%s\n' "$out" | tail -n 60
        echo "quick-checks: FAILED: $name (exit status $status): $*" >&2
        exit 1
    fi
    echo "quick-checks: $name ok"
}

mapfile -t scripts < <(shell_files)
check flake8 flake8
check bashate bashate -v "${scripts[@]}"
check "reno lint" reno lint
rm -rf doc/build releasenotes/build
check "docs (-W)" sphinx-build -W --keep-going -q -b html doc/source \
    doc/build/html
check "release notes (-W)" sphinx-build -a -E -W --keep-going -q \
    -d releasenotes/build/doctrees -b html releasenotes/source \
    releasenotes/build/html
echo "quick-checks: all passed"
