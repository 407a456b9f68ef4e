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

"""The host's image cache: each glance image downloaded once, then checked.

A cached image lives in ``<instances_path>/<subdirectory_name>`` (nova's
``[DEFAULT] instances_path`` and ``[image_cache] subdirectory_name``,
:func:`cache_dir`) under the SHA-1 hex digest of its image id, as in nova.
:meth:`ImageCache.fetch` downloads an image under an external lock named
after that file, so concurrent fetches of one image, from threads or from
separate processes, download it once. The bytes go to a temporary file in
the cache directory (``.<sha1>.<random>.part``), which is inspected and only
then renamed into place: a cached file is always complete and accepted.

Acceptance, checked on every fetch (cache hits included):

* the content's format, detected by ``oslo_utils``' format inspector, is
  raw or qcow2 (a raw whole-disk image with an MBR or GPT partition table
  is raw), and on download it is the ``disk_format`` glance announced;
* the inspector's safety checks pass: no qcow2 backing file nor external
  data file, wherever it points, no unknown qcow2 features;
* ``qemu-img info``, told the detected format, agrees, reports no backing
  file, data file or encryption, and gives the virtual size.

Lock files stay in ``lock_path`` after use (removing them would race with
a process about to lock them); they are not held once ``fetch`` returns.
"""

import dataclasses
import glob
import hashlib
import os
import tempfile
import time

from nova import exception
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import fileutils
from oslo_utils.imageutils import format_inspector

from nova_pyvirt.storage import errors
from nova_pyvirt.storage import fileops

LOG = logging.getLogger(__name__)

#: Formats the cache accepts (glance ``disk_format`` and detected content).
SUPPORTED_FORMATS = ('raw', 'qcow2')

#: Prefix of the external lock files in ``lock_path``.
LOCK_FILE_PREFIX = 'nova-pyvirt-image-'

_PART_SUFFIX = '.part'
# The qcow2 specification caps backing file names at 1023 bytes.
_MAX_BACKING_NAME = 1023


# Beside each cached image: what its inspection found (see
# ImageCache._verified_image); removed together with the image.
RECORD_SUFFIX = '.info'


@dataclasses.dataclass(frozen=True)
class CachedImage:
    """An accepted image in the cache."""

    path: str
    format: str          # 'raw' or 'qcow2'
    virtual_size: int    # bytes the guest sees


def cache_dir(conf):
    """The image cache directory nova's options in ``conf`` name.

    ``<[DEFAULT] instances_path>/<[image_cache] subdirectory_name>``, the
    directory nova's libvirt driver caches images in.
    """
    return os.path.join(conf.instances_path,
                        conf.image_cache.subdirectory_name)


def cache_filename(image_id):
    """File name of ``image_id`` in the cache: SHA-1 hex of the id."""
    return hashlib.sha1(image_id.encode('utf-8'),
                        usedforsecurity=False).hexdigest()


class ImageCache(object):
    """The images of one cache directory.

    :param base_dir: the cache directory, usually :func:`cache_dir`.
    :param lock_path: directory of the external lock files, shared by every
        process using ``base_dir``; None means
        ``[oslo_concurrency] lock_path``.
    """

    def __init__(self, base_dir, lock_path):
        self.base_dir = base_dir
        self.lock_path = lock_path
        # path -> (file identity, CachedImage) of files already inspected.
        self._verified = {}

    def path_for(self, image_id):
        """Where ``image_id`` is (or would be) cached."""
        return os.path.join(self.base_dir, cache_filename(image_id))

    def lock(self, image_id):
        """The external lock guarding ``image_id``'s cache entry.

        Held while downloading; whatever removes cached images must hold
        it too.
        """
        return lockutils.lock(cache_filename(image_id),
                              lock_file_prefix=LOCK_FILE_PREFIX,
                              external=True, lock_path=self.lock_path)

    def fetch(self, context, image_api, image_id):
        """Return the :class:`CachedImage` of ``image_id``.

        Downloads it with ``image_api`` (nova's image API) unless it is
        cached already, and touches the cached file so its modification
        time tells when it was last used.

        :raises nova.exception.ImageUnacceptable: unsupported, unsafe, or
            not the format glance announced; nothing is cached.
        :raises errors.ImageDownloadFailed: the download failed or was
            incomplete; nothing is cached.
        :raises nova.exception.NovaException: other errors of the image API
            (``ImageNotFound``, ``ImageNotAuthorized``...), unchanged.
        """
        path = self.path_for(image_id)
        fileutils.ensure_tree(self.base_dir)
        with self.lock(image_id):
            if os.path.exists(path):
                cached = self._verified_image(image_id, path)
                try:
                    os.utime(path)
                except OSError as exc:
                    LOG.warning('Could not mark %(path)s as used: %(err)s',
                                {'path': path, 'err': exc})
                LOG.debug('Image %(id)s found in the cache at %(path)s',
                          {'id': image_id, 'path': path})
                return cached
            self._remove_stale_parts(image_id)
            return self._download(context, image_api, image_id, path)

    def _remove_stale_parts(self, image_id):
        # Under the lock nobody else downloads this image: a temporary file
        # left here is from a process that died mid-download.
        pattern = os.path.join(
            self.base_dir,
            '.%s.*%s' % (cache_filename(image_id), _PART_SUFFIX))
        for stale in glob.glob(pattern):
            LOG.warning('Removing %s, left by an interrupted download of '
                        'image %s', stale, image_id)
            fileutils.delete_if_exists(stale)

    def _download(self, context, image_api, image_id, path):
        meta = image_api.get(context, image_id)
        disk_format = meta.get('disk_format')
        if disk_format not in SUPPORTED_FORMATS:
            raise exception.ImageUnacceptable(
                image_id=image_id,
                reason='its disk_format is %s; only %s are supported' % (
                    disk_format, ' and '.join(SUPPORTED_FORMATS)))

        fd, part = tempfile.mkstemp(
            prefix='.%s.' % os.path.basename(path), suffix=_PART_SUFFIX,
            dir=self.base_dir)
        os.close(fd)
        with fileops.removed_on_failure(part):
            started = time.monotonic()
            LOG.info('Downloading image %(id)s into the image cache',
                     {'id': image_id})
            try:
                image_api.download(context, image_id, dest_path=part)
            except exception.NovaException:
                raise
            except Exception as exc:
                raise errors.ImageDownloadFailed(
                    image_id=image_id, reason='%s: %s' % (
                        type(exc).__name__, exc)) from exc
            size = os.path.getsize(part)
            expected = meta.get('size')
            if expected is not None and size != expected:
                raise errors.ImageDownloadFailed(
                    image_id=image_id,
                    reason='got %d bytes, glance announced %d' % (
                        size, expected))
            cached = self._inspect(image_id, part, disk_format)
            # Readable by QEMU, which may run as another user.
            os.chmod(part, 0o644)
            os.rename(part, path)
            cached = dataclasses.replace(cached, path=path)
            self._remember(path, cached)
        LOG.info('Cached image %(id)s (%(fmt)s, %(size)d bytes) at %(path)s '
                 'in %(secs).1f s',
                 {'id': image_id, 'fmt': cached.format, 'size': size,
                  'path': path, 'secs': time.monotonic() - started})
        return cached

    def _verified_image(self, image_id, path):
        """The image's inspection result, inspecting only new files.

        Files enter the cache by rename only, so a file whose device, inode
        and size are those recorded when it was inspected is that same
        file: the record (kept in memory and in a ``.info`` file beside the
        image, for other processes) is reused instead of inspecting again.
        """
        identity = _identity(path)
        known = self._verified.get(path)
        if known is not None and known[0] == identity:
            return known[1]
        record = _read_record(path + RECORD_SUFFIX)
        if record is not None and record.get('identity') == identity:
            cached = CachedImage(path=path, format=record['format'],
                                 virtual_size=record['virtual_size'])
            self._verified[path] = (identity, cached)
            return cached
        cached = self._inspect(image_id, path)
        self._remember(path, cached)
        return cached

    def _remember(self, path, cached):
        identity = _identity(path)
        self._verified[path] = (identity, cached)
        record = {'identity': identity, 'format': cached.format,
                  'virtual_size': cached.virtual_size}
        tmp = '%s%s.%d.tmp' % (path, RECORD_SUFFIX, os.getpid())
        try:
            with open(tmp, 'w') as handle:
                jsonutils.dump(record, handle)
            os.rename(tmp, path + RECORD_SUFFIX)
        except OSError as exc:
            LOG.warning('Could not record the inspection of %(path)s: '
                        '%(err)s', {'path': path, 'err': exc})
            fileutils.delete_if_exists(tmp)

    def _inspect(self, image_id, path, disk_format=None):
        """Check the image at ``path``; return its CachedImage.

        ``disk_format`` is glance's claim, checked when given.
        """
        def refuse(reason):
            LOG.error('Refusing image %(id)s (%(path)s): %(reason)s',
                      {'id': image_id, 'path': path, 'reason': reason})
            return exception.ImageUnacceptable(image_id=image_id,
                                               reason=reason)

        try:
            inspector = format_inspector.detect_file_format(path)
        except format_inspector.ImageFormatError as exc:
            raise refuse('its format cannot be determined: %s' % exc)
        detected = str(inspector)

        try:
            inspector.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            raise refuse('it fails the %s safety checks: %s' % (
                detected, _describe_failures(exc, inspector, path)))
        except format_inspector.ImageFormatError as exc:
            raise refuse('its %s content cannot be checked: %s' % (
                detected, exc))

        # An MBR or GPT partition table at the start of a raw whole-disk
        # image is detected as 'gpt'; nova accepts those as raw too.
        fmt = 'raw' if detected == 'gpt' else detected
        if fmt not in SUPPORTED_FORMATS:
            raise refuse('its content is %s; only %s are supported' % (
                detected, ' and '.join(SUPPORTED_FORMATS)))
        if disk_format is not None and fmt != disk_format:
            raise refuse('its content is %s but glance says its disk_format '
                         'is %s' % (detected, disk_format))

        try:
            info = fileops.qemu_img_info(path, fmt)
        except processutils.ProcessExecutionError as exc:
            raise refuse('qemu-img info failed: %s' % (
                exc.stderr or exc).strip())
        if info.file_format != fmt:
            raise refuse('qemu-img reads it as %s, not %s' % (
                info.file_format, fmt))
        if info.backing_file is not None:
            raise refuse('it has a backing file: %r' % info.backing_file)
        data_file = _format_specific(info, 'data-file')
        if data_file is not None:
            raise refuse('it has an external data file: %r' % data_file)
        if info.encrypted:
            raise refuse('encrypted images are not supported')
        if info.virtual_size is None:
            raise refuse('qemu-img info gives no virtual size')
        return CachedImage(path=path, format=fmt,
                           virtual_size=int(info.virtual_size))


def _identity(path):
    stat = os.stat(path)
    return [stat.st_dev, stat.st_ino, stat.st_size]


def _read_record(path):
    try:
        with open(path) as handle:
            return jsonutils.loads(handle.read())
    except (OSError, ValueError):
        return None


def _format_specific(info, key):
    try:
        return info.format_specific['data'][key]
    except (KeyError, TypeError):
        return None


def _describe_failures(exc, inspector, path):
    """"backing_file (Image has a backing file: '/etc/passwd'), ..."."""
    parts = []
    for name, failure in sorted(exc.failures.items()):
        text = '%s (%s' % (name, failure)
        if name == 'backing_file':
            backing = _qcow2_backing_name(inspector, path)
            if backing is not None:
                text += ': %r' % backing
        parts.append(text + ')')
    return ', '.join(parts)


def _qcow2_backing_name(inspector, path):
    """The backing file name stored in a qcow2 header, for error messages.

    Read as plain bytes at the offset the header gives; never opened.
    """
    header = getattr(inspector, 'qemu_header_info', None) or {}
    offset = header.get('bf_offset')
    length = header.get('bf_sz')
    if not offset or not length:
        return None
    try:
        with open(path, 'rb') as f:
            f.seek(offset)
            raw = f.read(min(length, _MAX_BACKING_NAME))
    except OSError:
        return None
    return raw.decode('utf-8', 'replace')
