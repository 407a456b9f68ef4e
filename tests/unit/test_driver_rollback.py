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

"""What spawn and a hard reboot undo, and keep, when a step fails.

Spawn creates the instance directory and its disks (real files, made by
the real backend), connects the volumes, designs, defines and launches
the domain.  Each step is made to fail in turn; whatever spawn made must be
gone afterwards, and the original error must reach nova.  A hard reboot
must never remove what the instance already had.
"""

import os

from oslotest import base

from nova import exception

from tests.unit import virt_fakes

VOL_BOOT = virt_fakes.VOL_BOOT
VOL_DATA = virt_fakes.VOL_DATA


class SpawnRollbackTest(virt_fakes.VolumeBootedTestCase):

    def spawn(self, power_on=True):
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=[], block_device_info=self.bdi,
                          power_on=power_on)

    def assertNothingLeft(self):
        self.assertFalse(os.path.exists(self.directory))
        self.assertEqual(set(), self.volumes.connected)
        for domain in self.host.defined:
            self.assertFalse(domain.defined)
            self.assertFalse(domain.active)

    def test_success_keeps_everything(self):
        self.spawn()
        self.assertEqual(['disk.info', 'disk.swap'],
                         sorted(os.listdir(self.directory)))
        self.assertEqual({VOL_BOOT, VOL_DATA}, self.volumes.connected)
        self.assertEqual(1, len(self.host.defined))
        self.assertTrue(self.host.defined[0].active)
        request = self.fx.requests[0]
        self.assertEqual([VOL_BOOT, VOL_DATA],
                         [v.volume_id for v in request.volumes])
        self.assertEqual(os.path.join(self.directory, 'console.log'),
                         request.console_log)
        self.assertEqual(self.directory, request.instance_dir)

    def test_existing_directory_is_refused_and_kept(self):
        os.makedirs(self.directory)
        with open(os.path.join(self.directory, 'disk'), 'w') as handle:
            handle.write('another instance')

        self.assertRaises(exception.InstanceExists, self.spawn)

        self.assertEqual(['disk'], os.listdir(self.directory))
        self.assertEqual([], self.volumes.journal)
        self.assertEqual([], self.host.defined)

    def test_disk_creation_fails(self):
        # The kernel download fails after the swap disk was made.
        self.instance.kernel_id = 'kernel-image'
        error = exception.ImageNotFound(image_id='kernel-image')
        self.fx.images.download_error = error

        raised = self.assertRaises(exception.ImageNotFound, self.spawn)

        self.assertIs(error, raised)
        self.assertNothingLeft()
        self.assertEqual([], self.host.defined)
        self.assertNotIn(('connect', VOL_BOOT), self.volumes.journal)

    def test_second_volume_fails_to_connect(self):
        error = exception.VolumeNotFound(volume_id=VOL_DATA)
        self.volumes.fail[('connect', VOL_DATA)] = error

        raised = self.assertRaises(exception.VolumeNotFound, self.spawn)

        self.assertIs(error, raised)
        self.assertNothingLeft()
        self.assertEqual([], self.host.defined)
        self.assertIn(('disconnect', VOL_BOOT), self.volumes.journal)
        self.assertEqual([], self.fx.requests)

    def test_design_fails(self):
        error = exception.InvalidImageConfigDrive(config_drive='bad')
        self.fx.design_error = error

        raised = self.assertRaises(exception.InvalidImageConfigDrive,
                                   self.spawn)

        self.assertIs(error, raised)
        self.assertNothingLeft()
        self.assertEqual([], self.host.defined)
        self.assertIn(('disconnect', VOL_BOOT), self.volumes.journal)
        self.assertIn(('disconnect', VOL_DATA), self.volumes.journal)

    def test_define_fails(self):
        error = virt_fakes.libvirt_error('XML error: bad disk')
        self.host.define_error = error

        raised = self.assertRaises(type(error), self.spawn)

        self.assertIs(error, raised)
        self.assertNothingLeft()
        self.assertEqual([], self.host.defined)

    def test_launch_fails_before_qemu_runs(self):
        error = virt_fakes.libvirt_error('cannot open /dev/kvm')
        self.host.start_error = error

        raised = self.assertRaises(type(error), self.spawn)

        self.assertIs(error, raised)
        self.assertNothingLeft()
        domain = self.host.defined[0]
        self.assertEqual(['createWithFlags', 'undefineFlags'],
                         domain.calls)

    def test_launch_fails_after_qemu_started(self):
        error = virt_fakes.libvirt_error('monitor went away')
        self.host.start_error = error
        self.host.started = True

        raised = self.assertRaises(type(error), self.spawn)

        self.assertIs(error, raised)
        self.assertNothingLeft()
        domain = self.host.defined[0]
        self.assertEqual(['createWithFlags', 'destroy', 'undefineFlags'],
                         domain.calls)

    def test_cleanup_failure_does_not_hide_the_error(self):
        error = virt_fakes.libvirt_error('cannot open /dev/kvm')
        self.host.start_error = error
        self.volumes.fail[('disconnect', VOL_BOOT)] = RuntimeError('iscsi')

        raised = self.assertRaises(type(error), self.spawn)

        self.assertIs(error, raised)
        # The other volume and the disks are cleaned up all the same.
        self.assertEqual({VOL_BOOT}, self.volumes.connected)
        self.assertFalse(os.path.exists(self.directory))
        self.assertFalse(self.host.defined[0].defined)

    def test_not_powered_on_is_defined_only(self):
        self.spawn(power_on=False)
        domain = self.host.defined[0]
        self.assertTrue(domain.defined)
        self.assertEqual([], domain.calls)


class HardRebootRollbackTest(base.BaseTestCase):
    """A reboot that fails leaves the instance's disks and domain."""

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(virt_fakes.DriverFixture())
        self.driver = self.fx.driver
        self.instance = self.fx.instance(swap=1)
        self.bdi = virt_fakes.VolumeBackend.block_device_info(VOL_BOOT)
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=[], block_device_info=self.bdi)
        self.directory = self.fx.instance_dir(self.instance)
        self.files = sorted(os.listdir(self.directory))

    def reboot(self):
        self.driver.reboot(self.fx.context, self.instance, [], 'HARD',
                           block_device_info=self.bdi)

    def test_launch_fails(self):
        error = virt_fakes.libvirt_error('cannot open /dev/kvm')
        self.fx.host.start_error = error

        raised = self.assertRaises(type(error), self.reboot)

        self.assertIs(error, raised)
        self.assertEqual(self.files, sorted(os.listdir(self.directory)))
        first, second = self.fx.host.defined
        self.assertIn('destroy', first.calls)
        self.assertTrue(second.defined)
        self.assertNotIn('undefineFlags', second.calls)
        self.assertEqual({VOL_BOOT}, self.fx.volumes.connected)

    def test_define_fails(self):
        error = virt_fakes.libvirt_error('XML error')
        self.fx.host.define_error = error

        raised = self.assertRaises(type(error), self.reboot)

        self.assertIs(error, raised)
        self.assertEqual(self.files, sorted(os.listdir(self.directory)))
        self.assertTrue(self.fx.host.defined[0].defined)

    def test_missing_disk_record(self):
        os.unlink(os.path.join(self.directory, 'disk.info'))

        self.assertRaises(exception.DiskNotFound, self.reboot)

        self.assertEqual(['disk.swap'], os.listdir(self.directory))
        self.assertEqual(1, len(self.fx.host.defined))


class GuestCallsTest(base.BaseTestCase):
    """The driver goes through Guest, never the domain, for these."""

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(virt_fakes.DriverFixture())
        self.instance = self.fx.instance()
        self.domain = self.fx.host.add(self.instance.uuid, active=True)

    def test_get_info(self):
        info = self.fx.driver.get_info(self.instance)
        self.assertEqual(42, info.internal_id)

    def test_extend_volume_resizes_the_running_guest(self):
        info = virt_fakes.VolumeBackend.connection_info(VOL_DATA)
        self.domain.devices.append(
            "<disk type='block' device='disk'><source dev='/dev/x'/>"
            "<target dev='vdb' bus='virtio'/><serial>%s</serial></disk>"
            % VOL_DATA)

        self.fx.driver.extend_volume(self.fx.context, info, self.instance,
                                     2 * 1024 ** 3)

        self.assertIn(('blockResize', 'vdb', 2 * 1024 ** 3,
                       virt_fakes.libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES),
                      self.domain.calls)

    def test_list_instances(self):
        self.assertEqual(['instance-%s' % self.instance.uuid],
                         self.fx.driver.list_instances())
        self.assertEqual([self.instance.uuid],
                         self.fx.driver.list_instance_uuids())
