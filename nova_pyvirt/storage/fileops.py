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

"""The host commands storage runs, and the clean-up that goes with them.

Every command goes through ``oslo_concurrency.processutils.execute`` as an
argv list, never through a shell: ``qemu-img`` (info, create, convert,
resize), ``mkfs.ext4``, ``mkswap`` and ``fallocate``. ``qemu-img info``
reads images that came from users, so it runs under the same CPU time and
address space limits nova uses. They run as nova-compute's user, on the
files it owns; what needs root is in :mod:`nova_pyvirt.privsep`.
"""

import contextlib
import os
import re
import shutil

from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import fileutils
from oslo_utils import imageutils
from oslo_utils import units

LOG = logging.getLogger(__name__)

# Limits for qemu-img parsing untrusted images, as in nova.
QEMU_IMG_LIMITS = processutils.ProcessLimits(
    cpu_time=30, address_space=1 * units.Gi)

# mkfs.ext4 and mkswap live in sbin, which is not on the PATH of every
# service account.
_SBIN_DIRS = ('/usr/local/sbin', '/usr/sbin', '/sbin')


def find_tool(name):
    """Absolute path of the executable ``name``, or None if not installed.

    Looks in ``$PATH`` and then in the sbin directories.
    """
    search = os.environ.get('PATH', os.defpath).split(os.pathsep)
    search.extend(d for d in _SBIN_DIRS if d not in search)
    return shutil.which(name, path=os.pathsep.join(search))


def execute(*cmd, **kwargs):
    """Run ``cmd`` (an argv list) and return ``(stdout, stderr)``.

    Raises ``processutils.ProcessExecutionError`` when the command fails.
    """
    return processutils.execute(*cmd, **kwargs)


def qemu_img_info(path, fmt):
    """``qemu-img info`` of ``path`` read as ``fmt``, as a QemuImgInfo.

    The format is always given, so qemu-img never probes it, and
    ``--force-share`` lets it read a base image a running guest holds.
    """
    out, _err = execute('qemu-img', 'info', '--output=json', '--force-share',
                        '-f', fmt, path, prlimit=QEMU_IMG_LIMITS)
    return imageutils.QemuImgInfo(out, format='json')


def qemu_img_create(path, fmt, size, backing=None, backing_fmt=None):
    cmd = ['qemu-img', 'create', '-q', '-f', fmt]
    if backing is not None:
        cmd += ['-b', backing, '-F', backing_fmt]
    execute(*(cmd + [path, str(size)]))


def qemu_img_convert(src, src_fmt, dest, dest_fmt):
    """Copy ``src`` into ``dest``; zero areas are not written (sparse)."""
    execute('qemu-img', 'convert', '-f', src_fmt, '-O', dest_fmt, src, dest)


def qemu_img_resize(path, fmt, size):
    execute('qemu-img', 'resize', '-q', '-f', fmt, path, str(size))


_EXT4_LABEL = re.compile(r'^[A-Za-z0-9_.-]{1,16}$')


def check_size(size_bytes):
    if not isinstance(size_bytes, int) or size_bytes <= 0:
        raise ValueError('disk size must be a positive number of bytes, '
                         'not %r' % (size_bytes,))


def ephemeral_formatter(filesystem, label, path):
    """The ``mkfs.ext4`` to format a new ephemeral disk with, or None.

    ``filesystem`` is ``'ext4'`` or None (unformatted). A missing
    ``mkfs.ext4`` leaves the disk unformatted, with a warning.
    """
    if filesystem not in ('ext4', None):
        raise ValueError('filesystem must be ext4 or None, not %r'
                         % (filesystem,))
    if filesystem is None:
        return None
    if not _EXT4_LABEL.match(label or ''):
        raise ValueError('invalid ext4 label %r' % (label,))
    mkfs = find_tool('mkfs.ext4')
    if mkfs is None:
        LOG.warning('mkfs.ext4 is not installed (package e2fsprogs): the '
                    'ephemeral disk %s is left unformatted', path)
    return mkfs


def mkfs_ext4(mkfs, path, label):
    """Make an ext4 file system on the fresh, all-zero file ``path``.

    The lazy initialisation flags skip zeroing the inode tables and the
    journal, which are already zero in a new sparse file: the file stays
    sparse (about 4 MiB allocated for 20 GiB instead of 133 MiB).
    """
    execute(mkfs, '-F', '-q', '-L', label,
            '-E', 'lazy_itable_init=1,lazy_journal_init=1', path)


def mkswap(tool, path):
    execute(tool, path)


def preallocate(path, size):
    """Allocate ``size`` bytes of ``path`` without changing its contents.

    ``fallocate --keep-size`` only fills holes, so data already written
    (a copied image, a file system) is kept. Best effort: file systems
    without fallocate support leave the file sparse, with a warning.
    """
    try:
        execute('fallocate', '--keep-size', '--length', str(size), path)
    except processutils.ProcessExecutionError as exc:
        LOG.warning('Could not preallocate %(size)d bytes for %(path)s, '
                    'leaving it sparse: %(err)s',
                    {'size': size, 'path': path, 'err': exc.stderr})


@contextlib.contextmanager
def removed_on_failure(*paths):
    """Remove ``paths`` (if present) when the block does not complete.

    Unlike ``fileutils.remove_path_on_error`` this also covers exceptions
    that do not derive from ``Exception`` (a killed green thread).
    """
    done = False
    try:
        yield
        done = True
    finally:
        if not done:
            for path in paths:
                try:
                    fileutils.delete_if_exists(path)
                except OSError as exc:
                    LOG.warning('Could not remove %(path)s: %(err)s',
                                {'path': path, 'err': exc})
