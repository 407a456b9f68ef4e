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

"""Every lifecycle call of the driver on a real QEMU (TCG) guest.

Effects are checked on the real libvirt domain and, where the guest can
show them, on its serial console (read through get_console_output).
"""

import os
import time

import libvirt
from oslo_concurrency import processutils
from oslotest import base

from nova.compute import power_state
from nova.compute import task_states
from nova import exception
from nova.virt import event

from nova_pyvirt import exception as pyvirt_exception
from tests.fixtures import driver as driver_fixture
from tests.fixtures import embedded

READY = 'PYVIRT-GUEST: ready'
BOOT = 'PYVIRT-GUEST: boot start'


class LifecycleTest(base.BaseTestCase):

    def setUp(self):
        super(LifecycleTest, self).setUp()
        self.fx = self.useFixture(driver_fixture.DriverFixture())
        self.driver = self.fx.driver

    def assertDomainState(self, instance, state):
        self.assertEqual(state, self.fx.domain(instance).state()[0])

    def transitions(self):
        return [e.transition for e in self.fx.events]

    def test_full_lifecycle(self):
        ctx = self.fx.context
        instance = self.fx.spawn()
        # spawn: a real running guest that booted from our disk
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_RUNNING)
        self.assertEqual(power_state.RUNNING,
                         self.driver.get_info(instance).state)
        console = self.fx.wait_console(instance, READY)
        self.assertIn('marker=PYVIRT-DISK-MARKER root', console)
        self.assertTrue(self.driver.instance_exists(instance))
        self.assertIn(instance.uuid, self.driver.list_instance_uuids())
        self.assertIn(instance.name, self.driver.list_instances())
        self.assertEqual('pc-i440fx-7.2',
                         instance.system_metadata['image_hw_machine_type'])

        # diagnostics and consoles
        diags = self.driver.get_instance_diagnostics(instance)
        self.assertEqual((1, 1), (diags.num_cpus, diags.num_disks))
        self.assertGreater(diags.disk_details[0].read_bytes, 0)
        legacy = self.driver.get_diagnostics(instance)
        self.assertGreater(legacy['vda_read'], 0)
        self.assertGreater(self.driver.get_vnc_console(ctx, instance).port,
                           5899)

        # pause / unpause
        self.driver.pause(instance)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_PAUSED)
        self.driver.unpause(instance)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_RUNNING)

        # suspend (managed save) / resume restores, it does not reboot
        self.driver.suspend(ctx, instance)
        dom = self.fx.domain(instance)
        self.assertFalse(dom.isActive())
        self.assertTrue(dom.hasManagedSaveImage(0))
        self.driver.resume(ctx, instance, [])
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_RUNNING)
        self.assertFalse(dom.hasManagedSaveImage(0))
        self.fx.wait_console(instance, 'PYVIRT-GUEST: alive', timeout=60)
        self.assertNotIn(BOOT, self.fx.console(instance))

        # soft reboot: ACPI shutdown then start; nova sees no stop
        self.fx.events[:] = []
        self.driver.reboot(ctx, instance, [], 'SOFT')
        console = self.fx.wait_console(instance, READY)
        self.assertIn(BOOT, console)
        time.sleep(1)
        self.assertNotIn(event.EVENT_LIFECYCLE_STOPPED, self.transitions())

        # graceful power off, then power on
        self.driver.power_off(instance, timeout=60, retry_interval=10)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_SHUTOFF)
        self.assertIn('PYVIRT-GUEST: acpi shutdown', self.fx.console(instance))
        self.assertEqual(power_state.SHUTDOWN,
                         self.driver.get_info(instance).state)
        self.driver.power_on(ctx, instance, [])
        self.fx.wait_console(instance, READY)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_RUNNING)

        # hard reboot regenerates the domain with the persisted machine type
        self.driver.reboot(ctx, instance, [], 'HARD')
        self.fx.wait_console(instance, READY)
        machine = self.driver._guest(instance).definition().os.machine
        self.assertEqual('pc-i440fx-7.2', machine)

        # snapshot: root disk uploaded with the task-state updates
        states = []
        image = self.fx.images.create(ctx, {'name': 'snap'})

        def update_task_state(task_state, expected_state=None):
            states.append((task_state, expected_state))

        self.driver.snapshot(ctx, instance, image['id'], update_task_state)
        self.assertEqual([(task_states.IMAGE_PENDING_UPLOAD, None),
                          (task_states.IMAGE_UPLOADING,
                           task_states.IMAGE_PENDING_UPLOAD)], states)
        uploaded = self.fx.images.get(ctx, image['id'])
        self.assertEqual(('qcow2', 'active'), (uploaded['disk_format'],
                                               uploaded['status']))
        path = os.path.join(self.fx.images.directory, image['id'] + '.data')
        with open(path, 'rb') as handle:
            self.assertEqual(b'QFI\xfb', handle.read(4))
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_RUNNING)

        # forced power off (no timeout) and destroy, twice
        self.driver.power_off(instance)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_SHUTOFF)
        instance_dir = os.path.join(self.fx.conf.conf.instances_path,
                                    instance.uuid)
        self.driver.destroy(ctx, instance, [], None)
        self.driver.destroy(ctx, instance, [], None)
        self.assertFalse(self.driver.instance_exists(instance))
        self.assertFalse(os.path.exists(instance_dir))

    def test_resume_state_on_host_boot(self):
        ctx = self.fx.context
        instance = self.fx.spawn()
        self.fx.wait_console(instance, READY)
        running_id = self.fx.domain(instance).ID()

        # A running guest and a paused one are left as they are: same
        # QEMU process (domain id), no new boot on the console.
        self.driver.resume_state_on_host_boot(ctx, instance, [], None)
        self.assertEqual(running_id, self.fx.domain(instance).ID())
        self.driver.pause(instance)
        self.driver.resume_state_on_host_boot(ctx, instance, [], None)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_PAUSED)
        self.assertEqual(running_id, self.fx.domain(instance).ID())
        self.assertEqual(1, self.fx.console(instance).count(BOOT))

        # A guest the host's reboot took down is started again.
        self.fx.domain(instance).destroy()
        self.driver.resume_state_on_host_boot(ctx, instance, [], None)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_RUNNING)
        self.assertNotEqual(running_id, self.fx.domain(instance).ID())
        self.fx.wait_console(instance, READY)
        self.driver.destroy(ctx, instance, [], None)

    def test_destroy_can_keep_disks(self):
        ctx = self.fx.context
        instance = self.fx.spawn(power_on=False)
        self.assertDomainState(instance, libvirt.VIR_DOMAIN_SHUTOFF)
        disk = os.path.join(self.fx.conf.conf.instances_path,
                            instance.uuid, 'disk')
        self.assertTrue(os.path.exists(disk))
        self.driver.destroy(ctx, instance, [], None, destroy_disks=False)
        self.assertFalse(self.driver.instance_exists(instance))
        self.assertTrue(os.path.exists(disk))
        self.driver.cleanup(ctx, instance, [], None, destroy_disks=True)
        self.assertFalse(os.path.exists(disk))


class SpawnFaultTest(base.BaseTestCase):
    """A spawn that fails at any step leaves nothing behind."""

    def setUp(self):
        super(SpawnFaultTest, self).setUp()
        self.fx = self.useFixture(driver_fixture.DriverFixture())
        self.driver = self.fx.driver
        self.conf = self.fx.conf.conf

    def assertNothingLeft(self, instance):
        self.assertNotIn(instance.uuid, self.driver.list_instance_uuids())
        self.assertFalse(os.path.exists(os.path.join(
            self.conf.instances_path, instance.uuid)))
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                        cmdline = handle.read()
                except OSError:
                    continue
                self.assertNotIn(instance.uuid.encode(), cmdline)
        cache = self.driver._disks.cache
        image_id = self.fx.root_image['id']
        with cache.lock(image_id):
            pass   # not held by the failed spawn
        parts = [n for n in (os.listdir(cache.base_dir)
                             if os.path.isdir(cache.base_dir) else [])
                 if n.endswith('.part')]
        self.assertEqual([], parts)

    def spawn_fails(self, exc_type, image=None, **flavor):
        return self.failed_spawn(exc_type, image, **flavor)[1]

    def failed_spawn(self, exc_type, image=None, **flavor):
        """``(instance, error message)`` of a spawn that must fail."""
        instance, image_meta = self.fx.instance(image, **flavor)
        exc = self.assertRaises(exc_type, self.driver.spawn, self.fx.context,
                                instance, image_meta, [], None, {})
        self.assertNothingLeft(instance)
        return instance, str(exc)

    def test_image_fetch(self):
        image = dict(self.fx.root_image, id='0badc0de-0000-4000-8000-'
                                            '000000000000')
        message = self.spawn_fails(exception.ImageNotFound, image=image)
        self.assertIn('0badc0de', message)

    def test_disk_creation(self):
        big = os.path.join(self.fx.tmp, 'big.qcow2')
        processutils.execute('qemu-img', 'create', '-f', 'qcow2', big, '2G')
        image = self.fx.images.add(big, 'qcow2', properties=dict(
            self.fx.root_image['properties']))
        message = self.spawn_fails(exception.FlavorDiskSmallerThanImage,
                                   image=image, root_gb=1)
        self.assertIn('too small', message)

    def test_input_libvirt_would_refuse(self):
        # Disks on the floppy controller, which libvirt refuses to define:
        # refused before the image is even fetched.
        props = dict(self.fx.root_image['properties'], hw_disk_bus='fdc')
        image = self.fx.images.add(
            os.path.join(driver_fixture.GUEST_IMAGE, 'disk-marker.qcow2'),
            'qcow2', properties=props)
        message = self.spawn_fails(pyvirt_exception.InvalidImageProperty,
                                   image=image)
        self.assertIn("hw_disk_bus='fdc'", message)
        # No image was fetched: the cache was never even made.
        self.assertFalse(os.path.exists(self.driver._disks.cache.base_dir))

    def test_start(self):
        junk = os.path.join(self.fx.tmp, 'not-a-kernel')
        with open(junk, 'wb') as handle:
            handle.write(b'this is not a linux kernel' * 100)
        kernel = self.fx.images.add(junk, 'aki')
        props = dict(self.fx.root_image['properties'],
                     kernel_id=kernel['id'])
        image = self.fx.images.add(
            os.path.join(driver_fixture.GUEST_IMAGE, 'disk-marker.qcow2'),
            'qcow2', properties=props)
        instance, message = self.failed_spawn(libvirt.libvirtError,
                                              image=image)
        if 'monitor socket' in message:
            # QEMU exited before libvirt reached its monitor, so libvirt
            # could not say why; QEMU's log of the domain does.
            message = self.qemu_log(instance)
        self.assertIn('kernel', message.lower())

    def qemu_log(self, instance):
        path = os.path.join(embedded.root(), 'log', 'qemu',
                            instance.name + '.log')
        with open(path, errors='replace') as handle:
            return handle.read()

    def test_backing_file_pointing_at_host_file_is_refused(self):
        evil = os.path.join(self.fx.tmp, 'evil.qcow2')
        processutils.execute('qemu-img', 'create', '-f', 'qcow2', '-b',
                             '/etc/passwd', '-F', 'raw', evil, '1M')
        image = self.fx.images.add(evil, 'qcow2', properties=dict(
            self.fx.root_image['properties']))
        message = self.spawn_fails(exception.ImageUnacceptable, image=image)
        self.assertIn('/etc/passwd', message)

    def test_existing_instance_directory_is_left_alone(self):
        instance, image_meta = self.fx.instance()
        directory = os.path.join(self.conf.instances_path,
                                 instance.uuid)
        os.makedirs(directory)
        precious = os.path.join(directory, 'disk')
        with open(precious, 'w') as handle:
            handle.write('data')
        self.assertRaises(exception.InstanceExists, self.driver.spawn,
                          self.fx.context, instance, image_meta, [], None, {})
        with open(precious) as handle:
            self.assertEqual('data', handle.read())
        self.assertEqual(['disk'], os.listdir(directory))
        self.assertNotIn(instance.uuid, self.driver.list_instance_uuids())
