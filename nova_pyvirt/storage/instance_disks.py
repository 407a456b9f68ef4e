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

"""The disks of one instance: created at spawn, recorded, found again.

Spawn fetches the image through the host's image cache, asks the configured
backend for root, ephemeral and swap disks, downloads kernel and ramdisk
images, and records every local disk in ``disk.info`` so that a hard reboot
or power-on designs the same guest again without guessing formats.
"""

import dataclasses
import os
import re

from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import units

from nova import exception
from nova.virt import driver

from nova_pyvirt.design import request
from nova_pyvirt.storage import backends
from nova_pyvirt.storage import imagecache

LOG = logging.getLogger(__name__)

DISK_INFO = 'disk.info'
_OCTAL_ESCAPE = re.compile(r'\\([0-7]{3})')


@dataclasses.dataclass
class DiskSet:
    """Everything design needs to know about an instance's local storage."""

    files: object
    local_disks: list
    kernel_path: str = None
    ramdisk_path: str = None

    @property
    def root(self):
        return next((d for d in self.local_disks if d.name == 'disk'), None)

    def add(self, disk):
        """Record one more local disk (the config drive)."""
        self.local_disks.append(disk)
        self.save()

    def save(self):
        # Files of the instance directory are recorded by name: after a cold
        # migration the record is read on a host whose instances path may
        # differ.
        disks = []
        for disk in self.local_disks:
            entry = dataclasses.asdict(disk)
            entry['path'] = self._relative(disk.path)
            disks.append(entry)
        record = {'disks': disks,
                  'kernel': self._relative(self.kernel_path),
                  'ramdisk': self._relative(self.ramdisk_path)}
        path = self.files.file(DISK_INFO)
        with open(path + '.tmp', 'w') as handle:
            jsonutils.dump(record, handle)
        os.rename(path + '.tmp', path)

    @classmethod
    def load(cls, files):
        try:
            with open(files.file(DISK_INFO)) as handle:
                record = jsonutils.loads(handle.read())
        except FileNotFoundError:
            raise exception.DiskNotFound(location=files.file(DISK_INFO))
        disks = [request.LocalDisk(**d) for d in record['disks']]
        for disk in disks:
            disk.path = _resolve(files, disk.path)
        return cls(files, disks, _resolve(files, record.get('kernel')),
                   _resolve(files, record.get('ramdisk')))

    def _relative(self, path):
        if path and os.path.dirname(path) == self.files.path:
            return os.path.basename(path)
        return path


def _resolve(files, path):
    """A recorded path as a path on this host.

    Names are files of the instance directory. Absolute paths into an
    instance directory of the same name elsewhere (records written before
    names were used, on a host with another instances path) are moved into
    this host's directory; other absolute paths (logical volumes) stay.
    """
    if not path:
        return path
    if not os.path.isabs(path):
        return files.file(path)
    directory, name = os.path.split(path)
    if directory != files.path and \
            os.path.basename(directory) == os.path.basename(files.path):
        return files.file(name)
    return path


def _boots_from_volume(block_device_info):
    return any(bdm.get('boot_index') == 0 for bdm in
               driver.block_device_info_get_mapping(block_device_info))


class InstanceDisks(object):

    def __init__(self, conf):
        self.conf = conf
        # Read once: a compute host's instances path does not move, and two
        # drivers in one process (tests of migration) each keep their own.
        # nova's [DEFAULT] instances_path: nova's image cache pass finds
        # the hosts sharing it by that option, so the driver uses no other.
        self.instances_path = conf.instances_path
        self.cache_subdirectory = conf.image_cache.subdirectory_name
        self.cache = imagecache.ImageCache(
            imagecache.cache_dir(conf),
            conf.oslo_concurrency.lock_path or os.path.join(
                conf.instances_path, 'locks'))
        self.backend = backends.backend_for(conf)

    def create(self, context, instance, image_meta, block_device_info,
               image_api, files):
        """Create the instance's local disks in ``files``; returns a DiskSet.

        Volumes are not touched: the caller connects them (through the
        volume package, which also disconnects them) after this returned,
        so a failure here leaves no host connection behind.
        """
        disks = DiskSet(files, [])
        if not _boots_from_volume(block_device_info):
            if not image_meta.obj_attr_is_set('id') or not image_meta.id:
                raise exception.InvalidBDMImage(
                    details='neither an image nor a boot volume was given')
            base = self.cache.fetch(context, image_api, image_meta.id)
            size = instance.flavor.root_gb * units.Gi or base.virtual_size
            disks.local_disks.append(self.backend.create_root(
                base, files.file('disk'), size))
        for index, size_gb in enumerate(self._ephemeral_sizes(
                instance, block_device_info)):
            name = 'disk.eph%d' % index
            disks.local_disks.append(self.backend.create_blank(
                files.file(name), size_gb * units.Gi, name))
        swap_mb = self._swap_mb(instance, block_device_info)
        if swap_mb:
            disks.local_disks.append(self.backend.create_swap(
                files.file('disk.swap'), swap_mb * units.Mi))
        if instance.kernel_id:
            disks.kernel_path = self._download(context, image_api,
                                               instance.kernel_id,
                                               files.file('kernel'))
            if instance.ramdisk_id:
                disks.ramdisk_path = self._download(
                    context, image_api, instance.ramdisk_id,
                    files.file('ramdisk'))
        disks.save()
        return disks

    def planned(self, instance, block_device_info, files):
        """The local disks :meth:`create` would make, none made.

        Names, paths and devices are the ones create() gives; the format
        is the backend's, as far as guest design cares (validating a
        request before anything is created).
        """
        names = [] if _boots_from_volume(block_device_info) else ['disk']
        names += ['disk.eph%d' % index for index, _size in enumerate(
            self._ephemeral_sizes(instance, block_device_info))]
        if self._swap_mb(instance, block_device_info):
            names.append('disk.swap')
        return [request.LocalDisk(name, files.file(name),
                                  format='raw' if name == 'disk.swap'
                                  else 'qcow2')
                for name in names]

    @staticmethod
    def _ephemeral_sizes(instance, block_device_info):
        ephemerals = driver.block_device_info_get_ephemerals(
            block_device_info)
        if ephemerals:
            return [e['size'] for e in ephemerals]
        return [instance.flavor.ephemeral_gb] if \
            instance.flavor.ephemeral_gb else []

    @staticmethod
    def _swap_mb(instance, block_device_info):
        swap = driver.block_device_info_get_swap(block_device_info)
        if swap and swap.get('swap_size'):
            return swap['swap_size']
        return instance.flavor.swap or 0

    @staticmethod
    def _download(context, image_api, image_id, path):
        image_api.download(context, image_id, dest_path=path)
        if not os.path.getsize(path):
            raise exception.ImageUnacceptable(
                image_id=image_id, reason='the image is empty')
        return path

    def delete(self, instance, files):
        """Remove every disk of the instance, then its directory."""
        delete_instance = getattr(self.backend, 'delete_instance', None)
        if delete_instance is not None:
            delete_instance(instance.uuid)
        files.remove()

    def usage(self):
        """``(total, used)`` bytes of the storage instance disks live on."""
        capacity = getattr(self.backend, 'capacity', None)
        if capacity is not None:
            size, free = capacity()
            return size, size - free
        root = self.instances_path
        os.makedirs(root, exist_ok=True)
        stat = os.statvfs(root)
        total = stat.f_frsize * stat.f_blocks
        used_by_host = total - stat.f_frsize * stat.f_bavail
        if not self._elsewhere():
            # Every instance file is on the file system measured above, so
            # its blocks are in used_by_host already: summing them again
            # (a stat of every file of every instance, every minute) could
            # only come to less (more only for files sharing extents, where
            # the file system's own figure is the true one).
            return total, used_by_host
        return total, max(used_by_host, self.used_bytes())

    def capacity(self):
        """Total bytes of the storage instance disks live on."""
        capacity = getattr(self.backend, 'capacity', None)
        if capacity is not None:
            return capacity()[0]
        root = self.instances_path
        os.makedirs(root, exist_ok=True)
        stat = os.statvfs(root)
        return stat.f_frsize * stat.f_blocks

    def _elsewhere(self):
        """True if instance files may be on another file system.

        That is when a file system is mounted below the instances path, or
        an instance directory is a symbolic link; or when the mount table
        cannot be read.  One read of the mount table and one listing of the
        instances path (no stat): the audit calls this every minute.
        """
        prefix = os.path.realpath(self.instances_path).rstrip('/') + '/'
        try:
            with open('/proc/self/mountinfo') as handle:
                for line in handle:
                    # Field 5 is the mount point; the kernel escapes
                    # space, tab, newline and backslash as \ooo.
                    point = _OCTAL_ESCAPE.sub(
                        lambda m: chr(int(m.group(1), 8)),
                        line.split(' ', 5)[4])
                    if point.startswith(prefix):
                        return True
        except (OSError, IndexError):
            return True
        try:
            with os.scandir(self.instances_path) as entries:
                return any(entry.is_symlink() for entry in entries)
        except OSError:
            return True

    def used_bytes(self):
        """Bytes allocated by instance files under the instances path."""
        total = 0
        root = self.instances_path
        if not os.path.isdir(root):
            return 0
        for entry in os.scandir(root):
            if not entry.is_dir() or entry.name == self.cache_subdirectory:
                continue
            for child in os.scandir(entry.path):
                if child.is_file():
                    total += child.stat().st_blocks * 512
        return total
