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

"""The LVM backend on a real volume group (lvm2 on a loop device).

Device-mapper is missing on the project's machines, so the backend runs
with its metadata-only activation (the test seam): lvm2 only edits its
metadata, and each volume's data is read and written through a loop device
over the volume's range of the physical volume. The tests check lvm2's own
view (``lvs``) and read the volumes' bytes straight from the file behind
the physical volume, at the offset lvm2's metadata gives.

The backend's commands run in the driver's privsep daemon, started for
real (:class:`tests.fixtures.privsep.RootDaemon`): root, with only its
capabilities. ``tests/functional/privileges`` runs the same paths from an
unprivileged process.

The last test boots the test guest with its root disk on a volume, through
the driver, and reads the image's marker from the guest's console.
"""

import os
import types

import fixtures
from oslo_utils import uuidutils
from oslotest import base
from testtools import content as testtools_content

from nova import exception

from nova_pyvirt.design import request
from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.privsep import block_device
from nova_pyvirt.privsep import volume_group
from nova_pyvirt.storage import backends
from nova_pyvirt.storage import errors
from nova_pyvirt.storage import fileops
from nova_pyvirt.storage import imagecache
from nova_pyvirt.storage import lvm
from tests.fixtures import lvm as lvm_fixture
from tests.fixtures import privsep as privsep_fixture
from tests.unit.storage import fakes

MiB = 1024 * 1024
GiB = 1024 * MiB
MARKER = b'PYVIRT-DISK-MARKER lvm-root\n'
DEEP = b'deep data at 5 MiB'
IMAGE_ID = '5a0c2f0e-6a43-4d57-9d5e-2f7f4b1d6c11'


def conf(volume_clear='zero', volume_clear_size=0, **pyvirt):
    """The options backend_for reads: nova's (nova's defaults), [pyvirt]'s."""
    return types.SimpleNamespace(
        preallocate_images='none',
        libvirt=types.SimpleNamespace(volume_clear=volume_clear,
                                      volume_clear_size=volume_clear_size),
        pyvirt=types.SimpleNamespace(**pyvirt))


class LvmTestBase(base.BaseTestCase):

    VG_SIZE = 256 * MiB

    def setUp(self):
        super().setUp()
        self.useFixture(privsep_fixture.RootDaemon())
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.vgfx = self.useFixture(lvm_fixture.VolumeGroupFixture(
            size=self.VG_SIZE, directory=self.tmp))
        self.backend = lvm.LvmBackend(self.vgfx.vg,
                                      activation=self.vgfx.activation)
        self.uuid = uuidutils.generate_uuid()
        self.instance_dir = os.path.join(self.tmp, 'instances', self.uuid)
        os.makedirs(self.instance_dir)

    def path(self, name):
        return os.path.join(self.instance_dir, name)

    def cached_image(self, virtual_size=16 * MiB):
        """A qcow2 image with MARKER at 0, fetched into the image cache."""
        raw = fakes.make_raw(os.path.join(self.tmp, 'src.raw'),
                             virtual_size, MARKER)
        with open(raw, 'r+b') as f:
            f.seek(5 * MiB)
            f.write(DEEP)
        src = os.path.join(self.tmp, 'src.qcow2')
        fakes.qemu_img('convert', '-f', 'raw', '-O', 'qcow2', raw, src)
        cache = imagecache.ImageCache(
            os.path.join(self.tmp, 'instances', '_base'),
            os.path.join(self.tmp, 'locks'))
        api = fakes.FakeImageAPI({IMAGE_ID: (src, 'qcow2')})
        self.raw_source = raw
        return cache.fetch(None, api, IMAGE_ID)

    def independent_offset(self, lv):
        """The volume's byte offset on the PV, from lvs/pvs output alone."""
        ranges = self.vgfx.volumes()[lv]['ranges']
        self.assertEqual(1, len(ranges), ranges)
        pv, _sep, span = ranges[0].rpartition(':')
        self.assertEqual(self.vgfx.pv, pv)
        first_pe = int(span.split('-')[0])
        return self.vgfx.pe_start() + first_pe * self.vgfx.extent_size()

    def assertNoVolumes(self):
        self.assertEqual({}, self.vgfx.volumes())
        self.assertEqual([], self.vgfx.loops())


class TestRootVolume(LvmTestBase):

    def test_root_from_cached_image(self):
        base_image = self.cached_image()
        lv = '%s_disk' % self.uuid

        disk = self.backend.create_root(base_image, self.path('disk'),
                                        64 * MiB)

        # lvm2's view: one volume, named like nova's, at the flavor size.
        volumes = self.vgfx.volumes()
        self.assertEqual([lv], list(volumes))
        self.assertEqual(64 * MiB, volumes[lv]['size'])
        # The guest gets a raw block device: here the loop device over
        # the volume's range of the PV.
        self.assertEqual(request.LocalDisk(
            name='disk', path=disk.path, format='raw', source_type='block'),
            disk)
        self.assertEqual(self.vgfx.loops(), [disk.path])
        # The backend's offset is the one lvm2's metadata gives, and the
        # image's bytes are there in the PV's file.
        extent = self.backend.extent(lv)
        offset = self.independent_offset(lv)
        self.assertEqual(lvm.Extent(self.vgfx.pv, offset, 64 * MiB), extent)
        self.assertEqual(MARKER, self.vgfx.read(offset, len(MARKER)))
        self.assertEqual(DEEP, self.vgfx.read(offset + 5 * MiB, len(DEEP)))
        with open(self.raw_source, 'rb') as f:
            self.assertEqual(f.read(),
                             self.vgfx.read(offset, 16 * MiB))
        # Nothing is written in the instance directory.
        self.assertEqual([], os.listdir(self.instance_dir))

        self.backend.delete(self.path('disk'))
        self.assertNoVolumes()
        # Deleting again is fine.
        self.backend.delete(self.path('disk'))

    def test_second_volume_found_at_its_own_offset(self):
        base_image = self.cached_image()
        other = lvm.volume_name(os.path.join(self.tmp, 'other', 'disk'))
        self.vgfx.lvm('lvcreate', *(list(
            volume_group.METADATA_ONLY_CREATE_OPTIONS) + [
            '-L', '12m', '-n', other, self.vgfx.vg]))

        self.backend.create_root(base_image, self.path('disk'), 32 * MiB)

        lv = '%s_disk' % self.uuid
        offset = self.independent_offset(lv)
        self.assertGreater(offset, self.vgfx.pe_start())
        self.assertEqual(offset, self.backend.extent(lv).offset)
        self.assertEqual(MARKER, self.vgfx.read(offset, len(MARKER)))

    def test_size_zero_means_image_size(self):
        base_image = self.cached_image(virtual_size=20 * MiB)
        self.backend.create_root(base_image, self.path('disk'), 0)
        lv = '%s_disk' % self.uuid
        # 20 MiB is five 4 MiB extents.
        self.assertEqual(20 * MiB, self.vgfx.volumes()[lv]['size'])

    def test_flavor_disk_smaller_than_image(self):
        base_image = self.cached_image(virtual_size=32 * MiB)
        self.assertRaises(exception.FlavorDiskSmallerThanImage,
                          self.backend.create_root, base_image,
                          self.path('disk'), 16 * MiB)
        self.assertNoVolumes()

    def test_failed_copy_leaves_no_volume(self):
        # A real qemu-img failure after lvcreate: the cached file is gone.
        gone = imagecache.CachedImage(os.path.join(self.tmp, 'gone'),
                                      'qcow2', MiB)
        exc = self.assertRaises(errors.DiskCreationFailed,
                                self.backend.create_root, gone,
                                self.path('disk'), 16 * MiB)
        self.assertIn('%s does not exist' % gone.path, str(exc))
        self.assertIn('/dev/%s/%s_disk' % (self.vgfx.vg, self.uuid),
                      str(exc))
        self.assertNoVolumes()

    def test_image_bigger_than_free_space(self):
        base_image = self.cached_image()
        exc = self.assertRaises(errors.DiskCreationFailed,
                                self.backend.create_root, base_image,
                                self.path('disk'), GiB)
        self.assertIn('insufficient free space', str(exc))
        self.assertNoVolumes()

    def test_interrupted_create_leaves_no_volume(self):
        # A killed green thread raises a BaseException mid-copy.
        class Killed(BaseException):
            pass

        def write_image(*args, **kwargs):
            raise Killed()

        base_image = self.cached_image()
        self.useFixture(fixtures.MockPatchObject(
            block_device, 'write_image', write_image))
        self.assertRaises(Killed, self.backend.create_root,
                          base_image, self.path('disk'), 16 * MiB)
        self.assertNoVolumes()

    def test_existing_volume_left_untouched(self):
        base_image = self.cached_image()
        self.backend.create_root(base_image, self.path('disk'), 16 * MiB)
        lv = '%s_disk' % self.uuid
        before = self.vgfx.volumes()

        exc = self.assertRaises(errors.DiskExists, self.backend.create_root,
                                base_image, self.path('disk'), 32 * MiB)
        self.assertIn(lv, str(exc))
        self.assertEqual(before, self.vgfx.volumes())
        self.assertEqual(MARKER, self.vgfx.read(
            self.backend.extent(lv).offset, len(MARKER)))

    def test_resize_grows_and_keeps_data(self):
        base_image = self.cached_image()
        lv = '%s_disk' % self.uuid
        self.backend.create_root(base_image, self.path('disk'), 16 * MiB)

        disk = self.backend.resize(self.path('disk'), 48 * MiB)

        self.assertEqual(48 * MiB, self.vgfx.volumes()[lv]['size'])
        extent = self.backend.extent(lv)
        self.assertEqual(48 * MiB, extent.size)
        self.assertEqual(MARKER, self.vgfx.read(extent.offset, len(MARKER)))
        # One loop device, covering the new size.
        self.assertEqual([disk.path], self.vgfx.loops())
        out, _err = fileops.execute('blockdev', '--getsize64', disk.path)
        self.assertEqual(48 * MiB, int(out))
        self.assertRaises(exception.ResizeError, self.backend.resize,
                          self.path('disk'), 16 * MiB)


class TestEphemeralAndSwap(LvmTestBase):

    def test_ephemeral_ext4(self):
        disk = self.backend.create_blank(self.path('disk.eph0'), 32 * MiB,
                                         'disk.eph0')
        lv = '%s_disk.eph0' % self.uuid
        self.assertEqual(request.LocalDisk(
            name='disk.eph0', path=disk.path, format='raw',
            source_type='block'), disk)
        self.assertEqual(32 * MiB, self.vgfx.volumes()[lv]['size'])
        superblock = self.vgfx.read(self.independent_offset(lv) + 1024,
                                    1024)
        self.assertEqual(b'\x53\xef', superblock[56:58])
        self.assertEqual(b'ephemeral0', superblock[120:136].rstrip(b'\0'))

    def test_swap(self):
        disk = self.backend.create_swap(self.path('disk.swap'), 8 * MiB)
        lv = '%s_disk.swap' % self.uuid
        self.assertEqual('disk.swap', disk.name)
        self.assertEqual('block', disk.source_type)
        page = self.vgfx.read(self.independent_offset(lv), 4096)
        self.assertEqual(b'SWAPSPACE2', page[-10:])

    def test_delete_instance_removes_all_its_volumes(self):
        base_image = self.cached_image()
        self.backend.create_root(base_image, self.path('disk'), 16 * MiB)
        self.backend.create_blank(self.path('disk.eph0'), 8 * MiB,
                                  'disk.eph0', filesystem=None)
        self.backend.create_swap(self.path('disk.swap'), 8 * MiB)
        other_dir = os.path.join(self.tmp, 'instances',
                                 uuidutils.generate_uuid())
        self.backend.create_swap(os.path.join(other_dir, 'disk.swap'),
                                 4 * MiB)
        other = lvm.volume_name(os.path.join(other_dir, 'disk.swap'))

        removed = self.backend.delete_instance(self.uuid)

        self.assertEqual(sorted('%s_%s' % (self.uuid, name) for name in (
            'disk', 'disk.eph0', 'disk.swap')), removed)
        self.assertEqual([other], list(self.vgfx.volumes()))
        self.assertEqual(1, len(self.vgfx.loops()))
        self.assertEqual([], self.backend.delete_instance(self.uuid))


class TestVolumeClear(LvmTestBase):

    def test_zeroed_before_removal(self):
        backend = lvm.LvmBackend(self.vgfx.vg, volume_clear='zero',
                                 activation=self.vgfx.activation)
        backend.create_root(self.cached_image(), self.path('disk'),
                            16 * MiB)
        offset = self.independent_offset('%s_disk' % self.uuid)
        self.assertEqual(MARKER, self.vgfx.read(offset, len(MARKER)))

        backend.delete_instance(self.uuid)

        self.assertNoVolumes()
        self.assertEqual(b'\0' * 16 * MiB, self.vgfx.read(offset, 16 * MiB))

    def test_shredded_before_removal(self):
        # nova's volume_clear = shred: three passes of random data.
        backend = lvm.LvmBackend(self.vgfx.vg, volume_clear='shred',
                                 activation=self.vgfx.activation)
        backend.create_root(self.cached_image(), self.path('disk'),
                            16 * MiB)
        offset = self.independent_offset('%s_disk' % self.uuid)
        before = self.vgfx.read(offset, 16 * MiB)
        self.assertIn(DEEP, before)

        backend.delete_instance(self.uuid)

        self.assertNoVolumes()
        after = self.vgfx.read(offset, 16 * MiB)
        self.assertNotIn(MARKER, after)
        self.assertNotIn(DEEP, after)
        # Random, not zeros: no whole MiB of the volume is left zero.
        self.assertNotIn(b'\0' * MiB, after)

    def test_clear_size_limits_the_area(self):
        # volume_clear_size = 1: the first MiB only.
        backend = lvm.LvmBackend(self.vgfx.vg, volume_clear='zero',
                                 volume_clear_size=1,
                                 activation=self.vgfx.activation)
        backend.create_root(self.cached_image(), self.path('disk'),
                            16 * MiB)
        offset = self.independent_offset('%s_disk' % self.uuid)

        backend.delete_instance(self.uuid)

        self.assertNoVolumes()
        self.assertEqual(b'\0' * MiB, self.vgfx.read(offset, MiB))
        self.assertEqual(DEEP, self.vgfx.read(offset + 5 * MiB, len(DEEP)))

    def test_not_cleared_with_none(self):
        backend = lvm.LvmBackend(self.vgfx.vg, volume_clear='none',
                                 activation=self.vgfx.activation)
        backend.create_root(self.cached_image(), self.path('disk'),
                            16 * MiB)
        offset = self.independent_offset('%s_disk' % self.uuid)
        backend.delete_instance(self.uuid)
        self.assertEqual(MARKER, self.vgfx.read(offset, len(MARKER)))


class TestBackendFor(LvmTestBase):

    def test_existing_volume_group(self):
        backend = backends.backend_for(conf(
            images_type='lvm', images_volume_group=self.vgfx.vg))
        self.assertIsInstance(backend, lvm.LvmBackend)
        # Production configuration never picks the test activation.
        self.assertIs(type(backend.activation), lvm.DeviceActivation)
        # nova's [libvirt] volume_clear, at nova's default.
        self.assertEqual('zero', backend.volume_clear)

    def test_missing_volume_group(self):
        exc = self.assertRaises(
            pyvirt_exception.InvalidHostConfiguration,
            backends.backend_for,
            conf(images_type='lvm', images_volume_group='no-such-vg-pyvirt'))
        self.assertIn('images_volume_group', str(exc))
        self.assertIn('no-such-vg-pyvirt', str(exc))

    def test_capacity(self):
        size, free = self.backend.capacity()
        self.backend.create_swap(self.path('disk.swap'), 8 * MiB)
        self.assertEqual((size, free - 8 * MiB), self.backend.capacity())
        self.assertGreater(size, 200 * MiB)


class TestGuestOnVolumes(base.BaseTestCase):
    """The test guest boots from a root volume, through the driver.

    The driver builds its backend from ``[pyvirt] images_type`` when it is
    created, which always means the device activation; the test hands the
    driver an LvmBackend with the metadata-only activation instead (the
    seam), so the guest's disks are loop devices over the volumes' ranges
    of the PV.
    """

    def setUp(self):
        super().setUp()
        # Created first, cleaned up last: after the driver fixture has
        # destroyed the guest that holds the loop devices open.
        self.useFixture(privsep_fixture.RootDaemon())
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.vgfx = self.useFixture(lvm_fixture.VolumeGroupFixture(
            size=3 * GiB, directory=self.tmp))
        # Imported here: the driver fixture needs libvirt and the guest
        # image, which the tests above do not.
        from tests.fixtures import driver as driver_fixture
        self.fx = self.useFixture(driver_fixture.DriverFixture())
        self.backend = lvm.LvmBackend(self.vgfx.vg,
                                      activation=self.vgfx.activation)
        self.fx.driver._disks.backend = self.backend

    def test_boot_from_root_volume(self):
        instance = self.fx.spawn(root_gb=1, ephemeral_gb=1, swap=16)
        lv = '%s_disk' % instance.uuid

        volumes = self.vgfx.volumes()
        self.assertEqual(
            {lv: GiB, lv + '.eph0': GiB, lv + '.swap': 16 * MiB},
            {name: v['size'] for name, v in volumes.items()})
        offset = self.independent_offset(lv)
        self.assertEqual(b'PYVIRT-DISK-MARKER root',
                         self.vgfx.read(offset, 23))

        disks = self.fx.driver._guest(instance).definition().disks
        loops = self.vgfx.loops()
        self.assertEqual(['block'] * 3, [d.type for d in disks])
        self.assertEqual(sorted(d.source_dev for d in disks), loops)

        console = self.fx.wait_console(instance, 'PYVIRT-GUEST: ready')
        self.assertIn('marker=PYVIRT-DISK-MARKER root', console)
        self.assertEqual(3, console.count('PYVIRT-DISK name=vd'))
        self.assertIn('size=%d' % GiB, console)

        listed = self.lv_names()
        self.assertEqual(sorted([lv, lv + '.eph0', lv + '.swap']), listed)

        # nova's delete: destroy alone removes the volumes.
        self.fx.driver.destroy(self.fx.context, instance, [], None)

        # lvm2's own listing of the group: no volume left, and no loop
        # device over the physical volume.
        self.assertEqual([], self.lv_names())
        self.assertEqual([], self.vgfx.loops())

    def lv_names(self):
        """The logical volumes of the group, as ``lvs`` prints them."""
        out = self.vgfx.lvm('lvs', '--noheadings', '-o', 'lv_name',
                            self.vgfx.vg)
        self.addDetail('lvs-%d' % len(self.getDetails()),
                       testtools_content.text_content(out))
        return sorted(line.strip() for line in out.splitlines()
                      if line.strip())

    def independent_offset(self, lv):
        ranges = self.vgfx.volumes()[lv]['ranges']
        first_pe = int(ranges[0].rpartition(':')[2].split('-')[0])
        return self.vgfx.pe_start() + first_pe * self.vgfx.extent_size()
