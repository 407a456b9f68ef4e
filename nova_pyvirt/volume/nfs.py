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

"""NFS volumes: a file in an NFS export, as cinder's ``nfs`` driver hands it.

``connection_info['data']`` holds:

``export``
    the share, ``host:/path`` (``[v6addr]:/path`` for IPv6);
``name``
    the file name of the volume inside the export;
``options``
    mount options of the share, e.g. ``-o vers=4.1`` (optional);
``format``
    ``raw`` (default) or ``qcow2``.

Two transports, chosen with ``[pyvirt] nfs_transport``:

``qemu``
    Nothing happens on the host. QEMU's own NFS client (libnfs, the
    ``block-nfs`` module of ``qemu-block-extra``) opens the file:
    ``<disk type='network'><source protocol='nfs' name='/path/name'>
    <host name='host'/><identity user='root' group='root'/></source>``.
    libnfs authenticates with AUTH_SYS and sends the uid and gid of
    ``<identity>``; without that element it sends QEMU's process ids, which
    are host-specific (``libvirt-qemu`` is uid 64055 on Debian, other ids
    elsewhere) and mean nothing to the NFS server. The identity is
    root:root (:data:`QEMU_NFS_USER`, :data:`QEMU_NFS_GROUP`): the same on
    every compute host, and the identity cinder's NFS driver itself creates
    and writes volume files with (unless ``nas_secure_file_operations`` is
    on), so shares set up for cinder already let it read and write them
    (``no_root_squash``; with root squashed, files cinder made
    world-writable still work). Shares that only let a dedicated uid in
    (cinder's secure mode) need another identity, which is not configurable
    yet. The share's mount ``options`` do not apply: QEMU's client takes
    none (it speaks NFSv3 and asks the server's portmapper for the ports).
``mount``
    The export is mounted with os-brick's
    :class:`~os_brick.remotefs.remotefs.RemoteFsClient` under
    ``[pyvirt] nfs_mount_point_base/<md5 of the export>`` (nova's libvirt
    driver uses the same layout) with ``[pyvirt] nfs_mount_options`` plus
    the share's ``options``, and the guest gets the file
    ``<mount point>/<name>``. Several volumes of one export share a mount:
    :meth:`NFSVolumeDriver.disconnect` unmounts only when no other volume
    uses it. nova counts the volumes it connected and, when nova-compute
    starts, the file disks of every libvirt domain under each mount point;
    this driver does both at every disconnect: the volumes connected by this
    process plus the file disks of all libvirt domains (running or not) in
    the mount point, other than the one being disconnected. If libvirt
    cannot be asked, the export stays mounted: a stale mount costs nothing,
    unmounting a file a guest still uses costs its data.

    Root: os-brick runs ``mount`` through its own privsep daemon
    (``[privsep_osbrick]``, the ``os_brick.privileged.default`` context
    nova-compute starts for os-brick's connectors too); ``umount``, which
    os-brick has no call for, is the driver's privsep entrypoint
    :func:`nova_pyvirt.privsep.mounts.umount_nfs`. The mount point itself
    is made by os-brick as nova-compute's user (``mkdir -p``) and removed
    by the driver the same way, so ``nfs_mount_point_base`` must belong to
    that user, as nova's own ``[libvirt] nfs_mount_point_base`` does.
    Where the host has a kernel NFS client, a test hot-plugs a volume
    through a real mount of an NFS server's export. The project's test
    machines have none (``mount -t nfs`` cannot work): there this
    transport is tested against os-brick's and ``umount``'s command lines,
    and mount attempts (one from an unprivileged process) reach the kernel
    and fail with the kernel's own error; the ``qemu`` transport is tested
    against a real NFS server and guest.

Extending needs nothing on the host: cinder grows the file, and the driver
tells QEMU the new size (``virDomainBlockResize``).
"""

import collections
import os
import posixpath

import libvirt
from os_brick.remotefs import remotefs
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_log import log as logging

from nova import exception
from nova import utils as nova_utils

from nova_pyvirt.privsep import mounts as privsep_mounts
from nova_pyvirt import volume
from nova_pyvirt import xml
from nova_pyvirt.xml import devices

LOG = logging.getLogger(__name__)

# Who QEMU's NFS client claims to be (libvirt ``<identity>``); see above.
QEMU_NFS_USER = 'root'
QEMU_NFS_GROUP = 'root'

FORMATS = ('raw', 'qcow2')

MOUNTS_FILE = '/proc/mounts'

# mount point -> {(volume file name, instance uuid)} connected by this
# process. Guarded by the per-mount-point lock of _mount_lock().
_CONNECTED = collections.defaultdict(set)


def _mount_lock(mountpoint):
    return lockutils.lock('pyvirt-nfs-mount-' + mountpoint)


def _volume_name(connection_info):
    """What messages call the volume: its id, else its file name."""
    data = connection_info.get('data') or {}
    return (connection_info.get('serial') or data.get('volume_id') or
            data.get('name') or 'unknown')


def split_export(export):
    """``host:/path`` (or ``[v6addr]:/path``) -> ``(host, '/path')``.

    :raises ValueError: when ``export`` does not have that shape.
    """
    export = export or ''
    if export.startswith('['):
        host, sep, rest = export[1:].partition(']:')
    else:
        host, sep, rest = export.partition(':')
    if not host or not sep or not rest.startswith('/'):
        raise ValueError(export)
    path = posixpath.normpath(rest)
    if path.startswith('//'):
        path = '/' + path.lstrip('/')
    return host, path


def _decode_mount_field(field):
    # /proc/mounts escapes space, tab, newline and backslash in octal.
    return (field.replace('\\040', ' ').replace('\\011', '\t')
            .replace('\\012', '\n').replace('\\134', '\\'))


def is_mounted(mountpoint, mounts_file=None):
    """True if something is mounted on ``mountpoint``.

    Reads the mount table rather than calling ``os.path.ismount``, which
    stats the directory and hangs when the NFS server behind it is gone.
    """
    mountpoint = os.path.normpath(mountpoint)
    with open(mounts_file or MOUNTS_FILE) as mounts:
        for line in mounts:
            fields = line.split()
            if (len(fields) > 1 and os.path.normpath(
                    _decode_mount_field(fields[1])) == mountpoint):
                return True
    return False


@volume.register('nfs')
class NFSVolumeDriver(volume.VolumeDriver):
    """A volume file in an NFS export, reached by QEMU or through a mount."""

    # -- what connection_info says ---------------------------------------

    def _invalid(self, connection_info, reason):
        data = connection_info.get('data') or {}
        return exception.InvalidVolume(
            reason='NFS volume %s (export %s, file %s): %s' % (
                _volume_name(connection_info), data.get('export'),
                data.get('name'), reason))

    def _parse(self, connection_info):
        """``(export, host, path, name, format)`` of a valid volume."""
        data = connection_info.get('data') or {}
        export = data.get('export')
        try:
            host, path = split_export(export)
        except ValueError:
            raise self._invalid(connection_info,
                                'the export is not host:/path')
        name = data.get('name')
        if (not name or '/' in name or name in ('.', '..') or
                '\x00' in name):
            raise self._invalid(connection_info,
                                'the file name must be one path component')
        fmt = data.get('format') or 'raw'
        if fmt not in FORMATS:
            raise self._invalid(connection_info,
                                'format %r is not one of %s' % (
                                    fmt, ', '.join(FORMATS)))
        return export, host, path, name, fmt

    @property
    def transport(self):
        return self.conf.pyvirt.nfs_transport

    # -- the VolumeDriver interface --------------------------------------

    def connect(self, connection_info, instance):
        export, _host, _path, name, _fmt = self._parse(connection_info)
        if self.transport == 'qemu':
            options = (connection_info.get('data') or {}).get('options')
            if options:
                LOG.debug('NFS volume %(vol)s: QEMU connects to %(export)s '
                          'itself; share options %(opts)r do not apply',
                          {'vol': _volume_name(connection_info),
                           'export': export, 'opts': options})
            return
        self._mount(connection_info, instance, export, name)

    def disk_source(self, connection_info, instance):
        export, host, path, name, fmt = self._parse(connection_info)
        if self.transport == 'qemu':
            disk = devices.Disk(type='network', driver_type=fmt)
            disk.source_protocol = 'nfs'
            disk.source_name = posixpath.join(path, name)
            disk.source_hosts = [devices.DiskSourceHost(name=host)]
            disk.source_identity_user = QEMU_NFS_USER
            disk.source_identity_group = QEMU_NFS_GROUP
            return disk
        disk = devices.Disk(type='file', driver_type=fmt)
        disk.source_path = os.path.join(self._mountpoint(export), name)
        return disk

    def disconnect(self, connection_info, instance):
        if self.transport == 'qemu':
            return
        export, _host, _path, name, _fmt = self._parse(connection_info)
        self._unmount_if_unused(connection_info, instance, export, name)

    def extend(self, connection_info, instance, requested_size):
        # cinder grew the file; nothing on the host caches its size. The
        # driver resizes the guest's disk with virDomainBlockResize.
        self._parse(connection_info)
        return requested_size

    # -- mount transport -------------------------------------------------

    def _client(self):
        # No executor of our own: os-brick then runs mount through its
        # privsep daemon. The root helper is the argument nova hands
        # os-brick's connectors too; os-brick's executor ignores it (its
        # daemon starts through the root helper nova-compute gives
        # oslo.privsep when it starts, or [privsep_osbrick] helper_command).
        return remotefs.RemoteFsClient(
            'nfs', nova_utils.get_root_helper(),
            nfs_mount_point_base=self.conf.pyvirt.nfs_mount_point_base,
            nfs_mount_options=self.conf.pyvirt.nfs_mount_options)

    def _mountpoint(self, export):
        return self._client().get_mount_point(export)

    def _mount(self, connection_info, instance, export, name):
        client = self._client()
        mountpoint = client.get_mount_point(export)
        options = (connection_info.get('data') or {}).get('options')
        flags = options.split() if options else None
        with _mount_lock(mountpoint):
            try:
                client.mount(export, flags)
            except Exception as exc:
                self._remove_mountpoint(mountpoint)
                raise exception.VolumeAttachFailed(
                    volume_id=_volume_name(connection_info),
                    reason='mounting NFS export %s on %s failed: %s' % (
                        export, mountpoint, exc))
            _CONNECTED[mountpoint].add((name, instance.uuid))
        connection_info['data']['device_path'] = os.path.join(mountpoint,
                                                              name)

    def _unmount_if_unused(self, connection_info, instance, export, name):
        mountpoint = self._mountpoint(export)
        with _mount_lock(mountpoint):
            connected = _CONNECTED[mountpoint]
            connected.discard((name, instance.uuid))
            if not is_mounted(mountpoint):
                _CONNECTED.pop(mountpoint, None)
                return
            users = set(connected)
            try:
                users |= self._domain_users(mountpoint)
            except Exception as exc:
                LOG.warning('NFS volume %(vol)s: keeping export %(export)s '
                            'mounted on %(mp)s, since libvirt cannot tell '
                            'which guests use it: %(err)s',
                            {'vol': _volume_name(connection_info),
                             'export': export, 'mp': mountpoint,
                             'err': exc})
                return
            users.discard((name, instance.uuid))
            if users:
                LOG.debug('NFS export %(export)s stays mounted on %(mp)s: '
                          'still used by %(users)s',
                          {'export': export, 'mp': mountpoint,
                           'users': sorted(users)})
                return
            self._umount(connection_info, export, mountpoint)
            if not is_mounted(mountpoint):
                _CONNECTED.pop(mountpoint, None)

    def _domain_users(self, mountpoint):
        """``{(file name, domain uuid)}`` of file disks in ``mountpoint``."""
        users = set()
        mountpoint = os.path.normpath(mountpoint)
        for dom in self.host.list_domains():
            try:
                uuid = dom.UUIDString()
                definition = xml.Domain.from_xml(dom.XMLDesc(0))
            except libvirt.libvirtError as exc:
                # A domain undefined while we looked uses nothing.
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue
                raise
            for disk in definition.disks:
                if disk.type != 'file' or not disk.source_file:
                    continue
                directory, base = os.path.split(disk.source_file)
                if os.path.normpath(directory) == mountpoint:
                    users.add((base, uuid))
        return users

    def _umount(self, connection_info, export, mountpoint):
        try:
            privsep_mounts.umount_nfs(mountpoint)
        except (processutils.ProcessExecutionError, ValueError) as exc:
            # As nova does: the detach already happened; a busy mount (or
            # one the daemon refuses: no longer NFS) is left for the next
            # disconnect rather than failing this one.
            LOG.error('NFS volume %(vol)s: could not unmount export '
                      '%(export)s from %(mp)s: %(err)s',
                      {'vol': _volume_name(connection_info),
                       'export': export, 'mp': mountpoint,
                       'err': getattr(exc, 'stderr', None) or exc})
            return
        self._remove_mountpoint(mountpoint)

    @staticmethod
    def _remove_mountpoint(mountpoint):
        # rmdir, not rmtree: it only removes an empty, unmounted directory.
        if is_mounted(mountpoint):
            return
        try:
            os.rmdir(mountpoint)
        except FileNotFoundError:
            pass
        except OSError as exc:
            LOG.warning('could not remove mount point %(mp)s: %(err)s',
                        {'mp': mountpoint, 'err': exc})
