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

"""NFS volumes on a real guest, served by a real NFS server.

nfs-ganesha on 127.0.0.1 (:mod:`tests.fixtures.ganesha`) exports the volume
files; the driver runs on the shared embedded QEMU root
(:mod:`tests.fixtures.driver`) with ``[pyvirt] nfs_transport = qemu``, so
QEMU's own NFS client opens them. What reached the guest is read from its
serial console (``PYVIRT-DISK`` lines, see tools/guest_image/README.md) and
what the guest wrote is read back from the server over NFS.

The ``mount`` transport needs a kernel NFS client: where the host has one,
a volume is hot-plugged through a kernel mount of the export and detached
again; where it has none (the project's test machines), that test is
skipped, saying why. On every host a mount that fails (a share the server
does not export; on a host without a client, the kernel's own refusal)
fails the attach naming the volume and the export and leaves nothing
attached or mounted. The mounts run in os-brick's privsep daemon, started
as root.
"""

import os
from unittest import mock

from nova import exception
from oslo_utils import uuidutils

from nova_pyvirt.volume import nfs
from tests.fixtures import driver as driver_fixture
from tests.fixtures import ganesha
from tests.fixtures import privsep as privsep_fixture
from tests.functional.volume import base as volume_base
from tests.guest_console import disk_reports
from tests.guest_console import removed_reports
from tests.guest_console import SERIAL_LEN

GUEST_WROTE = 'PYVIRT-GUEST-WROTE-ON-NFS'


class NFSVolumeTestCase(volume_base.VolumeTestCase):

    transport = 'qemu'

    def setUp(self):
        super(NFSVolumeTestCase, self).setUp()
        self.nfs = self.useFixture(ganesha.GaneshaFixture())
        self.fx = self.useFixture(driver_fixture.DriverFixture())
        self.fx.conf.set(nfs_transport=self.transport,
                         nfs_mount_point_base=os.path.join(self.fx.tmp,
                                                           'mnt'))
        self.driver = self.fx.driver
        self.ctx = self.fx.context

    def volume(self, name, fmt='raw', size=ganesha.MiB):
        volume_id = uuidutils.generate_uuid()
        self.nfs.create_volume(name, size=size, fmt=fmt)
        return volume_id, self.nfs.connection_info(name, volume_id, fmt)


class QemuTransportTest(NFSVolumeTestCase):

    def test_volume_at_boot_hot_plug_and_detach(self):
        boot_id, boot_info = self.volume('volume-boot')
        # The guest writes this line at offset 0 of vdb after its report.
        image = self.image('pyvirt.write=vdb:%s' % GUEST_WROTE)
        instance, image_meta = self.fx.instance(image)
        bdi = volume_base.block_device_info(boot_info)
        self.driver.spawn(self.ctx, instance, image_meta, [], None, {},
                          block_device_info=bdi)

        # The domain reaches the volume through QEMU's NFS client.
        disks = self.volume_disks(instance)
        self.assertEqual(1, len(disks))
        disk = disks[0]
        self.assertEqual(('network', 'nfs', 'raw'), (
            disk.type, disk.source_protocol, disk.driver_type))
        self.assertEqual(self.nfs.path('volume-boot'), disk.source_name)
        self.assertEqual(['127.0.0.1'],
                         [h.name for h in disk.source_hosts])
        self.assertEqual(('root', 'root'), (disk.source_identity_user,
                                            disk.source_identity_group))

        # At boot the guest sees the volume: its serial and its data.
        console = self.fx.wait_console(instance, 'PYVIRT-WROTE vdb')
        reports = {r[0]: r for r in disk_reports(console)}
        self.assertEqual(
            ('vdb', boot_id[:SERIAL_LEN], ganesha.MiB, None,
             'PYVIRT-DISK-MARKER volume-boot'), reports['vdb'])
        # ... and its writes reach the NFS server.
        self.assertEqual(GUEST_WROTE.encode() + b'\n',
                         self.nfs.read_over_nfs('volume-boot',
                                                len(GUEST_WROTE) + 1))

        # Hot-plug a qcow2 volume into the running guest.
        plug_id, plug_info = self.volume('volume-plug', fmt='qcow2',
                                         size=2 * ganesha.MiB)
        self.driver.attach_volume(self.ctx, plug_info, instance, '/dev/vdc')
        self.assertEqual(
            ('vdc', plug_id[:SERIAL_LEN], 2 * ganesha.MiB, 'added',
             'PYVIRT-DISK-MARKER volume-plug'),
            self.wait_disk(instance, 'vdc', event='added'))
        plugged = [d for d in self.volume_disks(instance)
                   if d.serial == plug_id]
        self.assertEqual(['qcow2'], [d.driver_type for d in plugged])

        # Detach: the guest loses the disk, the domain forgets it, the
        # volume booted with stays.
        self.driver.detach_volume(self.ctx, plug_info, instance, '/dev/vdc')
        self.fx.wait_console(instance, 'name=vdc event=removed', timeout=60)
        self.assertIn('vdc', removed_reports(self.fx.console(instance)))
        self.assertEqual([boot_id],
                         [d.serial for d in self.volume_disks(instance)])
        inactive = self.driver._guest(instance).inactive()
        self.assertEqual([boot_id],
                         [d.serial for d in inactive.disks if d.serial])

        # The volume files are intact on the server.
        self.assertEqual(['volume-boot', 'volume-plug'],
                         self.nfs.list_over_nfs())
        self.assertEqual(b'QFI\xfb',
                         self.nfs.read_over_nfs('volume-plug', 4))

    def test_qemu_opens_the_file_as_the_identity(self):
        instance = self.fx.spawn()
        self.fx.wait_console(instance, volume_base.READY)
        volume_id, info = self.volume('volume-private')
        os.chmod(self.nfs.path('volume-private'), 0o600)
        # QEMU's NFS client sends the <identity> ids to the server: as
        # nobody it may not open a root-only file.
        with mock.patch.object(nfs, 'QEMU_NFS_USER', 'nobody'), \
                mock.patch.object(nfs, 'QEMU_NFS_GROUP', 'nogroup'):
            exc = self.assertRaises(exception.VolumeAttachFailed,
                                    self.driver.attach_volume, self.ctx,
                                    info, instance, '/dev/vdb')
        self.assertIn('NFS: ACCESS denied', str(exc))
        self.assertIn(volume_id, str(exc))
        self.assertEqual([], self.volume_disks(instance))
        # As root (the driver's identity) it may.
        self.driver.attach_volume(self.ctx, info, instance, '/dev/vdb')
        self.assertEqual(
            ('vdb', volume_id[:SERIAL_LEN], ganesha.MiB, 'added',
             'PYVIRT-DISK-MARKER volume-private'),
            self.wait_disk(instance, 'vdb', event='added'))


class MountTransportTest(NFSVolumeTestCase):
    """``[pyvirt] nfs_transport = mount``: the host's kernel mounts."""

    transport = 'mount'

    def setUp(self):
        super(MountTransportTest, self).setUp()
        # os-brick mounts through its privsep daemon, started as root as on
        # a compute host.
        from os_brick import privileged as brick_privileged
        self.useFixture(privsep_fixture.RootDaemon(brick_privileged.default))
        self.base_dir = self.fx.conf.conf.pyvirt.nfs_mount_point_base

    def mounted(self):
        with open('/proc/self/mounts') as handle:
            return [line.split()[1] for line in handle
                    if line.split()[1].startswith(self.base_dir + os.sep)]

    def test_hot_plug_through_a_kernel_mount_and_detach(self):
        reason = ganesha.kernel_client_missing()
        if reason:
            self.skipTest(reason)
        instance = self.fx.spawn()
        self.fx.wait_console(instance, volume_base.READY)
        volume_id, info = self.volume('volume-mount')

        self.driver.attach_volume(self.ctx, info, instance, '/dev/vdb')

        self.assertEqual(
            ('vdb', volume_id[:SERIAL_LEN], ganesha.MiB, 'added',
             'PYVIRT-DISK-MARKER volume-mount'),
            self.wait_disk(instance, 'vdb', event='added'))
        # QEMU opens the file through the kernel's mount of the export.
        disk, = self.volume_disks(instance)
        self.assertEqual('file', disk.type)
        mountpoint, = self.mounted()
        self.assertEqual(os.path.join(mountpoint, 'volume-mount'),
                         disk.source_file)

        self.driver.detach_volume(self.ctx, info, instance, '/dev/vdb')

        self.fx.wait_console(instance, 'name=vdb event=removed', timeout=60)
        self.assertEqual([], self.volume_disks(instance))
        self.assertEqual([], self.mounted())

    def test_failed_mount_names_volume_and_export(self):
        # A share the server does not export: no kernel mounts it, with or
        # without an NFS client.
        missing = '%s:/pyvirt-not-exported-%s' % (
            self.nfs.address, uuidutils.generate_uuid())
        instance = self.fx.spawn()
        self.fx.wait_console(instance, volume_base.READY)
        volume_id, info = self.volume('volume-mount')
        info['data']['export'] = missing

        exc = self.assertRaises(exception.VolumeAttachFailed,
                                self.driver.attach_volume, self.ctx, info,
                                instance, '/dev/vdb')

        message = str(exc)
        self.assertIn(volume_id, message)
        self.assertIn(missing, message)
        if ganesha.kernel_client_missing():
            # The mount reached the kernel, which has no NFS client.
            self.assertTrue('No such device' in message or
                            "unknown filesystem type 'nfs'" in message,
                            message)
        self.assertEqual([], self.volume_disks(instance))
        self.assertNotIn('name=vdb', self.fx.console(instance))
        # Nothing mounted, no mount point left behind.
        self.assertEqual([], self.mounted())
        self.assertEqual([], os.listdir(self.base_dir))
