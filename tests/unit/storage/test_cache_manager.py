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

"""Image cache maintenance on real files.

Cached images and instance disks are real files (overlays made with
``qemu-img``); ages are set with ``os.utime``; the image's external lock is
held by another process, as a concurrent fetch in another worker would.
"""

import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import types

import fixtures
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.storage import cache_manager
from nova_pyvirt.storage import imagecache
from tests.unit.storage import fakes

MiB = 1024 * 1024
DAY = 86400
IMAGE_A = '1f9bd6a2-3c55-4a3e-9a0f-6a2d1e0c4b11'
IMAGE_B = '2a7c1e33-8d44-4f6b-b1c2-7e3f5a9d0c22'
IMAGE_C = '3b8d2f44-9e55-4a7c-c2d3-8f4a6b0e1d33'


def instance(image_ref, uuid='inst'):
    return types.SimpleNamespace(image_ref=image_ref, uuid=uuid)


class CacheManagerTestBase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.instances_path = os.path.join(self.tmp, 'instances')
        self.base_dir = os.path.join(self.instances_path, '_base')
        self.lock_path = os.path.join(self.tmp, 'locks')
        os.makedirs(self.base_dir)
        # nova's options, with nova's defaults.
        self.conf = types.SimpleNamespace(
            instances_path=self.instances_path,
            image_cache=types.SimpleNamespace(
                subdirectory_name='_base',
                remove_unused_base_images=True,
                remove_unused_original_minimum_age_seconds=DAY),
            oslo_concurrency=types.SimpleNamespace(
                lock_path=self.lock_path))
        self.manager = cache_manager.ImageCacheManager(self.conf)

    def cache(self, image_id, age=0, data=b'base'):
        """A cached raw image of ``image_id``, last used ``age`` s ago."""
        path = os.path.join(self.base_dir,
                            imagecache.cache_filename(image_id))
        fakes.make_raw(path, MiB, data)
        self.age(path, age)
        return path

    @staticmethod
    def age(path, seconds):
        when = time.time() - seconds
        os.utime(path, (when, when))

    def overlay(self, base_path, uuid='inst-1', name='disk', relative=False):
        directory = os.path.join(self.instances_path, uuid)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, name)
        backing = os.path.relpath(base_path, directory) if relative \
            else base_path
        fakes.qemu_img('create', '-q', '-f', 'qcow2', '-b', backing,
                       '-F', 'raw', path)
        return path

    def name(self, image_id):
        return imagecache.cache_filename(image_id)


class TestRemoval(CacheManagerTestBase):

    def test_aged_unused_base_removed(self):
        old = self.cache(IMAGE_A, age=DAY + 60)

        result = self.manager.update(None, [])

        self.assertFalse(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.removed)

    def test_record_and_overlay_templates_go_with_their_base(self):
        old = self.cache(IMAGE_A, age=DAY + 60)
        companions = [old + imagecache.RECORD_SUFFIX, old + '.overlay-1024']
        for path in companions:
            with open(path, 'w') as handle:
                handle.write('x')
        kept = self.cache(IMAGE_B, age=60)
        with open(kept + imagecache.RECORD_SUFFIX, 'w') as handle:
            handle.write('x')

        self.manager.update(None, [])

        self.assertEqual([], [p for p in [old] + companions
                              if os.path.exists(p)])
        self.assertTrue(os.path.exists(kept + imagecache.RECORD_SUFFIX))

    def test_in_use_base_kept_even_if_old(self):
        used = self.cache(IMAGE_A, age=10 * DAY)

        result = self.manager.update(None, [instance(IMAGE_A)])

        self.assertTrue(os.path.exists(used))
        self.assertEqual([self.name(IMAGE_A)], result.in_use)
        self.assertEqual([], result.removed)
        # Marked as used now: unused-since restarts from this pass.
        self.assertLess(time.time() - os.stat(used).st_mtime, 60)

    def test_young_unused_base_kept(self):
        young = self.cache(IMAGE_A, age=DAY - 600)

        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(young))
        self.assertEqual([self.name(IMAGE_A)], result.young)
        self.assertLess(DAY - 700, time.time() - os.stat(young).st_mtime)

    def test_mixed(self):
        used = self.cache(IMAGE_A, age=5 * DAY)
        young = self.cache(IMAGE_B, age=60)
        old = self.cache(IMAGE_C, age=2 * DAY)

        result = self.manager.update(None, [instance(IMAGE_A),
                                            instance('', 'bfv')])

        self.assertEqual((True, True, False), tuple(
            os.path.exists(p) for p in (used, young, old)))
        self.assertEqual([self.name(IMAGE_C)], result.removed)

    def test_unused_since_last_seen_in_use(self):
        # An image in use for weeks becomes unused when its last instance
        # goes: it stays for the full period from then, not from its
        # download.
        used = self.cache(IMAGE_A, age=30 * DAY)
        self.manager.update(None, [instance(IMAGE_A)])

        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(used))
        self.assertEqual([self.name(IMAGE_A)], result.young)

    def test_zero_age_removes_at_once(self):
        self.conf.image_cache.remove_unused_original_minimum_age_seconds = 0
        old = self.cache(IMAGE_A, age=0)
        self.manager.update(None, [])
        self.assertFalse(os.path.exists(old))

    def test_removal_disabled_keeps_unused_bases(self):
        # [image_cache] remove_unused_base_images = False: unused images
        # stay, however old, and in-use ones are still touched; stale
        # partial downloads, which are no images, still go.
        self.conf.image_cache.remove_unused_base_images = False
        old = self.cache(IMAGE_A, age=30 * DAY)
        used = self.cache(IMAGE_B, age=30 * DAY)
        part = fakes.make_raw(os.path.join(
            self.base_dir, '.%s.x1y2.part' % self.name(IMAGE_C)), 10)
        self.age(part, 2 * DAY)

        result = self.manager.update(None, [instance(IMAGE_B)])

        self.assertTrue(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.kept)
        self.assertEqual([], result.removed)
        self.assertEqual([self.name(IMAGE_B)], result.in_use)
        self.assertLess(time.time() - os.stat(used).st_mtime, 60)
        self.assertFalse(os.path.exists(part))

        # Enabled again: the same pass removes it.
        self.conf.image_cache.remove_unused_base_images = True
        result = self.manager.update(None, [])
        self.assertFalse(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.removed)

    def test_other_files_left_alone(self):
        other = fakes.make_raw(os.path.join(self.base_dir, 'README'), 10)
        self.age(other, 10 * DAY)
        short = fakes.make_raw(os.path.join(self.base_dir, 'abc123'), 10)
        self.age(short, 10 * DAY)

        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(other))
        self.assertTrue(os.path.exists(short))
        self.assertEqual(cache_manager.PassResult(), result)

    def test_no_cache_directory(self):
        os.rmdir(self.base_dir)
        self.assertEqual(cache_manager.PassResult(),
                         self.manager.update(None, []))

    def test_stale_download_parts(self):
        name = self.name(IMAGE_A)
        stale = fakes.make_raw(os.path.join(
            self.base_dir, '.%s.x1y2.part' % name), 10)
        self.age(stale, 2 * DAY)
        current = fakes.make_raw(os.path.join(
            self.base_dir, '.%s.z3w4.part' % name), 10)

        self.manager.update(None, [])

        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(current))

    def test_nova_conf(self):
        from tests import design_support
        fx = self.useFixture(design_support.ConfFixture())
        fx.set(group='DEFAULT', instances_path=self.instances_path)
        fx.set(group='oslo_concurrency', lock_path=self.lock_path)
        manager = cache_manager.ImageCacheManager(fx.conf)
        # nova's [image_cache] defaults.
        self.assertEqual(DAY, manager.max_age)
        self.assertTrue(manager.remove_unused)
        self.assertEqual(self.base_dir, manager.base_dir)
        self.assertEqual(self.lock_path, manager.lock_path)
        old = self.cache(IMAGE_A, age=DAY + 1)
        manager.update(None, [])
        self.assertFalse(os.path.exists(old))

        # Read on every pass, as nova's options are.
        fx.set(group='image_cache', remove_unused_base_images=False)
        old = self.cache(IMAGE_A, age=DAY + 1)
        manager.update(None, [])
        self.assertTrue(os.path.exists(old))
        fx.set(group='image_cache', remove_unused_base_images=True,
               remove_unused_original_minimum_age_seconds=2 * DAY)
        manager.update(None, [])
        self.assertTrue(os.path.exists(old))
        fx.set(group='image_cache', subdirectory_name='_other')
        self.assertEqual(os.path.join(self.instances_path, '_other'),
                         cache_manager.ImageCacheManager(fx.conf).base_dir)

    def test_default_lock_path_like_instance_disks(self):
        self.conf.oslo_concurrency.lock_path = None
        manager = cache_manager.ImageCacheManager(self.conf)
        self.assertEqual(os.path.join(self.instances_path, 'locks'),
                         manager.lock_path)


class TestBackingFiles(CacheManagerTestBase):

    def test_overlay_keeps_its_base(self):
        # No instance in the list names it (rebuilt, being spawned...):
        # the overlay's backing file alone keeps the base.
        used = self.cache(IMAGE_A, age=10 * DAY)
        old = self.cache(IMAGE_B, age=10 * DAY)
        self.overlay(used)

        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(used))
        self.assertFalse(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.in_use)

    def test_relative_backing_file(self):
        used = self.cache(IMAGE_A, age=10 * DAY)
        self.overlay(used, relative=True)
        self.manager.update(None, [])
        self.assertTrue(os.path.exists(used))

    def test_other_files_in_instance_directories(self):
        used = self.cache(IMAGE_A, age=10 * DAY)
        self.overlay(used, name='disk')
        inst = os.path.dirname(self.overlay(used, name='disk.eph0'))
        fakes.make_raw(os.path.join(inst, 'disk.swap'), MiB)
        with open(os.path.join(inst, 'console.log'), 'w') as f:
            f.write('QFI')

        result = self.manager.update(None, [])

        self.assertEqual([self.name(IMAGE_A)], result.in_use)
        self.assertEqual([], result.uninspected)

    def test_unreadable_overlay_blocks_removal(self):
        old = self.cache(IMAGE_A, age=10 * DAY)
        broken_dir = os.path.join(self.instances_path, 'broken')
        os.makedirs(broken_dir)
        broken = os.path.join(broken_dir, 'disk')
        with open(broken, 'wb') as f:
            f.write(b'QFI\xfb' + b'\0' * 508)
        log = self.useFixture(fixtures.FakeLogger())

        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(old))
        self.assertEqual([broken], result.uninspected)
        self.assertIn(broken, log.output)

        os.unlink(broken)
        self.manager.update(None, [])
        self.assertFalse(os.path.exists(old))


class TestBackingFileFromHeader(CacheManagerTestBase):
    """The qcow2 header says what ``qemu-img info`` says, without it."""

    def backing_by_qemu_img(self, path):
        info = jsonutils.loads(fakes.qemu_img('info', '--output=json',
                                              '-U', path))
        return info.get('backing-filename')

    def test_same_name_as_qemu_img(self):
        base = self.cache(IMAGE_A)
        for relative in (False, True):
            path = self.overlay(base, uuid='inst-%s' % relative,
                                relative=relative)
            self.assertEqual(self.backing_by_qemu_img(path),
                             cache_manager.qcow2_backing_file(path))
        for version in ('0.10', '1.1'):
            path = os.path.join(self.tmp, 'compat-%s' % version)
            fakes.make_qcow2(path, MiB, '-o', 'compat=%s' % version,
                             '-b', base, '-F', 'raw')
            self.assertEqual(base, cache_manager.qcow2_backing_file(path))

    def test_no_backing_file(self):
        path = fakes.make_qcow2(os.path.join(self.tmp, 'blank'), MiB)
        self.assertIsNone(cache_manager.qcow2_backing_file(path))

    def test_not_qcow2(self):
        path = fakes.make_raw(os.path.join(self.tmp, 'raw'), MiB, b'QFI')
        self.assertRaises(cache_manager.NotQcow2,
                          cache_manager.qcow2_backing_file, path)

    def test_unreadable_headers(self):
        path = os.path.join(self.tmp, 'bad')
        header = struct.Struct('>4sIQI')
        for content in (b'QFI\xfb\0\0\0\x03',           # truncated
                        header.pack(b'QFI\xfb', 1, 0, 0).ljust(1024, b'\0'),
                        header.pack(b'QFI\xfb', 3, 1020, 10),  # beyond EOF
                        header.pack(b'QFI\xfb', 3, 512, 5000)):  # too long
            with open(path, 'wb') as f:
                f.write(content)
            self.assertRaises(ValueError,
                              cache_manager.qcow2_backing_file, path)
            self.assertNotIsInstance(
                self.assertRaises(ValueError,
                                  cache_manager.qcow2_backing_file, path),
                cache_manager.NotQcow2)

    def test_pass_runs_no_command(self):
        used = self.cache(IMAGE_A, age=10 * DAY)
        self.overlay(used)
        execute = self.useFixture(fixtures.MockPatch(
            'oslo_concurrency.processutils.execute')).mock
        result = self.manager.update(None, [])
        self.assertEqual([self.name(IMAGE_A)], result.in_use)
        execute.assert_not_called()


HOLD_LOCK = textwrap.dedent('''
    import sys
    from nova_pyvirt.storage import imagecache
    cache = imagecache.ImageCache(sys.argv[1], sys.argv[2])
    with cache.lock(sys.argv[3]):
        print('locked', flush=True)
        sys.stdin.read()
''')


class TestLocking(CacheManagerTestBase):

    def hold_in_other_process(self, image_id):
        child = subprocess.Popen(
            [sys.executable, '-c', HOLD_LOCK, self.base_dir, self.lock_path,
             image_id], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.dirname(os.path.abspath(__file__))))))

        def release():
            if child.poll() is None:
                child.stdin.close()
                child.wait(timeout=30)
            child.stdout.close()

        self.addCleanup(release)
        self.assertEqual(b'locked\n', child.stdout.readline())
        return release

    def test_base_locked_by_another_process_kept(self):
        old = self.cache(IMAGE_A, age=10 * DAY)
        release = self.hold_in_other_process(IMAGE_A)

        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.busy)

        release()
        result = self.manager.update(None, [])
        self.assertFalse(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.removed)

    def test_base_locked_by_another_thread_kept(self):
        old = self.cache(IMAGE_A, age=10 * DAY)
        cache = imagecache.ImageCache(self.base_dir, self.lock_path)
        locked = threading.Event()
        done = threading.Event()

        def hold():
            with cache.lock(IMAGE_A):
                locked.set()
                done.wait(30)

        thread = threading.Thread(target=hold)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(done.set)
        self.assertTrue(locked.wait(30))

        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.busy)

    def test_fetch_during_the_pass_keeps_the_image(self):
        # A fetch touches the image after the pass found it old and before
        # the pass got the lock: the age is checked again under the lock.
        old = self.cache(IMAGE_A, age=10 * DAY)
        real_lock = self.manager._lock

        def lock_after_fetch(name):
            os.utime(old)
            return real_lock(name)

        self.manager._lock = lock_after_fetch
        result = self.manager.update(None, [])

        self.assertTrue(os.path.exists(old))
        self.assertEqual([self.name(IMAGE_A)], result.young)
