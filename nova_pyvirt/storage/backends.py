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

"""Disk backends: an instance's root, ephemeral and swap disks as files.

:func:`backend_for` picks the backend ``[pyvirt] images_type`` names:

* :class:`Qcow2Backend`: the root disk is a qcow2 overlay backed by the
  cached image (``qemu-img create -b``), created in constant time and
  allocating nothing until the guest writes.
* :class:`RawBackend`: the root disk is a sparse raw copy of the cached
  image (``qemu-img convert``, which skips zero areas), grown to size.

Ephemeral disks are blank disks in the backend's format. They get an ext4
file system labelled ``ephemeral0`` (what cloud-init mounts) when
``mkfs.ext4`` (Debian package e2fsprogs) is installed; without it they are
left unformatted, with a warning, for the guest to format: ext4 is a
convenience, not something a guest needs from the host. Swap disks are
always raw files prepared by ``mkswap``.

Every disk file is created sparse. With nova's ``[DEFAULT]
preallocate_images = space`` the backends then reserve the disk's full
size with ``fallocate --keep-size``, as nova's libvirt driver does.

A create never overwrites an existing file (it raises
:class:`~nova_pyvirt.storage.errors.DiskExists`), and removes the file it
started when it fails.
"""

import contextlib
import os
import shutil
import tempfile
import threading

from nova import exception
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import fileutils

from nova_pyvirt.design import request
from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.storage import errors
from nova_pyvirt.storage import fileops
from nova_pyvirt.storage import lvm

LOG = logging.getLogger(__name__)

PREALLOCATE_CHOICES = ('none', 'space')

# ext4 labels hold at most 16 bytes.


def backend_for(conf):
    """The backend for ``conf``'s ``[pyvirt] images_type``.

    ``images_type = lvm`` gives an :class:`~nova_pyvirt.storage.lvm.LvmBackend`
    on ``[pyvirt] images_volume_group``, which must exist.

    :raises nova_pyvirt.exception.InvalidHostConfiguration: an unknown
        images type or preallocation mode; for lvm, no volume group or a
        missing one.
    """
    images_type = conf.pyvirt.images_type
    # nova's [DEFAULT] option; its choices are nova's and may grow.
    preallocate = conf.preallocate_images
    if preallocate not in PREALLOCATE_CHOICES:
        raise pyvirt_exception.InvalidHostConfiguration(
            group='DEFAULT', option='preallocate_images', value=preallocate,
            reason='must be one of %s' % ', '.join(PREALLOCATE_CHOICES))
    if images_type == 'qcow2':
        return Qcow2Backend(preallocate=preallocate)
    if images_type == 'raw':
        return RawBackend(preallocate=preallocate)
    if images_type == 'lvm':
        return lvm.LvmBackend.from_conf(conf)
    raise pyvirt_exception.InvalidHostConfiguration(
        option='images_type', value=images_type,
        reason='unknown images type')


class _FileBackend(object):
    """Disks as files in the instance directory, in the format ``FORMAT``.

    :param preallocate: ``'none'`` (sparse files) or ``'space'``
        (reserve each disk's full size after creating it).
    """

    FORMAT = None

    def __init__(self, preallocate='none'):
        if preallocate not in PREALLOCATE_CHOICES:
            raise ValueError('preallocate must be one of %s, not %r' % (
                ', '.join(PREALLOCATE_CHOICES), preallocate))
        self.preallocate = preallocate

    def create_root(self, base, path, size_bytes, name=None):
        """Create the root disk ``path`` from the cached image ``base``.

        :param base: a :class:`~nova_pyvirt.storage.imagecache.CachedImage`.
        :param size_bytes: the disk's virtual size; 0 or None means the
            image's own virtual size (a flavor with ``root_gb = 0``).
        :param name: the LocalDisk name; default: the file name, such as
            ``disk``.
        :raises nova.exception.FlavorDiskSmallerThanImage: ``size_bytes``
            is smaller than the image's virtual size.
        :returns: a :class:`~nova_pyvirt.design.request.LocalDisk`.
        """
        size = size_bytes or base.virtual_size
        if size < base.virtual_size:
            raise exception.FlavorDiskSmallerThanImage(
                flavor_size=size, image_size=base.virtual_size)
        with self._creating('root', path):
            self._make_root(base, path, size)
            self._preallocate(path, size)
        return self._local_disk(name, path)

    def create_blank(self, path, size_bytes, name, label='ephemeral0',
                     filesystem='ext4'):
        """Create the ephemeral disk ``path``: blank, sparse, ``FORMAT``.

        :param name: the LocalDisk name, such as ``disk.eph0``.
        :param label: file system label; cloud-init mounts ``ephemeral0``.
        :param filesystem: ``'ext4'`` to format the disk when
            ``mkfs.ext4`` is installed (else it stays unformatted, with a
            warning), or None for an unformatted disk.
        :returns: a :class:`~nova_pyvirt.design.request.LocalDisk`.
        """
        fileops.check_size(size_bytes)
        mkfs = fileops.ephemeral_formatter(filesystem, label, path)
        with self._creating('ephemeral', path):
            self._make_blank(path, size_bytes, mkfs, label)
            self._preallocate(path, size_bytes)
        return request.LocalDisk(name=name, path=path, format=self.FORMAT)

    def create_swap(self, path, size_bytes, name=None):
        """Create the swap disk ``path``: a raw file prepared by mkswap.

        :param name: the LocalDisk name; default: the file name, such as
            ``disk.swap``.
        :returns: a :class:`~nova_pyvirt.design.request.LocalDisk` in raw
            format, whatever the backend.
        """
        fileops.check_size(size_bytes)
        tool = fileops.find_tool('mkswap')
        if tool is None:
            raise errors.DiskCreationFailed(
                kind='swap', path=path,
                reason='mkswap is not installed (package util-linux)')
        with self._creating('swap', path):
            fileops.qemu_img_create(path, 'raw', size_bytes)
            fileops.mkswap(tool, path)
            self._preallocate(path, size_bytes)
        return request.LocalDisk(name=name or os.path.basename(path),
                                 path=path, format='raw')

    def delete(self, path):
        """Remove the disk file ``path``; nothing happens if it is gone."""
        fileutils.delete_if_exists(path)

    def _local_disk(self, name, path):
        return request.LocalDisk(name=name or os.path.basename(path),
                                 path=path, format=self.FORMAT)

    def _preallocate(self, path, size):
        if self.preallocate == 'space':
            fileops.preallocate(path, size)

    def _make_root(self, base, path, size):
        raise NotImplementedError()

    def _make_blank(self, path, size, mkfs, label):
        raise NotImplementedError()

    @contextlib.contextmanager
    def _creating(self, kind, path):
        """Claim ``path`` (it must not exist) and remove it on failure.

        Command and file system errors become DiskCreationFailed.
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise errors.DiskExists(kind=kind, path=path)
        except OSError as exc:
            raise errors.DiskCreationFailed(kind=kind, path=path,
                                            reason=exc) from exc
        os.close(fd)
        with fileops.removed_on_failure(path):
            try:
                yield
            except processutils.ProcessExecutionError as exc:
                reason = '%s failed: %s' % (
                    exc.cmd, (exc.stderr or exc.description or '').strip())
                raise errors.DiskCreationFailed(kind=kind, path=path,
                                                reason=reason) from exc
            except OSError as exc:
                raise errors.DiskCreationFailed(kind=kind, path=path,
                                                reason=exc) from exc
        LOG.debug('Created the %(kind)s disk %(path)s',
                  {'kind': kind, 'path': path})


class Qcow2Backend(_FileBackend):
    """qcow2 disks; root disks are overlays of the cached image."""

    FORMAT = 'qcow2'

    def _make_root(self, base, path, size):
        # An overlay depends only on its base and size, so one made once
        # beside the base (removed with it) is copied for each instance:
        # a file copy instead of a qemu-img process per spawn.
        template = '%s.overlay-%d' % (base.path, size)
        if not os.path.exists(template):
            partial = '%s.%d.%d.tmp' % (template, os.getpid(),
                                        threading.get_ident())
            with fileops.removed_on_failure(partial):
                fileops.qemu_img_create(partial, 'qcow2', size,
                                        backing=base.path,
                                        backing_fmt=base.format)
                os.rename(partial, template)
        shutil.copyfile(template, path)

    def _make_blank(self, path, size, mkfs, label):
        if mkfs is None:
            fileops.qemu_img_create(path, 'qcow2', size)
            return
        # mkfs.ext4 writes raw blocks: format a sparse raw file next to the
        # disk, then convert it (only the written clusters are copied).
        fd, scratch = tempfile.mkstemp(
            prefix='.%s.' % os.path.basename(path), suffix='.mkfs',
            dir=os.path.dirname(path) or '.')
        os.close(fd)
        try:
            fileops.qemu_img_create(scratch, 'raw', size)
            fileops.mkfs_ext4(mkfs, scratch, label)
            fileops.qemu_img_convert(scratch, 'raw', path, 'qcow2')
        finally:
            fileutils.delete_if_exists(scratch)


class RawBackend(_FileBackend):
    """Raw disks; root disks are sparse copies of the cached image."""

    FORMAT = 'raw'

    def _make_root(self, base, path, size):
        fileops.qemu_img_convert(base.path, base.format, path, 'raw')
        if size > base.virtual_size:
            fileops.qemu_img_resize(path, 'raw', size)

    def _make_blank(self, path, size, mkfs, label):
        fileops.qemu_img_create(path, 'raw', size)
        if mkfs is not None:
            fileops.mkfs_ext4(mkfs, path, label)
