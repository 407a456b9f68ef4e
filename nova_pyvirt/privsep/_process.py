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

"""How the entrypoints run programs, and the checks they share.

Nothing here is an entrypoint: these functions run in whichever process
calls them, which for the entrypoints of this package is the privsep
daemon. Programs are looked up in the system's directories only, never in
a ``PATH`` the caller could have chosen, and start with ``no_new_privs``.
"""

import ctypes
import errno
import os
import re
import stat

from oslo_concurrency import processutils

# Where the daemon looks for programs, in this order.
SYSTEM_DIRS = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin',
               '/sbin', '/bin')

_PR_SET_NO_NEW_PRIVS = 38

# Looked up once, before any fork: the child of a fork must not load
# libraries (another thread may have held the loader's lock). The C
# library is already loaded in the interpreter's own process.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl

# lvm2's rules for names (lvm(8), "VALID NAMES").
_NAME = re.compile(r'^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$')
_NAME_MAX = 127
_LV_RESERVED_PARTS = ('_cdata', '_cmeta', '_corig', '_mimage', '_mlog',
                      '_pmspare', '_rimage', '_rmeta', '_tdata', '_tmeta',
                      '_vdata', '_vorigin')
_LV_RESERVED_PREFIXES = ('snapshot', 'pvmove')
_LOOP = re.compile(r'^/dev/loop[0-9]+$')


def find_tool(name):
    """The absolute path of the program ``name`` in :data:`SYSTEM_DIRS`.

    :raises FileNotFoundError: it is not installed.
    """
    for directory in SYSTEM_DIRS:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    # The message names the program: only errno and message cross the
    # privsep channel.
    raise FileNotFoundError(errno.ENOENT,
                            '%s is not installed (looked in %s)' % (
                                name, ', '.join(SYSTEM_DIRS)))


def no_new_privs():
    """Set ``no_new_privs`` on this process (the child, before exec).

    A program run as root gets every capability in the bounding set when
    it starts, whatever its parent kept; with ``no_new_privs`` the kernel
    gives it no more than its parent's (the daemon's) capabilities, and
    set-user-ID bits are ignored.
    """
    if _PRCTL(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def execute(tool, *args, **kwargs):
    """Run the program ``tool`` (a name) with ``args``; ``(out, err)``.

    :raises processutils.ProcessExecutionError: it failed.
    :raises FileNotFoundError: it is not installed.
    """
    argv = [find_tool(tool)] + [str(arg) for arg in args]
    return processutils.execute(*argv, preexec_fn=no_new_privs, **kwargs)


# -- checks ---------------------------------------------------------------

def valid_volume_group_name(name):
    """Whether lvm2 accepts ``name`` as a volume group name."""
    return (isinstance(name, str) and 0 < len(name) <= _NAME_MAX and
            name not in ('.', '..') and bool(_NAME.match(name)))


def valid_volume_name(name):
    """Whether lvm2 accepts ``name`` as a logical volume name."""
    if not valid_volume_group_name(name):
        return False
    if name.startswith(_LV_RESERVED_PREFIXES):
        return False
    return not any(part in name for part in _LV_RESERVED_PARTS)


def check_names(vg, lv=None):
    """Raise ValueError unless ``vg`` (and ``lv``) are valid lvm2 names."""
    if not valid_volume_group_name(vg):
        raise ValueError('invalid volume group name %r' % (vg,))
    if lv is not None and not valid_volume_name(lv):
        raise ValueError('invalid logical volume name %r' % (lv,))


def check_size(size, name='size', minimum=1):
    """Raise ValueError unless ``size`` is an integer >= ``minimum``."""
    if isinstance(size, bool) or not isinstance(size, int) or \
            size < minimum:
        raise ValueError('%s must be an integer of at least %d, not %r' % (
            name, minimum, size))


def check_path(path):
    """Raise ValueError unless ``path`` is absolute and normalized."""
    if (not isinstance(path, str) or not path.startswith('/') or
            '\x00' in path or os.path.normpath(path) != path or
            path.startswith('//')):
        raise ValueError('%r is not an absolute, normalized path' % (path,))


def is_block_device(path):
    """Whether ``path`` is (a symbolic link to) a block device."""
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def check_block_device(path):
    """Raise ValueError unless ``path`` is a block device under ``/dev``."""
    check_path(path)
    if not path.startswith('/dev/'):
        raise ValueError('%s is not under /dev' % path)
    if not is_block_device(path):
        raise ValueError('%s is not a block device' % path)


def check_loop_over_block_device(device):
    """Raise ValueError unless ``device`` is a loop device over a device.

    Such as the metadata-only activation's view of a volume, over a
    physical volume. Loop devices over files belong to someone else.
    """
    if not is_loop_device(device):
        raise ValueError('%r is not a loop device' % (device,))
    backing = [loop['back-file'] for loop in loop_devices()
               if loop['name'] == device]
    if not backing:
        raise ValueError('%s is not attached' % device)
    if not is_block_device(backing[0]):
        raise ValueError('%s is over %s, not over a block device' % (
            device, backing[0]))


def is_loop_device(path):
    return bool(_LOOP.match(path or ''))


def loop_devices(sys_block='/sys/block'):
    """The attached loop devices: ``[{name, back-file, offset, sizelimit}]``.

    Read from sysfs, as ``losetup --list`` does; needs no privilege.
    """
    found = []
    try:
        names = sorted(os.listdir(sys_block))
    except FileNotFoundError:
        return found
    for name in names:
        if not name.startswith('loop') or not name[4:].isdigit():
            continue
        loop = os.path.join(sys_block, name, 'loop')
        try:
            with open(os.path.join(loop, 'backing_file')) as f:
                back = f.read().rstrip('\n')
            with open(os.path.join(loop, 'offset')) as f:
                offset = int(f.read())
            with open(os.path.join(loop, 'sizelimit')) as f:
                sizelimit = int(f.read())
        except (FileNotFoundError, ValueError):
            # Not attached (no loop/ directory), or detached while read.
            continue
        found.append({'name': '/dev/' + name, 'back-file': back,
                      'offset': offset, 'sizelimit': sizelimit})
    return found
