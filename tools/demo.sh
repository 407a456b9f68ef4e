#!/bin/bash
#
# Set up everything (tools/setup.sh), then run the nova-pyvirt demo: an
# instance booted through PyVirtDriver on an embedded QEMU driver
# (qemu:///embed). Arguments are passed to the demo.

set -o errexit
set -o nounset
set -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

exec </dev/null

"$REPO/tools/setup.sh"

cd "$REPO"
demo=nova_pyvirt/cmd/demo
if [[ ! -f $demo.py && ! -f $demo/__init__.py ]]; then
    echo "demo: nova_pyvirt.cmd.demo does not exist yet in this checkout;" \
        "nothing to run." >&2
    exit 1
fi

exec "$REPO/.venv/bin/python" -m nova_pyvirt.cmd.demo "$@"
