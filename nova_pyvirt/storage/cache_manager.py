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

"""Removal of cached base images nothing has used for a while.

:meth:`ImageCacheManager.update` is the body of the driver's periodic
``manage_image_cache(context, all_instances)``. A cached image (a file of
the image cache named by the SHA-1 of its image id, see
:mod:`~nova_pyvirt.storage.imagecache`) is *in use* when, as in nova,
either

* an instance of ``all_instances`` was built from it: its ``image_ref``
  gives the file name (:func:`imagecache.cache_filename`), whatever the
  instance's disk format; or
* a qcow2 file in any directory of ``[DEFAULT] instances_path`` has it as
  its backing file (read from the qcow2 header, :func:`qcow2_backing_file`),
  which also covers instances missing from ``all_instances`` (one being
  spawned, or left behind).

An image in use is touched on every pass, so its modification time tells
when it was last seen in use (:meth:`ImageCache.fetch` touches it too). An
image not in use whose modification time is older than nova's
``[image_cache] remove_unused_original_minimum_age_seconds`` is removed,
unless ``[image_cache] remove_unused_base_images`` is False, which keeps
every cached image (a pass then only touches those in use). Removal is
done under the external lock :meth:`ImageCache.lock` takes for that image:
the lock is only tried, never waited for (an image being fetched is in
use), and the age is checked again once it is held, so a fetch that
touched the image in the meantime keeps it. Temporary files of
interrupted downloads (``.<sha1>.*.part``) that old are removed the same
way, whatever ``remove_unused_base_images`` says: they are no images.

If any qcow2 file cannot be inspected, the pass removes nothing: which
image that disk needs is unknown, and a removed base image cannot be
recovered. The file is named in a warning on every pass.

nova's ``[image_cache] remove_unused_resized_minimum_age_seconds`` has
nothing to apply to: nova's libvirt driver keeps resized copies of base
images (``<sha1>_<size>``) when copy-on-write is off, this driver never
makes them. Its per-size overlay templates (``<sha1>.overlay-<size>``,
see :mod:`~nova_pyvirt.storage.backends`) go with their base image.

Known limit: an image fetched, then held by a spawn for longer than
``remove_unused_original_minimum_age_seconds`` before its disk exists,
could be removed under it. Keep the option well above the longest spawn
(nova's default is a day).
"""

import dataclasses
import glob
import os
import re
import struct
import time

from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import fileutils

from nova_pyvirt.storage import imagecache
from nova_pyvirt.storage import instance_disks
from nova_pyvirt.storage import instance_files

LOG = logging.getLogger(__name__)

_CACHED_NAME = re.compile(r'^[0-9a-f]{40}$')
_PART_NAME = re.compile(r'^\.([0-9a-f]{40})\..*\.part$')
_QCOW2_MAGIC = b'QFI\xfb'
# Files the driver writes into an instance directory that are never
# disks: not opened (a pass reads the first bytes of every other file).
_NOT_DISKS = frozenset([instance_files.CONSOLE_LOG, instance_disks.DISK_INFO])
# magic, version, backing file name offset, backing file name length.
_QCOW2_HEADER = struct.Struct('>4sIQI')
# The qcow2 specification caps backing file names at 1023 bytes.
_MAX_BACKING_NAME = 1023


@dataclasses.dataclass
class PassResult:
    """What one pass did, by cache file name (the image id's SHA-1)."""

    removed: list = dataclasses.field(default_factory=list)
    in_use: list = dataclasses.field(default_factory=list)
    young: list = dataclasses.field(default_factory=list)
    busy: list = dataclasses.field(default_factory=list)
    # qcow2 files whose backing file could not be read.
    uninspected: list = dataclasses.field(default_factory=list)
    # Unused, kept: [image_cache] remove_unused_base_images is False.
    kept: list = dataclasses.field(default_factory=list)


def lock_path_for(conf):
    """The directory of the image cache's external locks.

    The same rule as :class:`nova_pyvirt.storage.instance_disks.InstanceDisks`:
    ``[oslo_concurrency] lock_path``, else ``<instances_path>/locks``.
    """
    lock_path = None
    oslo = getattr(conf, 'oslo_concurrency', None)
    if oslo is not None:
        lock_path = getattr(oslo, 'lock_path', None)
    return lock_path or os.path.join(conf.instances_path, 'locks')


class ImageCacheManager(object):
    """Removes cached images unused for a while, as nova's options say.

    :param conf: nova's CONF (or anything with the same ``[DEFAULT]``,
        ``[image_cache]`` and ``[oslo_concurrency]`` attributes).
    """

    def __init__(self, conf):
        self.conf = conf
        self.instances_path = conf.instances_path
        self.base_dir = imagecache.cache_dir(conf)
        self.lock_path = lock_path_for(conf)
        self.cache = imagecache.ImageCache(self.base_dir, self.lock_path)

    @property
    def max_age(self):
        """Seconds an unused image is kept (read on every pass)."""
        return self.conf.image_cache.remove_unused_original_minimum_age_seconds

    @property
    def remove_unused(self):
        return self.conf.image_cache.remove_unused_base_images

    def update(self, context, all_instances):
        """One pass over the cache; returns a :class:`PassResult`.

        :param all_instances: the instances that may use this cache (nova
            passes those of every host sharing the instances path).
        """
        result = PassResult()
        try:
            names = sorted(os.listdir(self.base_dir))
        except FileNotFoundError:
            return result
        cached = [n for n in names if _CACHED_NAME.match(n)]
        parts = [n for n in names if _PART_NAME.match(n)]

        used = self._used_by_instances(all_instances)
        backing, result.uninspected = self._used_by_disks()
        used |= backing
        for name in result.uninspected:
            LOG.warning('Image cache: cannot tell which base image %s '
                        'uses; no base image is removed until it can be '
                        'read', name)

        now = time.time()
        max_age = self.max_age
        remove_unused = self.remove_unused
        for name in cached:
            path = os.path.join(self.base_dir, name)
            if name in used:
                self._touch(path)
                result.in_use.append(name)
            elif not remove_unused:
                result.kept.append(name)
            elif result.uninspected or not self._old(path, now, max_age):
                result.young.append(name)
            else:
                self._remove(name, [path], result)
        # Interrupted downloads are not images: removed even when unused
        # images are kept.
        if not result.uninspected:
            for name in parts:
                path = os.path.join(self.base_dir, name)
                if self._old(path, now):
                    self._remove(_PART_NAME.match(name).group(1), [path],
                                 PassResult())
        LOG.info('Image cache pass: %(removed)d removed, %(used)d in use, '
                 '%(young)d unused but recent, %(busy)d locked, %(kept)d '
                 'unused kept ([image_cache] remove_unused_base_images = '
                 '%(remove)s)',
                 {'removed': len(result.removed),
                  'used': len(result.in_use),
                  'young': len(result.young), 'busy': len(result.busy),
                  'kept': len(result.kept), 'remove': remove_unused})
        return result

    # -- in use -------------------------------------------------------------

    @staticmethod
    def _used_by_instances(instances):
        used = set()
        for instance in instances or ():
            image_ref = getattr(instance, 'image_ref', None)
            if image_ref:
                used.add(imagecache.cache_filename(image_ref))
        return used

    def _used_by_disks(self):
        """Cache names backing a qcow2 file; qcow2 files not readable."""
        used = set()
        uninspected = []
        base_dir = os.path.realpath(self.base_dir)
        try:
            entries = list(os.scandir(self.instances_path))
        except FileNotFoundError:
            return used, uninspected
        skip = {base_dir, os.path.realpath(self.lock_path)}
        # A directory, not a link, in instances_path: its real path is its
        # name in the real instances path (no realpath per instance).
        root = os.path.realpath(self.instances_path)
        # Overlays share a few bases: each backing name is resolved once
        # (realpath costs an lstat per path component).
        resolved = {}
        for entry in entries:
            if (not entry.is_dir(follow_symlinks=False) or
                    os.path.join(root, entry.name) in skip):
                continue
            try:
                files = list(os.scandir(entry.path))
            except OSError:
                continue
            for item in files:
                if (item.name in _NOT_DISKS or
                        not item.is_file(follow_symlinks=False)):
                    continue
                try:
                    backing = qcow2_backing_file(item.path)
                except FileNotFoundError:
                    continue
                except NotQcow2:
                    continue
                except (OSError, ValueError) as exc:
                    LOG.debug('cannot read the qcow2 header of %(path)s: '
                              '%(err)s', {'path': item.path, 'err': exc})
                    uninspected.append(item.path)
                    continue
                if not backing:
                    continue
                if not os.path.isabs(backing):
                    backing = os.path.join(entry.path, backing)
                real = resolved.get(backing)
                if real is None:
                    real = resolved[backing] = os.path.realpath(backing)
                if os.path.dirname(real) == base_dir:
                    used.add(os.path.basename(real))
        return used, uninspected

    # -- removal ------------------------------------------------------------

    def _old(self, path, now, max_age=None):
        if max_age is None:
            max_age = self.max_age
        try:
            return now - os.stat(path).st_mtime >= max_age
        except FileNotFoundError:
            return False

    @staticmethod
    def _touch(path):
        try:
            os.utime(path)
        except OSError as exc:
            LOG.warning('Could not mark %(path)s as used: %(err)s',
                        {'path': path, 'err': exc})

    def _lock(self, name):
        """The lock :meth:`ImageCache.lock` takes for cache file ``name``.

        Tried once: raises ``lockutils.AcquireLockFailedException`` when
        another thread or process holds it. Built here from the file name
        because unused images are only known by their file name, not by
        their image id.
        """
        return lockutils.lock(name,
                              lock_file_prefix=imagecache.LOCK_FILE_PREFIX,
                              external=True, lock_path=self.lock_path,
                              blocking=False)

    def _remove(self, name, paths, result):
        try:
            with self._lock(name):
                now = time.time()
                for path in paths:
                    if not self._old(path, now):
                        result.young.append(name)
                        continue
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        LOG.warning('Could not remove the unused base '
                                    'image %(path)s: %(err)s',
                                    {'path': path, 'err': exc})
                        continue
                    for companion in glob.glob(glob.escape(path) + '.*'):
                        # The inspection record and overlay templates.
                        fileutils.delete_if_exists(companion)
                    LOG.info('Removed the base image %(path)s, unused for '
                             'more than %(age)d s',
                             {'path': path, 'age': self.max_age})
                    result.removed.append(name)
        except lockutils.AcquireLockFailedException:
            LOG.debug('Image cache entry %s is locked; kept', name)
            result.busy.append(name)


class NotQcow2(ValueError):
    """The file does not start with the qcow2 magic."""


def qcow2_backing_file(path):
    """The backing file name in the header of the qcow2 file ``path``.

    None when it has none.  This is the name ``qemu-img info`` reports as
    ``backing-filename``, read from the header as the qcow2 specification
    lays it out (the same in versions 2 and 3: offset and length of the
    name at bytes 8 and 16), without running ``qemu-img``: a pass over a
    host of a thousand instances would otherwise run a thousand of them.

    :raises NotQcow2: not a qcow2 file.
    :raises ValueError: a qcow2 header this cannot read (an unknown
        version, a name out of bounds).
    :raises OSError: the file cannot be read.
    """
    with open(path, 'rb') as handle:
        header = handle.read(_QCOW2_HEADER.size)
        if header[:4] != _QCOW2_MAGIC:
            raise NotQcow2(path)
        if len(header) < _QCOW2_HEADER.size:
            raise ValueError('truncated qcow2 header')
        _magic, version, offset, length = _QCOW2_HEADER.unpack(header)
        if version not in (2, 3):
            raise ValueError('qcow2 version %d' % version)
        if not offset:
            return None
        if not 0 < length <= _MAX_BACKING_NAME:
            raise ValueError('backing file name of %d bytes' % length)
        handle.seek(offset)
        name = handle.read(length)
    if len(name) != length:
        raise ValueError('backing file name beyond the end of the file')
    return os.fsdecode(name)
