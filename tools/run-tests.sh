#!/bin/bash
#
# Run nova-pyvirt's whole test suite (tests/) with stestr from the .venv that
# tools/setup.sh prepares (it runs first; fast when nothing changed).
#
# Arguments are passed to "stestr run" as filters (regular expressions on
# test ids), for example:
#
#   tools/run-tests.sh tests.unit.test_conf
#
# Ends with "Totals: N passed, M failed, K skipped" and exits non-zero when
# a test failed, when no test ran, or when stestr itself failed.

set -o errexit
set -o nounset
set -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$REPO/.venv

exec </dev/null

"$REPO/tools/setup.sh"

cd "$REPO"
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
export PYTHON=$VENV/bin/python

# stestr numbers its runs; the counter tells whether this run was recorded.
function next_run_id {
    cat .stestr/next-stream 2>/dev/null || echo none
}

if [[ ! -d .stestr ]]; then
    stestr init >/dev/null
fi

before=$(next_run_id)
rc=0
stestr run "$@" || rc=$?
after=$(next_run_id)

passed=0
failed=0
skipped=0
if [[ $after != "$before" ]]; then
    stats=$(stestr last --subunit | subunit-stats --no-passthrough || true)
    passed=$(awk -F: '/^Passed tests/ {print $2 + 0}' <<<"$stats")
    failed=$(awk -F: '/^Failed tests/ {print $2 + 0}' <<<"$stats")
    skipped=$(awk -F: '/^Skipped tests/ {print $2 + 0}' <<<"$stats")
else
    echo "run-tests: stestr recorded no test run" >&2
fi

echo "Totals: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"

if [[ $rc -ne 0 || ${failed:-0} -ne 0 ]]; then
    exit 1
fi
if [[ $((${passed:-0} + ${skipped:-0})) -eq 0 ]]; then
    echo "run-tests: no tests ran" >&2
    exit 1
fi
