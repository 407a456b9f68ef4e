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

"""The image cache under contention, and root disks of a large image.

Threads and separate processes fetch one uncached image at the same moment,
while the (fake) image service is slow to send it: the image must be
downloaded exactly once and every caller must get the same cached image.
Then root disks are made from a base with a 4 GiB virtual size: the qcow2
overlay must be instant and nearly empty, the raw copy sparse.
"""

import dataclasses
import multiprocessing
import os
import threading
import time

import fasteners
import fixtures
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.storage import backends
from nova_pyvirt.storage import imagecache
from tests.unit.storage import fakes

MiB = 1024 * 1024
GiB = 1024 * MiB
IMAGE_ID = '0b0e5c73-3c8f-4f55-b1d4-1c9d7f6e2a10'
# How long the fake image service takes to send the image: long enough for
# every contender to be waiting on the lock meanwhile.
DOWNLOAD_SECONDS = 1.0
WAIT_SECONDS = 60


def _wait_for(predicate, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError('timed out waiting for %s' % what)
        time.sleep(0.005)


def _fetch(base_dir, lock_path, src, count_file):
    api = fakes.FakeImageAPI({IMAGE_ID: (src, 'qcow2')},
                             count_file=count_file, delay=DOWNLOAD_SECONDS)
    cache = imagecache.ImageCache(base_dir, lock_path)
    called_at = time.time()
    result = dataclasses.asdict(cache.fetch(None, api, IMAGE_ID))
    result['called_at'] = called_at
    return result


def fetch_in_child(base_dir, lock_path, src, count_file, go_file, results):
    """Body of a contending process (module level, for 'spawn')."""
    try:
        results.put(('ready', os.getpid()))
        _wait_for(lambda: os.path.exists(go_file), 'the start signal')
        results.put(('done', _fetch(base_dir, lock_path, src, count_file)))
    except Exception as exc:
        results.put(('error', '%s: %s' % (type(exc).__name__, exc)))


class TestConcurrentFetch(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.base_dir = os.path.join(self.tmp, 'instances', '_base')
        self.lock_path = os.path.join(self.tmp, 'locks')
        self.count_file = os.path.join(self.tmp, 'downloads')
        self.go_file = os.path.join(self.tmp, 'go')
        self.src = fakes.make_qcow2(os.path.join(self.tmp, 'img.qcow2'),
                                    64 * MiB)
        fakes.qemu_io(self.src, 'qcow2', 'write -P 0x5a 0 4M')

    def _contend(self, threads, processes):
        """Start the contenders, release them at once, return results."""
        ctx = multiprocessing.get_context('spawn')
        queue = ctx.Queue()
        children = [
            ctx.Process(target=fetch_in_child,
                        args=(self.base_dir, self.lock_path, self.src,
                              self.count_file, self.go_file, queue))
            for _i in range(processes)]
        for child in children:
            child.start()
        self.addCleanup(self._reap, children)
        for _i in range(processes):
            kind, value = queue.get(timeout=WAIT_SECONDS)
            self.assertEqual('ready', kind, value)

        go = threading.Event()
        results = []
        failures = []

        def in_thread():
            go.wait(WAIT_SECONDS)
            try:
                results.append(_fetch(self.base_dir, self.lock_path,
                                      self.src, self.count_file))
            except Exception as exc:
                failures.append(exc)

        workers = [threading.Thread(target=in_thread)
                   for _i in range(threads)]
        for worker in workers:
            worker.start()
        with open(self.go_file, 'w'):
            pass
        go.set()

        for worker in workers:
            worker.join(WAIT_SECONDS)
        for _i in range(processes):
            kind, value = queue.get(timeout=WAIT_SECONDS)
            if kind == 'done':
                results.append(value)
            else:
                failures.append(value)
        for child in children:
            child.join(WAIT_SECONDS)
            self.assertEqual(0, child.exitcode)

        self.assertEqual([], failures)
        self.assertEqual(threads + processes, len(results))
        return results

    @staticmethod
    def _reap(children):
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(5)

    def _check_outcome(self, results):
        events = fakes.download_events(self.count_file)
        self.assertEqual(['start', 'end'], [e[0] for e in events])
        # Every contender asked while the one download was under way, so
        # each of them had to wait for it rather than find the image.
        download_end = events[1][3]
        for result in results:
            self.assertLess(result.pop('called_at'), download_end)
        expected = {'path': os.path.join(
                        self.base_dir, imagecache.cache_filename(IMAGE_ID)),
                    'format': 'qcow2', 'virtual_size': 64 * MiB}
        for result in results:
            self.assertEqual(expected, result)
        # Nothing but the image and its inspection record in the cache; no
        # lock left held.
        name = imagecache.cache_filename(IMAGE_ID)
        self.assertEqual([name, name + imagecache.RECORD_SUFFIX],
                         sorted(os.listdir(self.base_dir)))
        for name in os.listdir(self.lock_path):
            lock = fasteners.InterProcessLock(
                os.path.join(self.lock_path, name))
            self.assertTrue(lock.acquire(blocking=False), name)
            lock.release()
        fakes.qemu_img('compare', '-f', 'qcow2', '-F', 'qcow2', self.src,
                       expected['path'])

    def test_threads(self):
        self._check_outcome(self._contend(threads=4, processes=0))

    def test_processes(self):
        self._check_outcome(self._contend(threads=0, processes=2))

    def test_threads_and_processes(self):
        self._check_outcome(self._contend(threads=4, processes=2))


class TestLargeBase(base.BaseTestCase):
    """Root disks of an image whose virtual size is 4 GiB."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.inst = os.path.join(self.tmp, 'instance')
        os.mkdir(self.inst)

    def cached_qcow2(self):
        """A 4 GiB qcow2 image, through the cache, with data at 1 GiB."""
        src = fakes.make_qcow2(os.path.join(self.tmp, 'big.qcow2'), 4 * GiB)
        fakes.qemu_io(src, 'qcow2', 'write -P 0xcd 1G 1M')
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'qcow2')})
        cache = imagecache.ImageCache(os.path.join(self.tmp, '_base'),
                                      os.path.join(self.tmp, 'locks'))
        cached = cache.fetch(None, api, IMAGE_ID)
        self.assertEqual(4 * GiB, cached.virtual_size)
        return cached

    def sparse_raw(self):
        """A 4 GiB sparse raw image with 1 MiB of data at 1 GiB."""
        path = fakes.make_raw(os.path.join(self.tmp, 'big.raw'), 4 * GiB,
                              b'\xcd' * MiB, GiB)
        return imagecache.CachedImage(path, 'raw', 4 * GiB)

    def allocated(self, path):
        return os.stat(path).st_blocks * 512

    def test_qcow2_overlay_is_instant_and_empty(self):
        for base_image in (self.cached_qcow2(), self.sparse_raw()):
            path = os.path.join(self.inst, 'disk')
            started = time.monotonic()
            backends.Qcow2Backend().create_root(base_image, path, 8 * GiB)
            elapsed = time.monotonic() - started

            info = jsonutils.loads(
                fakes.qemu_img('info', '--output=json', path))
            self.assertEqual(8 * GiB, info['virtual-size'])
            self.assertEqual(base_image.path, info['backing-filename'])
            self.assertLess(info['actual-size'], MiB)
            self.assertLess(self.allocated(path), MiB)
            # Measured: about 0.02 s; a copy of the image would take far
            # longer than this bound.
            self.assertLess(elapsed, 2.0)
            out = fakes.qemu_io(path, 'qcow2', 'read -P 0xcd 1G 1M',
                                read_only=True)
            self.assertNotIn('fail', out.lower())
            os.unlink(path)

    def test_raw_copy_is_sparse(self):
        for base_image in (self.cached_qcow2(), self.sparse_raw()):
            path = os.path.join(self.inst, 'disk')
            backends.RawBackend().create_root(base_image, path, 4 * GiB)

            self.assertEqual(4 * GiB, os.path.getsize(path))
            # 1 MiB of data; everything else stays a hole.
            self.assertLess(self.allocated(path), 4 * MiB)
            with open(path, 'rb') as f:
                f.seek(GiB)
                self.assertEqual(b'\xcd' * MiB, f.read(MiB))
            fakes.qemu_img('compare', '-f', 'raw', '-F', base_image.format,
                           path, base_image.path)
            os.unlink(path)
