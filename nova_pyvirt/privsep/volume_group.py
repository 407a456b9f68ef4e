# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""lvm2 on the instance volume group, and loop devices over its volumes.

The privsep entrypoints of :mod:`nova_pyvirt.storage.lvm`: reports
(``vgs``, ``lvs``, ``pvs`` as lvm2's JSON rows), ``lvcreate``,
``lvextend`` and ``lvremove``, and, for the metadata-only activation of
machines without device-mapper, a loop device over a byte range of a
physical volume (``losetup``). Each builds its command line from checked
arguments: lvm2 names, integer sizes, report fields, device paths.

``metadata_only=True`` selects the options of that activation, which are
defined here and nowhere else (:data:`METADATA_ONLY_OPTIONS`,
:data:`METADATA_ONLY_CREATE_OPTIONS`, :func:`metadata_only_env`): the
caller chooses the mode, never the options.
"""

import os
import re

from oslo_serialization import jsonutils

from nova_pyvirt import privsep
from nova_pyvirt.privsep import _process

#: Options of every lvm2 command in metadata-only mode.
METADATA_ONLY_OPTIONS = ('--config', 'global { activation = 0 }')
#: Options of ``lvcreate`` in metadata-only mode: no activation, no
#: zeroing or wiping (which need an active volume), one contiguous run of
#: extents (so a loop device can cover the volume).
METADATA_ONLY_CREATE_OPTIONS = ('--yes', '--activate', 'n', '--zero', 'n',
                                '--wipesignatures', 'n', '--contiguous',
                                'y')
#: Options of ``lvextend`` in metadata-only mode: stay contiguous.
METADATA_ONLY_EXTEND_OPTIONS = ('--alloc', 'contiguous')

# Answer lvm2's questions (wiping a file system signature found on the new
# volume) instead of failing.
_CREATE_OPTIONS = ('--yes',)

_REPORT_OPTIONS = ('--reportformat', 'json', '--units', 'b', '--nosuffix')
_FIELD = re.compile(r'^[a-z][a-z_]*$')

# losetup --offset and --sizelimit: multiples of the sector size.
_SECTOR = 512


def valid_volume_name(name):
    """Whether lvm2 accepts ``name`` as a logical volume name.

    Not an entrypoint: runs in the caller.
    """
    return _process.valid_volume_name(name)


def loop_devices():
    """The attached loop devices: ``[{name, back-file, offset, sizelimit}]``.

    Not an entrypoint: read from sysfs, as ``losetup --list`` does, which
    needs no privilege.
    """
    return _process.loop_devices()


def metadata_only_env():
    """The environment of lvm2 commands in metadata-only mode.

    udev would wait for device nodes that are never created.
    """
    env = dict(os.environ)
    env.update(DM_DISABLE_UDEV='1', LVM_SUPPRESS_FD_WARNINGS='1')
    return env


def _lvm(command, metadata_only, *args):
    options = METADATA_ONLY_OPTIONS if metadata_only else ()
    env = metadata_only_env() if metadata_only else None
    out, _err = _process.execute(command, *(options + args),
                                 env_variables=env)
    return out


def _report(command, kind, fields, target, metadata_only):
    if isinstance(fields, str) or not fields or not all(
            isinstance(f, str) and _FIELD.match(f) for f in fields):
        raise ValueError('invalid report fields %r' % (fields,))
    out = _lvm(command, metadata_only,
               *(_REPORT_OPTIONS + ('-o', ','.join(fields), target)))
    rows = []
    for report in jsonutils.loads(out).get('report', []):
        rows.extend(report.get(kind, []))
    return rows


@privsep.sys_admin_pctxt.entrypoint
def vgs(vg, fields, metadata_only=False):
    """``vgs`` of the volume group ``vg``: its report rows (dicts)."""
    _process.check_names(vg)
    return _report('vgs', 'vg', fields, vg, metadata_only)


@privsep.sys_admin_pctxt.entrypoint
def lvs(vg, fields, lv=None, metadata_only=False):
    """``lvs`` of ``vg`` (or of its volume ``lv``): report rows."""
    _process.check_names(vg, lv)
    target = vg if lv is None else '%s/%s' % (vg, lv)
    return _report('lvs', 'lv', fields, target, metadata_only)


@privsep.sys_admin_pctxt.entrypoint
def pvs(pv, fields, metadata_only=False):
    """``pvs`` of the physical volume ``pv`` (a block device): rows."""
    _process.check_block_device(pv)
    return _report('pvs', 'pv', fields, pv, metadata_only)


@privsep.sys_admin_pctxt.entrypoint
def lvcreate(vg, lv, size, metadata_only=False):
    """Create the linear volume ``vg/lv`` of ``size`` bytes.

    lvm2 rounds the size up to whole extents.
    """
    _process.check_names(vg, lv)
    _process.check_size(size)
    options = METADATA_ONLY_CREATE_OPTIONS if metadata_only else \
        _CREATE_OPTIONS
    _lvm('lvcreate', metadata_only,
         *(options + ('-L', '%db' % size, '-n', lv, vg)))


@privsep.sys_admin_pctxt.entrypoint
def lvextend(vg, lv, size, metadata_only=False):
    """Grow the volume ``vg/lv`` to ``size`` bytes."""
    _process.check_names(vg, lv)
    _process.check_size(size)
    options = METADATA_ONLY_EXTEND_OPTIONS if metadata_only else ()
    _lvm('lvextend', metadata_only,
         *(options + ('-L', '%db' % size, '%s/%s' % (vg, lv))))


@privsep.sys_admin_pctxt.entrypoint
def lvremove(vg, lv, metadata_only=False):
    """Remove the volume ``vg/lv``."""
    _process.check_names(vg, lv)
    _lvm('lvremove', metadata_only, '--force', '%s/%s' % (vg, lv))


@privsep.sys_admin_pctxt.entrypoint
def attach_range(pv, offset, size):
    """A new loop device over ``size`` bytes of ``pv`` from ``offset``.

    For the metadata-only activation: the loop device is how a volume's
    data is reached without device-mapper. Direct I/O from the loop device
    to the PV: writes reach the PV at once instead of waiting in the PV's
    own page cache, where readers of what lies behind the PV (a file, when
    the PV is a loop device too) would not see them.

    :returns: the loop device's path.
    """
    _process.check_block_device(pv)
    _process.check_size(offset, 'offset', minimum=0)
    _process.check_size(size)
    if offset % _SECTOR or size % _SECTOR:
        raise ValueError('offset %d and size %d must be multiples of %d' % (
            offset, size, _SECTOR))
    out, _err = _process.execute(
        'losetup', '--find', '--show', '--direct-io=on',
        '--offset', str(offset), '--sizelimit', str(size), pv)
    device = out.strip()
    if not _process.is_loop_device(device):
        raise ValueError('losetup printed %r, not a loop device' % device)
    return device


@privsep.sys_admin_pctxt.entrypoint
def detach_loop(device):
    """Detach the loop device ``device`` set up by :func:`attach_range`.

    Only loop devices over block devices (such as a physical volume) are
    detached: loop devices over files belong to someone else.
    """
    _process.check_loop_over_block_device(device)
    _process.execute('losetup', '--detach', device)
