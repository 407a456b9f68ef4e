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

"""Writing onto the block device of an instance volume.

The privsep entrypoints that fill or clear a logical volume of the LVM
backend: an image copied onto it (``qemu-img convert``), an ext4 file
system (``mkfs.ext4``), swap (``mkswap``), zeros (``dd``), random passes
(``shred``). The devices
belong to root, so these run in the daemon; the images they read are the
image cache's, which nova-compute's user owns.

Only the device of a volume is written: ``/dev/<vg>/<lv>`` (valid lvm2
names, a block device), or a loop device over a block device (the
metadata-only activation's view of a volume). A source image must be a
regular file (not a symbolic link) in a format given by the caller, and
``qemu-img info``, run here under the same limits nova uses, must find no
backing file and no external data file in it: the daemon reads files as
root, so it does not follow references a file makes to others.
"""

import os
import re
import stat

from oslo_concurrency import processutils
from oslo_serialization import jsonutils

from nova_pyvirt import privsep
from nova_pyvirt.privsep import _process

IMAGE_FORMATS = ('raw', 'qcow2')

# Limits for qemu-img reading an image, as nova sets them.
QEMU_IMG_LIMITS = processutils.ProcessLimits(cpu_time=30,
                                             address_space=1024 ** 3)

_EXT4_LABEL = re.compile(r'^[A-Za-z0-9_.-]{1,16}$')
_DD_BLOCK = 1024 * 1024


def check_volume_device(device):
    """Raise ValueError unless ``device`` is a volume's block device."""
    _process.check_path(device)
    if _process.is_loop_device(device):
        _process.check_loop_over_block_device(device)
    else:
        parts = device.split('/')
        if len(parts) != 4 or parts[1] != 'dev':
            raise ValueError('%s is not /dev/<volume group>/<volume>'
                             % device)
        _process.check_names(parts[2], parts[3])
    _process.check_block_device(device)


def _check_image(source, source_format):
    if source_format not in IMAGE_FORMATS:
        raise ValueError('image format must be one of %s, not %r' % (
            ', '.join(IMAGE_FORMATS), source_format))
    _process.check_path(source)
    try:
        mode = os.lstat(source).st_mode
    except FileNotFoundError:
        raise ValueError('%s does not exist' % source)
    if not stat.S_ISREG(mode):
        raise ValueError('%s is not a regular file' % source)
    out, _err = _process.execute(
        'qemu-img', 'info', '--output=json', '--force-share',
        '-f', source_format, source, prlimit=QEMU_IMG_LIMITS)
    info = jsonutils.loads(out)
    data = (info.get('format-specific') or {}).get('data') or {}
    if info.get('backing-filename') or info.get('full-backing-filename'):
        raise ValueError('%s has a backing file' % source)
    if data.get('data-file'):
        raise ValueError('%s has an external data file' % source)


@privsep.sys_admin_pctxt.entrypoint
def write_image(source, source_format, device):
    """Copy the image ``source`` onto the volume ``device`` as raw data.

    ``-n``: write into the existing device instead of creating a file;
    ``-t none``: O_DIRECT, so the data is on the volume when qemu-img
    returns (its default, unsafe, never flushes).
    """
    check_volume_device(device)
    _check_image(source, source_format)
    _process.execute('qemu-img', 'convert', '-n', '-t', 'none',
                     '-f', source_format, '-O', 'raw', source, device)


@privsep.sys_admin_pctxt.entrypoint
def format_ext4(device, label):
    """Make an ext4 file system labelled ``label`` on ``device``.

    The lazy initialisation flags skip zeroing the inode tables and the
    journal, as for the file backends.
    """
    check_volume_device(device)
    if not isinstance(label, str) or not _EXT4_LABEL.match(label):
        raise ValueError('invalid ext4 label %r' % (label,))
    _process.execute('mkfs.ext4', '-F', '-q', '-L', label,
                     '-E', 'lazy_itable_init=1,lazy_journal_init=1',
                     device)


@privsep.sys_admin_pctxt.entrypoint
def format_swap(device):
    """Prepare ``device`` as swap (``mkswap``)."""
    check_volume_device(device)
    _process.execute('mkswap', device)


@privsep.sys_admin_pctxt.entrypoint
def zero(device, size):
    """Overwrite the first ``size`` bytes of ``device`` with zeros."""
    check_volume_device(device)
    _process.check_size(size)
    _process.execute('dd', 'if=/dev/zero', 'of=%s' % device,
                     'bs=%d' % _DD_BLOCK, 'count=%d' % size,
                     'iflag=count_bytes', 'oflag=direct', 'conv=fdatasync')


@privsep.sys_admin_pctxt.entrypoint
def shred(device, size):
    """Overwrite the first ``size`` bytes of ``device`` three times.

    With random data, as nova's ``volume_clear = shred`` does (``shred -n3
    -s SIZE``); shred syncs the device after each pass.
    """
    check_volume_device(device)
    _process.check_size(size)
    _process.execute('shred', '-n3', '-s%d' % size, device)
