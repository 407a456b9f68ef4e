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

"""The image cache on real files: download once, inspect, refuse, clean up.

Images are made with ``qemu-img``; the image API is a fake serving local
files (:class:`tests.unit.storage.fakes.FakeImageAPI`).
"""

import hashlib
import os
import time
import types

import fasteners
import fixtures
from nova import exception
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.storage import errors
from nova_pyvirt.storage import imagecache
from tests.unit.storage import fakes

MiB = 1024 * 1024
IMAGE_ID = '6c1f5c0e-5b5a-4f8e-9a53-0a4cf8a5d4e1'


class ImageCacheTestBase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.src = os.path.join(self.tmp, 'src')
        os.mkdir(self.src)
        self.base_dir = os.path.join(self.tmp, 'instances', '_base')
        self.lock_path = os.path.join(self.tmp, 'locks')
        self.cache = imagecache.ImageCache(self.base_dir, self.lock_path)

    def source(self, name):
        return os.path.join(self.src, name)

    def cache_listing(self):
        """Files of the cache, without the images' inspection records."""
        if not os.path.isdir(self.base_dir):
            return []
        return sorted(n for n in os.listdir(self.base_dir)
                      if not n.endswith(imagecache.RECORD_SUFFIX))

    def assertLockFree(self, image_id):
        name = '%s%s' % (imagecache.LOCK_FILE_PREFIX,
                         imagecache.cache_filename(image_id))
        lock = fasteners.InterProcessLock(os.path.join(self.lock_path, name))
        self.assertTrue(lock.acquire(blocking=False),
                        'lock of %s still held' % image_id)
        lock.release()


class TestNaming(base.BaseTestCase):

    def test_cache_dir_from_conf(self):
        conf = types.SimpleNamespace(
            instances_path='/srv/instances',
            image_cache=types.SimpleNamespace(subdirectory_name='_cache'))
        self.assertEqual('/srv/instances/_cache',
                         imagecache.cache_dir(conf))

    def test_cache_dir_from_nova_conf_defaults(self):
        # Where nova's libvirt driver caches images: nova's [DEFAULT]
        # instances_path ($state_path/instances) and [image_cache]
        # subdirectory_name (_base).
        from tests import design_support
        conf = self.useFixture(design_support.ConfFixture()).conf
        self.assertEqual(os.path.join(conf.state_path, 'instances', '_base'),
                         imagecache.cache_dir(conf))

    def test_file_named_by_sha1_of_image_id(self):
        expected = hashlib.sha1(IMAGE_ID.encode()).hexdigest()
        self.assertEqual(expected, imagecache.cache_filename(IMAGE_ID))
        cache = imagecache.ImageCache('/base', '/locks')
        self.assertEqual('/base/' + expected, cache.path_for(IMAGE_ID))


class TestFetch(ImageCacheTestBase):

    def test_raw_image(self):
        src = fakes.make_raw(self.source('img.raw'), 3 * MiB, b'hello', MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'raw')})

        cached = self.cache.fetch(None, api, IMAGE_ID)

        self.assertEqual(imagecache.CachedImage(
            path=self.cache.path_for(IMAGE_ID), format='raw',
            virtual_size=3 * MiB), cached)
        with open(cached.path, 'rb') as f:
            f.seek(MiB)
            self.assertEqual(b'hello', f.read(5))
        self.assertEqual([imagecache.cache_filename(IMAGE_ID)],
                         self.cache_listing())
        self.assertEqual(0o644, os.stat(cached.path).st_mode & 0o777)
        self.assertLockFree(IMAGE_ID)

    def test_qcow2_image(self):
        src = fakes.make_qcow2(self.source('img.qcow2'), 64 * MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'qcow2')})

        cached = self.cache.fetch(None, api, IMAGE_ID)

        self.assertEqual('qcow2', cached.format)
        self.assertEqual(64 * MiB, cached.virtual_size)
        self.assertLess(os.path.getsize(cached.path), MiB)

    def test_partitioned_raw_disk_is_raw(self):
        # An MBR (or GPT) at the start of a raw disk is what the format
        # inspector calls 'gpt'; glance calls such images raw.
        src = fakes.make_mbr_disk(self.source('disk.img'), 4 * MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'raw')})

        cached = self.cache.fetch(None, api, IMAGE_ID)

        self.assertEqual('raw', cached.format)
        self.assertEqual(4 * MiB, cached.virtual_size)

    def test_downloaded_once_then_served_from_cache(self):
        src = fakes.make_qcow2(self.source('img.qcow2'), 8 * MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'qcow2')})

        first = self.cache.fetch(None, api, IMAGE_ID)
        os.utime(first.path, (1, 1))
        second = self.cache.fetch(None, api, IMAGE_ID)
        other = imagecache.ImageCache(self.base_dir, self.lock_path)
        third = other.fetch(None, api, IMAGE_ID)

        self.assertEqual([IMAGE_ID], api.downloads)
        self.assertEqual(first, second)
        self.assertEqual(first, third)
        # A hit marks the image as used.
        self.assertGreater(os.stat(first.path).st_mtime, time.time() - 60)

    def test_two_images(self):
        a = fakes.make_raw(self.source('a'), MiB)
        b = fakes.make_qcow2(self.source('b'), 2 * MiB)
        api = fakes.FakeImageAPI({'a': (a, 'raw'), 'b': (b, 'qcow2')})

        ca = self.cache.fetch(None, api, 'a')
        cb = self.cache.fetch(None, api, 'b')

        self.assertNotEqual(ca.path, cb.path)
        self.assertEqual(('raw', 'qcow2'), (ca.format, cb.format))
        self.assertEqual(2, len(self.cache_listing()))

    def test_stale_part_file_from_dead_process_removed(self):
        src = fakes.make_raw(self.source('img.raw'), MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'raw')})
        os.makedirs(self.base_dir)
        stale = os.path.join(self.base_dir, '.%s.abcd1234.part' %
                             imagecache.cache_filename(IMAGE_ID))
        fakes.make_raw(stale, 1000)

        self.cache.fetch(None, api, IMAGE_ID)

        self.assertEqual([imagecache.cache_filename(IMAGE_ID)],
                         self.cache_listing())


class TestRefused(ImageCacheTestBase):
    """Refused images are named in the error and leave nothing cached."""

    def assertRefused(self, src, disk_format, *reason_parts):
        api = fakes.FakeImageAPI({IMAGE_ID: (src, disk_format)})
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.cache.fetch, None, api, IMAGE_ID)
        message = str(exc)
        self.assertIn(IMAGE_ID, message)
        for part in reason_parts:
            self.assertIn(part, message)
        self.assertEqual([], self.cache_listing())
        self.assertLockFree(IMAGE_ID)
        return api, message

    def test_qcow2_backed_by_host_file(self):
        evil = fakes.make_qcow2(self.source('evil.qcow2'), MiB,
                                '-b', '/etc/passwd', '-F', 'raw')
        api, _msg = self.assertRefused(evil, 'qcow2', 'backing_file',
                                       "'/etc/passwd'")
        self.assertEqual([IMAGE_ID], api.downloads)

    def test_qcow2_backed_by_file_in_cache(self):
        # Even a backing file inside the cache is refused: an image must
        # stand alone.
        os.makedirs(self.base_dir)
        neighbour = fakes.make_raw(os.path.join(self.base_dir, 'x'), MiB)
        evil = fakes.make_qcow2(self.source('evil.qcow2'), MiB,
                                '-b', neighbour, '-F', 'raw')
        api = fakes.FakeImageAPI({IMAGE_ID: (evil, 'qcow2')})
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.cache.fetch, None, api, IMAGE_ID)
        self.assertIn('backing_file', str(exc))
        self.assertEqual(['x'], self.cache_listing())

    def test_qcow2_backed_by_host_file_announced_as_raw(self):
        evil = fakes.make_qcow2(self.source('evil.qcow2'), MiB,
                                '-b', '/etc/passwd', '-F', 'raw')
        self.assertRefused(evil, 'raw', 'backing_file')

    def test_qcow2_with_external_data_file(self):
        data = fakes.make_raw(self.source('data.raw'), MiB)
        evil = fakes.make_qcow2(self.source('evil.qcow2'), MiB,
                                '-o', 'data_file=%s' % data)
        self.assertRefused(evil, 'qcow2', 'data_file')

    def test_raw_announced_as_qcow2(self):
        src = fakes.make_raw(self.source('img.raw'), MiB)
        self.assertRefused(src, 'qcow2', 'content is raw',
                           'disk_format is qcow2')

    def test_qcow2_announced_as_raw(self):
        src = fakes.make_qcow2(self.source('img.qcow2'), MiB)
        self.assertRefused(src, 'raw', 'content is qcow2',
                           'disk_format is raw')

    def test_unsupported_disk_format_not_downloaded(self):
        src = fakes.make_raw(self.source('img.vmdk'), MiB)
        api, _msg = self.assertRefused(src, 'vmdk', 'disk_format is vmdk',
                                       'raw and qcow2')
        self.assertEqual([], api.downloads)

    def test_unsupported_content(self):
        src = self.source('img.vmdk')
        fakes.qemu_img('create', '-q', '-f', 'vmdk', src, '1M')
        self.assertRefused(src, 'raw', 'content is vmdk')

    def test_unsafe_cached_file_refused_on_hit(self):
        # Whatever put it there, an unsafe file in the cache is not used.
        os.makedirs(self.base_dir)
        fakes.make_qcow2(self.cache.path_for(IMAGE_ID), MiB,
                         '-b', '/etc/passwd', '-F', 'raw')
        api = fakes.FakeImageAPI({})
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.cache.fetch, None, api, IMAGE_ID)
        self.assertIn('/etc/passwd', str(exc))
        self.assertEqual([], api.downloads)


class TestDownloadFailures(ImageCacheTestBase):

    def test_interrupted_download_leaves_nothing(self):
        src = fakes.make_raw(self.source('img.raw'), 3 * MiB, b'x' * MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'raw')},
                                 fail_after=MiB + 100)

        exc = self.assertRaises(errors.ImageDownloadFailed,
                                self.cache.fetch, None, api, IMAGE_ID)

        self.assertIn(IMAGE_ID, str(exc))
        self.assertIn('connection reset by peer', str(exc))
        self.assertIsInstance(exc.__cause__, fakes.DownloadInterrupted)
        self.assertEqual([], self.cache_listing())
        self.assertLockFree(IMAGE_ID)

        # The lock is free and nothing is half-cached: a retry works.
        api.fail_after = None
        cached = self.cache.fetch(None, api, IMAGE_ID)
        self.assertEqual(3 * MiB, cached.virtual_size)
        self.assertEqual(2, len(api.downloads))
        self.assertEqual([os.path.basename(cached.path)],
                         self.cache_listing())

    def test_short_download(self):
        src = fakes.make_raw(self.source('img.raw'), MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'raw')}, size=2 * MiB)

        exc = self.assertRaises(errors.ImageDownloadFailed,
                                self.cache.fetch, None, api, IMAGE_ID)

        self.assertIn(IMAGE_ID, str(exc))
        self.assertIn('got 1048576 bytes, glance announced 2097152',
                      str(exc))
        self.assertEqual([], self.cache_listing())

    def test_image_not_found_passes_through(self):
        api = fakes.FakeImageAPI({})
        exc = self.assertRaises(exception.ImageNotFound,
                                self.cache.fetch, None, api, IMAGE_ID)
        self.assertIn(IMAGE_ID, str(exc))
        self.assertEqual([], self.cache_listing())
        self.assertLockFree(IMAGE_ID)

    def test_nova_error_during_download_passes_through(self):
        src = fakes.make_raw(self.source('img.raw'), MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'raw')})

        def refuse(context, image_id, dest_path=None):
            with open(dest_path, 'wb') as f:
                f.write(b'partial')
            raise exception.ImageNotAuthorized(image_id=image_id)

        api.download = refuse
        self.assertRaises(exception.ImageNotAuthorized,
                          self.cache.fetch, None, api, IMAGE_ID)
        self.assertEqual([], self.cache_listing())


class TestInspectionRecord(ImageCacheTestBase):
    """A cached file is inspected once; its record serves later hits."""

    def fetch_fresh(self, api):
        # A new ImageCache has no memory: only the record on disk remains.
        cache = imagecache.ImageCache(self.base_dir, self.lock_path)
        return cache.fetch(None, api, IMAGE_ID)

    def test_record_of_the_same_file_is_reused(self):
        src = fakes.make_qcow2(self.source('img.qcow2'), 64 * MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'qcow2')})
        cached = self.cache.fetch(None, api, IMAGE_ID)
        record_path = cached.path + imagecache.RECORD_SUFFIX
        with open(record_path) as handle:
            record = jsonutils.loads(handle.read())
        self.assertEqual(('qcow2', 64 * MiB),
                         (record['format'], record['virtual_size']))
        # A record that says something else about the same file is believed:
        # proof that a hit does not inspect again.
        record['virtual_size'] = 5 * MiB
        with open(record_path, 'w') as handle:
            jsonutils.dump(record, handle)
        self.assertEqual(5 * MiB, self.fetch_fresh(api).virtual_size)

    def test_a_replaced_file_is_inspected_again(self):
        src = fakes.make_qcow2(self.source('img.qcow2'), 64 * MiB)
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'qcow2')})
        cached = self.cache.fetch(None, api, IMAGE_ID)
        # Same name, new file (new inode): the record does not describe it.
        evil = os.path.join(self.tmp, 'evil.qcow2')
        processutils.execute('qemu-img', 'create', '-f', 'qcow2', '-b',
                             '/etc/passwd', '-F', 'raw', evil, '64M')
        os.rename(evil, cached.path)
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.fetch_fresh, api)
        self.assertIn('/etc/passwd', str(exc))
