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

"""Disk backends on real files: formats, sizes, contents, clean-up.

Every disk is made by the real ``qemu-img``, ``mkfs.ext4`` and ``mkswap``
and read back with ``qemu-img info`` or by reading its bytes.
"""

import os
import types

import fixtures
from nova import exception
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.design import request
from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.storage import backends
from nova_pyvirt.storage import errors
from nova_pyvirt.storage import fileops
from nova_pyvirt.storage import imagecache
from tests.unit.storage import fakes

MiB = 1024 * 1024
GiB = 1024 * MiB


def qemu_info(path):
    return jsonutils.loads(fakes.qemu_img('info', '--output=json', '-U', path))


def read_at(path, offset, length):
    with open(path, 'rb') as f:
        f.seek(offset)
        return f.read(length)


def ext4_label(raw_path):
    """Label of the ext4 file system in a raw file, None if there is none.

    The superblock starts at byte 1024: magic 0xEF53 at +56, label at +120.
    """
    sb = read_at(raw_path, 1024, 1024)
    if sb[56:58] != b'\x53\xef':
        return None
    return sb[120:136].rstrip(b'\0').decode()


def conf(preallocate_images='none', **pyvirt):
    """nova's ``[DEFAULT] preallocate_images`` and ``[pyvirt]`` options."""
    return types.SimpleNamespace(preallocate_images=preallocate_images,
                                 pyvirt=types.SimpleNamespace(**pyvirt))


class BackendTestBase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.inst = os.path.join(self.tmp, 'instance')
        os.mkdir(self.inst)

    def path(self, name):
        return os.path.join(self.inst, name)

    def raw_base(self, size=16 * MiB, data=b'ROOT', offset=MiB):
        path = fakes.make_raw(os.path.join(self.tmp, 'base.raw'), size,
                              data, offset)
        return imagecache.CachedImage(path, 'raw', size)

    def qcow2_base(self, size=16 * MiB):
        path = fakes.make_qcow2(os.path.join(self.tmp, 'base.qcow2'), size)
        fakes.qemu_io(path, 'qcow2', 'write -P 0xab 1M 64k')
        return imagecache.CachedImage(path, 'qcow2', size)

    def assertOnlyFiles(self, *names):
        self.assertEqual(sorted(names), sorted(os.listdir(self.inst)))

    def assertAllocatedLess(self, path, limit):
        allocated = os.stat(path).st_blocks * 512
        self.assertLess(allocated, limit, '%s: %d bytes allocated' % (
            path, allocated))


class TestBackendFor(base.BaseTestCase):

    def test_qcow2(self):
        backend = backends.backend_for(conf(images_type='qcow2'))
        self.assertIsInstance(backend, backends.Qcow2Backend)
        self.assertEqual('none', backend.preallocate)

    def test_raw(self):
        backend = backends.backend_for(conf(images_type='raw'))
        self.assertIsInstance(backend, backends.RawBackend)

    def test_unknown(self):
        self.assertRaises(pyvirt_exception.InvalidHostConfiguration,
                          backends.backend_for, conf(images_type='rbd'))

    def test_nova_conf(self):
        from tests import design_support
        fx = self.useFixture(design_support.ConfFixture())
        backend = backends.backend_for(fx.conf)
        self.assertIsInstance(backend, backends.Qcow2Backend)
        self.assertEqual('none', backend.preallocate)
        # nova's own option, as the libvirt driver reads it.
        fx.set(group='DEFAULT', preallocate_images='space')
        self.assertEqual('space', backends.backend_for(fx.conf).preallocate)

    def test_preallocate_option_honoured(self):
        backend = backends.backend_for(
            conf(images_type='raw', preallocate_images='space'))
        self.assertEqual('space', backend.preallocate)

    def test_bad_preallocate_option(self):
        exc = self.assertRaises(
            pyvirt_exception.InvalidHostConfiguration, backends.backend_for,
            conf(images_type='raw', preallocate_images='full'))
        self.assertIn('[DEFAULT] preallocate_images = full', str(exc))


class TestQcow2Root(BackendTestBase):

    def test_overlay_of_qcow2_base(self):
        base_image = self.qcow2_base()
        path = self.path('disk')

        disk = backends.Qcow2Backend().create_root(base_image, path, GiB)

        self.assertEqual(request.LocalDisk(name='disk', path=path,
                                           format='qcow2'), disk)
        info = qemu_info(path)
        self.assertEqual('qcow2', info['format'])
        self.assertEqual(GiB, info['virtual-size'])
        self.assertEqual(base_image.path, info['backing-filename'])
        self.assertEqual('qcow2', info['backing-filename-format'])
        out = fakes.qemu_io(path, 'qcow2', 'read -P 0xab 1M 64k',
                            read_only=True)
        self.assertNotIn('fail', out.lower())
        self.assertAllocatedLess(path, MiB)

    def test_overlays_are_copies_of_one_template(self):
        base_image = self.qcow2_base()
        backend = backends.Qcow2Backend()
        backend.create_root(base_image, self.path('disk'), GiB)
        other = os.path.join(self.tmp, 'other-instance-disk')
        backend.create_root(base_image, other, GiB)
        template = '%s.overlay-%d' % (base_image.path, GiB)
        with open(template, 'rb') as handle:
            content = handle.read()
        for path in (self.path('disk'), other):
            with open(path, 'rb') as handle:
                self.assertEqual(content, handle.read())
        # Instances write to their own copy only.
        fakes.qemu_io(other, 'qcow2', 'write -P 0xcd 2M 64k')
        out, err = processutils.execute(
            'qemu-io', '-f', 'qcow2', '-r', '-c', 'read -P 0xcd 2M 64k',
            self.path('disk'), check_exit_code=False)
        self.assertIn('Pattern verification failed', out + err)
        self.assertEqual([], [n for n in os.listdir(self.tmp)
                              if n.endswith('.tmp')])

    def test_overlay_of_raw_base(self):
        base_image = self.raw_base()
        path = self.path('disk')

        backends.Qcow2Backend().create_root(base_image, path, GiB)

        info = qemu_info(path)
        self.assertEqual('raw', info['backing-filename-format'])
        # The overlay reads the same bytes as the base where they overlap.
        fakes.qemu_img('compare', '-f', 'qcow2', '-F', 'raw', path,
                       base_image.path)

    def test_size_zero_means_image_size(self):
        base_image = self.qcow2_base(size=32 * MiB)
        path = self.path('disk')
        backends.Qcow2Backend().create_root(base_image, path, 0)
        self.assertEqual(32 * MiB, qemu_info(path)['virtual-size'])

    def test_flavor_disk_smaller_than_image(self):
        base_image = self.qcow2_base(size=32 * MiB)
        exc = self.assertRaises(
            exception.FlavorDiskSmallerThanImage,
            backends.Qcow2Backend().create_root, base_image,
            self.path('disk'), 16 * MiB)
        self.assertIn(str(16 * MiB), str(exc))
        self.assertIn(str(32 * MiB), str(exc))
        self.assertOnlyFiles()

    def test_existing_disk_left_untouched(self):
        path = fakes.make_raw(self.path('disk'), 100, b'precious')
        exc = self.assertRaises(
            errors.DiskExists, backends.Qcow2Backend().create_root,
            self.qcow2_base(), path, GiB)
        self.assertIn(path, str(exc))
        self.assertEqual(b'precious', read_at(path, 0, 8))

    def test_failure_removes_partial_disk(self):
        gone = imagecache.CachedImage(os.path.join(self.tmp, 'gone'),
                                      'qcow2', MiB)
        exc = self.assertRaises(
            errors.DiskCreationFailed, backends.Qcow2Backend().create_root,
            gone, self.path('disk'), GiB)
        self.assertIn('qemu-img', str(exc))
        self.assertIn(self.path('disk'), str(exc))
        self.assertOnlyFiles()

    def test_preallocated(self):
        path = self.path('disk')
        backends.Qcow2Backend(preallocate='space').create_root(
            self.qcow2_base(), path, 32 * MiB)
        self.assertGreaterEqual(os.stat(path).st_blocks * 512, 32 * MiB)
        fakes.qemu_img('check', '-f', 'qcow2', path)
        out = fakes.qemu_io(path, 'qcow2', 'read -P 0xab 1M 64k',
                            read_only=True)
        self.assertNotIn('fail', out.lower())

    def test_missing_instance_directory(self):
        exc = self.assertRaises(
            errors.DiskCreationFailed, backends.Qcow2Backend().create_root,
            self.qcow2_base(), os.path.join(self.tmp, 'nowhere', 'disk'),
            GiB)
        self.assertIn('No such file or directory', str(exc))


class TestRawRoot(BackendTestBase):

    def test_sparse_copy_of_raw_base_resized(self):
        base_image = self.raw_base(size=64 * MiB)
        path = self.path('disk')

        disk = backends.RawBackend().create_root(base_image, path, GiB)

        self.assertEqual(request.LocalDisk(name='disk', path=path,
                                           format='raw'), disk)
        self.assertEqual(GiB, os.path.getsize(path))
        self.assertEqual(b'ROOT', read_at(path, MiB, 4))
        self.assertAllocatedLess(path, MiB)
        # Not a link nor a reflink trick: an independent file.
        self.assertNotEqual(os.stat(path).st_ino,
                            os.stat(base_image.path).st_ino)

    def test_copy_of_qcow2_base(self):
        base_image = self.qcow2_base()
        path = self.path('disk')

        backends.RawBackend().create_root(base_image, path, 0)

        self.assertEqual('raw', qemu_info(path)['format'])
        self.assertEqual(16 * MiB, os.path.getsize(path))
        self.assertEqual(b'\xab' * 16, read_at(path, MiB, 16))
        self.assertAllocatedLess(path, 2 * MiB)

    def test_flavor_disk_smaller_than_image(self):
        self.assertRaises(exception.FlavorDiskSmallerThanImage,
                          backends.RawBackend().create_root,
                          self.raw_base(size=64 * MiB), self.path('disk'),
                          MiB)
        self.assertOnlyFiles()

    def test_failure_removes_partial_disk(self):
        gone = imagecache.CachedImage(os.path.join(self.tmp, 'gone'),
                                      'raw', MiB)
        self.assertRaises(errors.DiskCreationFailed,
                          backends.RawBackend().create_root,
                          gone, self.path('disk'), GiB)
        self.assertOnlyFiles()

    def test_preallocated(self):
        base_image = self.raw_base(size=8 * MiB)
        path = self.path('disk')
        backends.RawBackend(preallocate='space').create_root(
            base_image, path, 32 * MiB)
        self.assertGreaterEqual(os.stat(path).st_blocks * 512, 32 * MiB)
        self.assertEqual(b'ROOT', read_at(path, MiB, 4))


class TestBlank(BackendTestBase):

    def setUp(self):
        super().setUp()
        if fileops.find_tool('mkfs.ext4') is None:
            self.skipTest('mkfs.ext4 (e2fsprogs) is not installed')

    def test_raw_ext4(self):
        path = self.path('disk.eph0')
        disk = backends.RawBackend().create_blank(path, GiB, 'disk.eph0')
        self.assertEqual(request.LocalDisk(name='disk.eph0', path=path,
                                           format='raw'), disk)
        self.assertEqual(GiB, os.path.getsize(path))
        self.assertEqual('ephemeral0', ext4_label(path))
        self.assertAllocatedLess(path, 16 * MiB)

    def test_qcow2_ext4(self):
        path = self.path('disk.eph0')
        disk = backends.Qcow2Backend().create_blank(
            path, GiB, 'disk.eph0', label='ephemeral1')
        self.assertEqual('qcow2', disk.format)
        info = qemu_info(path)
        self.assertEqual('qcow2', info['format'])
        self.assertEqual(GiB, info['virtual-size'])
        self.assertNotIn('backing-filename', info)
        raw = os.path.join(self.tmp, 'check.raw')
        fakes.qemu_img('convert', '-f', 'qcow2', '-O', 'raw', path, raw)
        self.assertEqual('ephemeral1', ext4_label(raw))
        self.assertAllocatedLess(path, 16 * MiB)
        # The scratch raw file is gone.
        self.assertOnlyFiles('disk.eph0')

    def test_unformatted(self):
        path = self.path('disk.eph0')
        backends.RawBackend().create_blank(path, GiB, 'disk.eph0',
                                           filesystem=None)
        self.assertIsNone(ext4_label(path))
        self.assertAllocatedLess(path, 64 * 1024)

    def test_without_mkfs_ext4_left_unformatted(self):
        # A host without e2fsprogs (simulated: the tool lookup fails).
        real = fileops.find_tool
        self.useFixture(fixtures.MockPatchObject(
            fileops, 'find_tool',
            lambda name: None if name == 'mkfs.ext4' else real(name)))
        logs = self.useFixture(fixtures.FakeLogger(
            name='nova_pyvirt.storage'))
        path = self.path('disk.eph0')

        disk = backends.Qcow2Backend().create_blank(path, GiB, 'disk.eph0')

        self.assertEqual('qcow2', disk.format)
        self.assertEqual(GiB, qemu_info(path)['virtual-size'])
        self.assertIn('mkfs.ext4 is not installed', logs.output)
        self.assertIn(path, logs.output)

    def test_mkfs_failure_removes_partial_disk(self):
        self.useFixture(fixtures.MockPatchObject(
            fileops, 'find_tool', lambda name: '/bin/false'))
        for backend in (backends.RawBackend(), backends.Qcow2Backend()):
            exc = self.assertRaises(
                errors.DiskCreationFailed, backend.create_blank,
                self.path('disk.eph0'), GiB, 'disk.eph0')
            self.assertIn('ephemeral disk', str(exc))
            self.assertOnlyFiles()

    def test_bad_arguments(self):
        backend = backends.RawBackend()
        self.assertRaises(ValueError, backend.create_blank,
                          self.path('d'), 0, 'd')
        self.assertRaises(ValueError, backend.create_blank,
                          self.path('d'), GiB, 'd', label='x' * 17)
        self.assertRaises(ValueError, backend.create_blank,
                          self.path('d'), GiB, 'd', filesystem='xfs')
        self.assertOnlyFiles()


class TestSwap(BackendTestBase):

    def test_swap(self):
        for backend in (backends.RawBackend(), backends.Qcow2Backend()):
            path = self.path('disk.swap')
            disk = backend.create_swap(path, 64 * MiB)
            self.assertEqual(request.LocalDisk(name='disk.swap', path=path,
                                               format='raw'), disk)
            self.assertEqual(64 * MiB, os.path.getsize(path))
            # mkswap's signature ends the first 4 KiB page.
            self.assertEqual(b'SWAPSPACE2', read_at(path, 4096 - 10, 10))
            self.assertAllocatedLess(path, MiB)
            backend.delete(path)

    def test_mkswap_failure_removes_partial_disk(self):
        self.useFixture(fixtures.MockPatchObject(
            fileops, 'find_tool', lambda name: '/bin/false'))
        self.assertRaises(errors.DiskCreationFailed,
                          backends.RawBackend().create_swap,
                          self.path('disk.swap'), 64 * MiB)
        self.assertOnlyFiles()

    def test_without_mkswap(self):
        self.useFixture(fixtures.MockPatchObject(
            fileops, 'find_tool', lambda name: None))
        exc = self.assertRaises(errors.DiskCreationFailed,
                                backends.RawBackend().create_swap,
                                self.path('disk.swap'), 64 * MiB)
        self.assertIn('mkswap is not installed', str(exc))
        self.assertOnlyFiles()


class TestDelete(BackendTestBase):

    def test_idempotent(self):
        backend = backends.Qcow2Backend()
        path = self.path('disk')
        backend.create_root(self.qcow2_base(), path, GiB)
        backend.delete(path)
        self.assertOnlyFiles()
        backend.delete(path)
        backends.RawBackend().delete(path)
