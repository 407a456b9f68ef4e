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
state="$REPO/.cache/demo"
mkdir -p "$state"
# libvirt's embedded driver logs to stderr by default; its warnings go to a
# file so the demo's progress lines stay readable.
export LIBVIRT_LOG_OUTPUTS="3:file:$state/libvirt.log"

exec "$REPO/.venv/bin/python" -m nova_pyvirt.cmd.demo \
    --state-dir "$state" --guest-image "$REPO/.cache/guest-image" "$@"
