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

"""Unmounting the NFS exports of volumes.

os-brick mounts NFS exports for the ``mount`` transport of
:mod:`nova_pyvirt.volume.nfs`, through its own privsep daemon; os-brick
has no call that unmounts them, so this entrypoint does. It unmounts a
mount point only if the mount table shows an NFS file system mounted
there: nothing else on the host can be unmounted through it.
"""

import os

from nova_pyvirt import privsep
from nova_pyvirt.privsep import _process

MOUNTS_FILE = '/proc/self/mounts'

NFS_TYPES = ('nfs', 'nfs4')


def _decode(field):
    # The mount table escapes space, tab, newline and backslash in octal.
    return (field.replace('\\040', ' ').replace('\\011', '\t')
            .replace('\\012', '\n').replace('\\134', '\\'))


def mounted_type(mountpoint, mounts_file=None):
    """The file system type last mounted on ``mountpoint``, or None."""
    found = None
    with open(mounts_file or MOUNTS_FILE) as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and os.path.normpath(
                    _decode(fields[1])) == mountpoint:
                found = fields[2]
    return found


@privsep.sys_admin_pctxt.entrypoint
def umount_nfs(mountpoint):
    """Unmount the NFS export mounted on ``mountpoint``.

    :raises ValueError: no NFS export is mounted there.
    :raises processutils.ProcessExecutionError: umount failed (busy).
    """
    _process.check_path(mountpoint)
    fstype = mounted_type(mountpoint)
    if fstype not in NFS_TYPES:
        raise ValueError('%s is not an NFS mount (%s)' % (
            mountpoint, fstype or 'nothing is mounted there'))
    _process.execute('umount', mountpoint)
