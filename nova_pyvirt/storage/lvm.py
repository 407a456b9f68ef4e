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

"""Instance disks as LVM logical volumes (``[pyvirt] images_type = lvm``).

Each disk is one linear logical volume in ``[pyvirt] images_volume_group``
named ``<instance uuid>_<disk name>``, as nova names them
(``<uuid>_disk``, ``<uuid>_disk.eph0``, ``<uuid>_disk.swap``). The backend
has the interface of the file backends in
:mod:`~nova_pyvirt.storage.backends`; the ``path`` it is given is the
disk's path in the instance directory (``<instances_path>/<uuid>/disk``),
from which the volume name is derived, and nothing is written there. The
disks it returns are block devices in raw format
(``LocalDisk(source_type='block', format='raw', path='/dev/<vg>/<lv>')``).

* root: ``lvcreate`` at the flavor's size (never smaller than the image's
  virtual size), then ``qemu-img convert -n -t none -O raw`` from the
  cached image onto the volume;
* ephemeral: ``lvcreate`` then ``mkfs.ext4`` (when installed);
* swap: ``lvcreate`` then ``mkswap``;
* :meth:`LvmBackend.resize` grows a volume with ``lvextend``;
* :meth:`LvmBackend.delete` and :meth:`LvmBackend.delete_instance` remove
  volumes with ``lvremove``, after clearing them as nova's ``[libvirt]
  volume_clear`` says (``zero``, nova's default: ``dd`` from /dev/zero;
  ``shred``: three random passes; ``none``), the first ``[libvirt]
  volume_clear_size`` MiB of each or, when that is 0, all of it.

A create never touches an existing volume (:class:`errors.DiskExists`)
and removes the volume it made when a later step fails, interrupted
threads included: a failed create leaves no volume behind.

Unlike nova, the area of a root volume past the image's virtual size is
not zeroed when it is created: a new volume may show data of a volume
deleted earlier unless deleted volumes are cleared (``volume_clear`` not
``none``, with ``volume_clear_size = 0``).

Activation: the test seam
-------------------------
How the volumes' data is reached is an explicit *activation* strategy,
given to :class:`LvmBackend` by its creator and never guessed:

* :class:`DeviceActivation` (the default, and the only one
  :func:`~nova_pyvirt.storage.backends.backend_for` uses): lvm2 activates
  each volume and the guest gets ``/dev/<vg>/<lv>``.
* :class:`MetadataOnlyActivation`, for tests on machines without
  device-mapper, where no volume can be activated: lvm2 runs with
  ``--config 'global { activation = 0 }'`` and ``DM_DISABLE_UDEV=1``,
  creates volumes with ``-an -Zn`` in one contiguous run of extents, and
  the data of a volume is reached through a loop device over its byte
  range of the physical volume (``losetup --direct-io=on --offset
  --sizelimit``), computed
  by :meth:`LvmBackend.extent`. The loop device is what the guest gets; it
  stays attached while the volume exists.

Root
----
lvm2, ``losetup`` and every write to a volume's device need root: they
are entrypoints of the driver's privsep daemon
(:mod:`nova_pyvirt.privsep.volume_group` and
:mod:`nova_pyvirt.privsep.block_device`), which build the command lines.
An activation only says which mode they run in (``metadata_only``). This
module runs no command itself; loop devices are listed from sysfs.
"""

import contextlib
import dataclasses
import os

from nova import exception
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import units

from nova_pyvirt.design import request
from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.privsep import block_device
from nova_pyvirt.privsep import volume_group
from nova_pyvirt.storage import errors
from nova_pyvirt.storage import fileops

LOG = logging.getLogger(__name__)

FORMAT = 'raw'
SOURCE_TYPE = 'block'

#: Values of nova's ``[libvirt] volume_clear``: ``none`` removes volumes
#: as they are, ``zero`` overwrites them with zeros first, ``shred`` with
#: three passes of random data.
VOLUME_CLEAR_CHOICES = ('none', 'zero', 'shred')

# What can go wrong in a privsep call: the command failed, the program is
# missing, or the daemon refused the arguments.
_COMMAND_ERRORS = (processutils.ProcessExecutionError, OSError, ValueError)


def volume_name(path):
    """The volume name of the instance disk ``path``.

    ``<instances_path>/<uuid>/disk.eph0`` gives ``<uuid>_disk.eph0``.

    :raises ValueError: the result is not a valid lvm2 volume name.
    """
    disk = os.path.basename(path)
    instance = os.path.basename(os.path.dirname(path))
    name = '%s_%s' % (instance, disk)
    if not instance or not disk or not valid_volume_name(name):
        raise ValueError('%r does not give a valid volume name (%r)' % (
            path, name))
    return name


def valid_volume_name(name):
    """Whether lvm2 accepts ``name`` as a logical volume name."""
    return volume_group.valid_volume_name(name)


@dataclasses.dataclass(frozen=True)
class Extent:
    """Where a linear volume's data lies on its physical volume."""

    pv: str          # the physical volume's device, such as /dev/sdb
    offset: int      # bytes from the start of the physical volume
    size: int        # bytes: the volume's size


class DeviceActivation(object):
    """lvm2 activates volumes; the guest gets ``/dev/<vg>/<lv>``.

    The normal path, on hosts with device-mapper.
    """

    #: The mode of the lvm2 entrypoints (see
    #: :mod:`nova_pyvirt.privsep.volume_group`).
    metadata_only = False

    def attach(self, backend, lv):
        """The path through which ``lv``'s data is read and written."""
        return backend.device_path(lv)

    def detach(self, backend, lv):
        """Release what :meth:`attach` set up (nothing here)."""


class MetadataOnlyActivation(DeviceActivation):
    """For tests on machines without device-mapper: no volume is activated.

    lvm2 works on its metadata only, and a volume's data is reached through
    a loop device over the volume's byte range of its physical volume
    (``pe_start + first_pe * extent_size``, :meth:`LvmBackend.extent`).
    Volumes are created in one contiguous run of extents and only grown
    where the next extents are free, so that the range stays one piece.
    The loop device stays attached while the volume exists; it is found
    again by its backing device and offset, so no state is kept here.

    Test code chooses it explicitly: ``LvmBackend(vg,
    activation=MetadataOnlyActivation())``. Production code never does.
    """

    metadata_only = True

    def attach(self, backend, lv):
        extent = backend.extent(lv)
        for loop in loop_devices():
            if (loop['back-file'] == extent.pv and
                    int(loop['offset']) == extent.offset and
                    int(loop['sizelimit']) == extent.size):
                return loop['name']
        device = volume_group.attach_range(extent.pv, extent.offset,
                                           extent.size)
        LOG.debug('Volume %(lv)s is reachable at %(dev)s (%(pv)s from '
                  'byte %(offset)d)', {'lv': lv, 'dev': device,
                                       'pv': extent.pv,
                                       'offset': extent.offset})
        return device

    def detach(self, backend, lv):
        extent = backend.extent(lv)
        for loop in loop_devices():
            if (loop['back-file'] == extent.pv and
                    int(loop['offset']) == extent.offset):
                volume_group.detach_loop(loop['name'])


def loop_devices():
    """The host's loop devices: ``[{name, back-file, offset, sizelimit}]``.

    Read from sysfs (as ``losetup --list`` does), which needs no privilege.
    """
    return volume_group.loop_devices()


class LvmBackend(object):
    """Instance disks as logical volumes of ``volume_group``.

    :param volume_group: the volume group; it must exist.
    :param volume_clear: how volumes are cleared before they are removed:
        ``'none'``, ``'zero'`` or ``'shred'`` (nova's ``[libvirt]
        volume_clear``).
    :param volume_clear_size: MiB cleared from the start of each volume;
        0 clears all of it (nova's ``[libvirt] volume_clear_size``).
    :param activation: :class:`DeviceActivation` (default) or, in tests
        only, :class:`MetadataOnlyActivation`.
    :raises nova_pyvirt.exception.InvalidHostConfiguration: no volume
        group given, the volume group does not exist, or an unknown
        ``volume_clear`` or negative ``volume_clear_size``.
    """

    FORMAT = FORMAT

    def __init__(self, volume_group, volume_clear='none',
                 volume_clear_size=0, activation=None):
        if not volume_group:
            raise pyvirt_exception.InvalidHostConfiguration(
                option='images_volume_group', value=volume_group,
                reason='a volume group is required when images_type is lvm')
        if volume_clear not in VOLUME_CLEAR_CHOICES:
            raise pyvirt_exception.InvalidHostConfiguration(
                group='libvirt', option='volume_clear', value=volume_clear,
                reason='must be one of %s' % ', '.join(VOLUME_CLEAR_CHOICES))
        if (isinstance(volume_clear_size, bool) or
                not isinstance(volume_clear_size, int) or
                volume_clear_size < 0):
            raise pyvirt_exception.InvalidHostConfiguration(
                group='libvirt', option='volume_clear_size',
                value=volume_clear_size,
                reason='MiB to clear, 0 for the whole volume')
        self.volume_group = volume_group
        self.volume_clear = volume_clear
        self.volume_clear_size = volume_clear_size
        self.activation = activation or DeviceActivation()
        self.check_volume_group()

    @classmethod
    def from_conf(cls, conf, activation=None):
        """The backend ``[pyvirt] images_volume_group`` names.

        Cleared on removal as nova's ``[libvirt] volume_clear`` and
        ``volume_clear_size`` say, the options nova's libvirt driver reads
        for its LVM images.
        """
        return cls(conf.pyvirt.images_volume_group,
                   volume_clear=conf.libvirt.volume_clear,
                   volume_clear_size=conf.libvirt.volume_clear_size,
                   activation=activation)

    # -- the volume group ---------------------------------------------

    def check_volume_group(self):
        """Check that the volume group exists.

        :raises nova_pyvirt.exception.InvalidHostConfiguration: it does not
            (or lvm2 cannot be run).
        """
        try:
            if not self._vgs('vg_name'):
                raise ValueError('volume group %s not found' %
                                 self.volume_group)
        except _COMMAND_ERRORS as exc:
            raise pyvirt_exception.InvalidHostConfiguration(
                option='images_volume_group', value=self.volume_group,
                reason='the volume group cannot be used: %s' % (
                    _describe(exc),)) from exc

    def capacity(self):
        """``(size, free)`` of the volume group, in bytes."""
        row = self._vgs('vg_size', 'vg_free')[0]
        return int(row['vg_size']), int(row['vg_free'])

    def volumes(self, instance_uuid=None):
        """``{name: size in bytes}`` of the group's volumes.

        :param instance_uuid: only this instance's volumes.
        """
        rows = volume_group.lvs(
            self.volume_group, ['lv_name', 'lv_size'],
            metadata_only=self.activation.metadata_only)
        prefix = '%s_' % instance_uuid if instance_uuid else ''
        return {r['lv_name']: int(r['lv_size']) for r in rows
                if r['lv_name'].startswith(prefix)}

    def device_path(self, lv):
        """``/dev/<vg>/<lv>``: the volume's device once activated."""
        return os.path.join('/dev', self.volume_group, lv)

    def extent(self, path_or_lv):
        """The byte range of a volume on its physical volume.

        The volume must be linear, on one physical volume, in one
        contiguous run of extents. Its data starts at ``pe_start +
        first_pe * extent_size`` of the physical volume: ``pe_start`` from
        ``pvs``, the physical extents from ``lvs -o seg_pe_ranges`` (not
        ``seg_start_pe``, which counts from the start of the *volume*).

        :raises ValueError: the volume's layout is not one range.
        :raises processutils.ProcessExecutionError: no such volume.
        """
        lv = self._lv(path_or_lv)
        rows = list(volume_group.lvs(
            self.volume_group,
            ['lv_name', 'lv_size', 'segtype', 'seg_start_pe',
             'seg_pe_ranges', 'vg_extent_size'], lv=lv,
            metadata_only=self.activation.metadata_only))
        rows.sort(key=lambda r: int(r['seg_start_pe']))
        pv = None
        first = last = None
        for row in rows:
            ranges = row['seg_pe_ranges'].split()
            if row['segtype'] not in ('linear', 'striped') or \
                    len(ranges) != 1:
                raise ValueError('volume %s is not linear (%s: %s)' % (
                    lv, row['segtype'], row['seg_pe_ranges']))
            seg_pv, _sep, span = ranges[0].rpartition(':')
            start, _sep, end = span.partition('-')
            start, end = int(start), int(end)
            if pv is None:
                pv, first = seg_pv, start
            elif seg_pv != pv or start != last + 1:
                raise ValueError(
                    'volume %s is not one contiguous range of %s: %s' % (
                        lv, pv, ' '.join(r['seg_pe_ranges'] for r in rows)))
            last = end
        extent_size = int(rows[0]['vg_extent_size'])
        size = int(rows[0]['lv_size'])
        if (last - first + 1) * extent_size != size:
            raise ValueError('volume %s: extents %d-%d do not hold its %d '
                             'bytes' % (lv, first, last, size))
        pvs = volume_group.pvs(pv, ['pv_name', 'pe_start'],
                               metadata_only=self.activation.metadata_only)
        return Extent(pv=pv, offset=int(pvs[0]['pe_start']) +
                      first * extent_size, size=size)

    # -- disks ----------------------------------------------------------

    def create_root(self, base, path, size_bytes, name=None):
        """Create the root volume of ``path`` from the cached image ``base``.

        :param base: a :class:`~nova_pyvirt.storage.imagecache.CachedImage`.
        :param size_bytes: the flavor's disk size; 0 or None means the
            image's virtual size. lvm2 rounds it up to whole extents.
        :param name: the LocalDisk name; default: the file name (``disk``).
        :raises nova.exception.FlavorDiskSmallerThanImage: ``size_bytes``
            is smaller than the image's virtual size.
        :raises errors.DiskExists: the volume exists; it is left alone.
        :raises errors.DiskCreationFailed: lvcreate or the copy failed;
            no volume is left.
        :returns: a :class:`~nova_pyvirt.design.request.LocalDisk`.
        """
        size = size_bytes or base.virtual_size
        if size < base.virtual_size:
            raise exception.FlavorDiskSmallerThanImage(
                flavor_size=size, image_size=base.virtual_size)
        lv = volume_name(path)
        with self._creating('root', lv, size) as device:
            block_device.write_image(base.path, base.format, device)
        return self._local_disk(name or os.path.basename(path), device)

    def create_blank(self, path, size_bytes, name, label='ephemeral0',
                     filesystem='ext4'):
        """Create the ephemeral volume of ``path``.

        :param filesystem: ``'ext4'`` to format it when ``mkfs.ext4`` is
            installed (else it stays unformatted, with a warning), or None.
        :returns: a :class:`~nova_pyvirt.design.request.LocalDisk`.
        """
        fileops.check_size(size_bytes)
        mkfs = fileops.ephemeral_formatter(filesystem, label, path)
        lv = volume_name(path)
        with self._creating('ephemeral', lv, size_bytes) as device:
            if mkfs is not None:
                block_device.format_ext4(device, label)
        return self._local_disk(name, device)

    def create_swap(self, path, size_bytes, name=None):
        """Create the swap volume of ``path``, prepared by mkswap."""
        fileops.check_size(size_bytes)
        tool = fileops.find_tool('mkswap')
        lv = volume_name(path)
        if tool is None:
            raise errors.DiskCreationFailed(
                kind='swap', path=self.device_path(lv),
                reason='mkswap is not installed (package util-linux)')
        with self._creating('swap', lv, size_bytes) as device:
            block_device.format_swap(device)
        return self._local_disk(name or os.path.basename(path), device)

    def resize(self, path, size_bytes, name=None):
        """Grow the volume of ``path`` to ``size_bytes`` (``lvextend``).

        Volumes never shrink: a smaller size is refused. The guest's file
        systems are not grown. With :class:`MetadataOnlyActivation` the
        volume's loop device is set up again, so the returned path may
        differ from the one before.

        :returns: a :class:`~nova_pyvirt.design.request.LocalDisk`.
        """
        fileops.check_size(size_bytes)
        lv = self._lv(path)
        current = self.volumes().get(lv)
        if current is None:
            raise exception.DiskNotFound(location=self.device_path(lv))
        if size_bytes < current:
            raise exception.ResizeError(
                reason='volume %s is %d bytes; it cannot shrink to %d' % (
                    lv, current, size_bytes))
        if size_bytes > current:
            self.activation.detach(self, lv)
            volume_group.lvextend(
                self.volume_group, lv, size_bytes,
                metadata_only=self.activation.metadata_only)
        device = self.activation.attach(self, lv)
        return self._local_disk(name or lv.partition('_')[2], device)

    def delete(self, path):
        """Remove the volume of ``path``; nothing happens if it is gone.

        :param path: the instance disk path given to create, or
            ``/dev/<vg>/<lv>``.

        :raises nova.exception.VolumesNotRemoved: lvremove failed.
        """
        lv = self._lv(path)
        if lv in self.volumes():
            self._remove(lv)

    def delete_instance(self, instance_uuid):
        """Remove every volume of the instance; returns their names.

        :raises nova.exception.VolumesNotRemoved: some could not be
            removed (all were tried).
        """
        names = sorted(self.volumes(instance_uuid))
        failed = []
        for lv in names:
            try:
                self._remove(lv)
            except exception.VolumesNotRemoved as exc:
                failed.append(str(exc))
        if failed:
            raise exception.VolumesNotRemoved(reason='; '.join(failed))
        return names

    # -- internals -------------------------------------------------------

    def _local_disk(self, name, device):
        return request.LocalDisk(name=name, path=device, format=FORMAT,
                                 source_type=SOURCE_TYPE)

    def _lv(self, path_or_lv):
        prefix = self.device_path('')
        if path_or_lv.startswith(prefix):
            return path_or_lv[len(prefix):]
        if os.sep not in path_or_lv and valid_volume_name(path_or_lv):
            return path_or_lv
        return volume_name(path_or_lv)

    def _vgs(self, *fields):
        return volume_group.vgs(self.volume_group, list(fields),
                                metadata_only=self.activation.metadata_only)

    @contextlib.contextmanager
    def _creating(self, kind, lv, size):
        """Create ``lv`` of ``size`` bytes; yield the path to fill it.

        Errors become DiskCreationFailed; on any failure the volume is
        removed (an existing volume is never touched).
        """
        device = self.device_path(lv)
        if lv in self.volumes():
            raise errors.DiskExists(kind=kind, path=device)
        try:
            volume_group.lvcreate(
                self.volume_group, lv, size,
                metadata_only=self.activation.metadata_only)
        except _COMMAND_ERRORS as exc:
            raise errors.DiskCreationFailed(kind=kind, path=device,
                                            reason=_describe(exc)) from exc
        done = False
        try:
            try:
                yield self.activation.attach(self, lv)
            except processutils.ProcessExecutionError as exc:
                raise errors.DiskCreationFailed(
                    kind=kind, path=device, reason=_describe(exc)) from exc
            except (OSError, ValueError) as exc:
                raise errors.DiskCreationFailed(kind=kind, path=device,
                                                reason=exc) from exc
            done = True
        finally:
            if not done:
                self._remove_after_failure(lv)
        LOG.debug('Created the %(kind)s volume %(vg)s/%(lv)s',
                  {'kind': kind, 'vg': self.volume_group, 'lv': lv})

    def _remove_after_failure(self, lv):
        try:
            self._remove(lv, clear=False)
        except Exception as exc:
            LOG.error('Could not remove the volume %(vg)s/%(lv)s of a '
                      'failed create: %(err)s',
                      {'vg': self.volume_group, 'lv': lv, 'err': exc})

    def _remove(self, lv, clear=True):
        try:
            if clear and self.volume_clear != 'none':
                self._clear(lv)
            self.activation.detach(self, lv)
            volume_group.lvremove(
                self.volume_group, lv,
                metadata_only=self.activation.metadata_only)
        except _COMMAND_ERRORS as exc:
            raise exception.VolumesNotRemoved(
                reason='%s/%s: %s' % (self.volume_group, lv,
                                      _describe(exc))) from exc
        LOG.debug('Removed the volume %(vg)s/%(lv)s',
                  {'vg': self.volume_group, 'lv': lv})

    def _clear(self, lv):
        size = self.volumes()[lv]
        if self.volume_clear_size:
            size = min(size, self.volume_clear_size * units.Mi)
        device = self.activation.attach(self, lv)
        if self.volume_clear == 'shred':
            block_device.shred(device, size)
        else:
            block_device.zero(device, size)


def _describe(exc):
    if isinstance(exc, processutils.ProcessExecutionError):
        return '%s failed: %s' % (
            exc.cmd, (exc.stderr or exc.description or '').strip())
    return str(exc)
