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

"""The driver's ports: plugged before the guest starts, never left behind.

The driver runs on the fakes of :mod:`virt_fakes` with the real network
package; only os-vif's plug and unplug (which need root and a switch) are
replaced by a recorder, which fails on the port it is told to.
"""

import os
import types

import fixtures
from os_vif import objects as osv_objects
from oslotest import base

from nova import exception as nova_exception

from nova_pyvirt import exception
from nova_pyvirt.migration import cold
from nova_pyvirt.network import vifs
from tests import design_support as support
from tests.unit.migration import test_cold_rollback
from tests.unit import virt_fakes

VOL_BOOT = 'a0000000-0000-4000-8000-000000000001'


def port(n, vif_type='ovs', hybrid=False):
    pid = 'b%07d-0000-4000-8000-000000000000' % n
    return support.vif(vif_type, hybrid=hybrid, id=pid, ovs_interfaceid=pid,
                       devname=('tap' + pid)[:14],
                       address='fa:16:3e:00:00:%02x' % n)


class OsVifRecorder(object):
    """os-vif's plug/unplug: a journal, the plugged set, failures."""

    def __init__(self):
        self.journal = []
        self.plugged = set()
        self.fail_plug = None

    def plug(self, vif, info):
        self.journal.append(('plug', vif.id))
        if vif.id == self.fail_plug:
            raise RuntimeError('ovsdb went away plugging %s' % vif.id)
        self.plugged.add(vif.id)

    def unplug(self, vif, info):
        self.journal.append(('unplug', vif.id))
        self.plugged.discard(vif.id)


class PortsTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(virt_fakes.DriverFixture())
        self.driver = self.fx.driver
        self.host = self.fx.host
        self.instance = self.fx.instance(swap=1)
        self.bdi = virt_fakes.VolumeBackend.block_device_info(VOL_BOOT)
        self.directory = self.fx.instance_dir(self.instance)
        osv_objects.register_all()
        self.osvif = OsVifRecorder()
        self.useFixture(fixtures.MockPatch('os_vif.plug', self.osvif.plug))
        self.useFixture(fixtures.MockPatch('os_vif.unplug',
                                           self.osvif.unplug))
        self.useFixture(fixtures.MockPatch('os_vif.initialize'))
        self.useFixture(fixtures.MockPatchObject(vifs, '_initialized',
                                                 False))
        self.taps = set()
        self.useFixture(fixtures.MockPatch(
            'nova.privsep.linux_net.create_tap_dev',
            lambda dev, mac, multiqueue=False: self.taps.add(dev)))
        self.useFixture(fixtures.MockPatch(
            'nova.privsep.linux_net.delete_net_dev',
            lambda dev: self.taps.discard(dev)))
        self.ports = [port(1), port(2, hybrid=True), port(3, 'tap')]

    def spawn(self, network_info=None):
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=(self.ports if network_info is None
                                        else network_info),
                          block_device_info=self.bdi)

    def assertNoPortLeft(self):
        self.assertEqual(set(), self.osvif.plugged)
        self.assertEqual(set(), self.taps)

    def assertNothingLeft(self):
        self.assertNoPortLeft()
        self.assertFalse(os.path.exists(self.directory))
        self.assertEqual(set(), self.fx.volumes.connected)
        for domain in self.host.defined:
            self.assertFalse(domain.defined)
            self.assertFalse(domain.active)

    def expected(self):
        """The events nova waits for: those of the ports still down."""
        return [('network-vif-plugged', vif['id']) for vif in self.ports
                if not vif['active']]


class SpawnPortsTest(PortsTestCase):

    def test_ports_plugged_before_the_domain_is_defined(self):
        order = []
        define = self.host.define_domain

        def recording_define(xml_text):
            order.append(('define', set(self.osvif.plugged),
                          set(self.taps)))
            return define(xml_text)
        self.host.define_domain = recording_define

        self.spawn()

        self.assertEqual(
            [('define', {self.ports[0]['id'], self.ports[1]['id']},
              {self.ports[2]['devname']})], order)
        self.assertTrue(self.host.defined[0].active)
        self.assertEqual(self.ports, self.fx.requests[0].network_info)

    def test_plug_fails_midway_unplugs_the_earlier_ports(self):
        self.osvif.fail_plug = self.ports[1]['id']

        self.assertRaises(RuntimeError, self.spawn)

        self.assertEqual([('plug', self.ports[0]['id']),
                          ('plug', self.ports[1]['id']),
                          ('unplug', self.ports[0]['id'])],
                         self.osvif.journal)
        self.assertEqual([], self.host.defined)
        self.assertEqual([], self.fx.requests)
        self.assertNothingLeft()

    def test_launch_fails_unplugs_every_port_and_leaves_no_domain(self):
        error = virt_fakes.libvirt_error('cannot open /dev/kvm')
        self.host.start_error = error

        raised = self.assertRaises(type(error), self.spawn)

        self.assertIs(error, raised)
        self.assertNothingLeft()
        self.assertEqual(['createWithFlags', 'undefineFlags'],
                         self.host.defined[0].calls)
        self.assertIn(('unplug', self.ports[0]['id']), self.osvif.journal)
        self.assertIn(('unplug', self.ports[1]['id']), self.osvif.journal)

    def test_design_fails_unplugs_every_port(self):
        self.fx.design_error = exception.InvalidImageProperty(
            name='hw_vif_model', value='x', reason='no')

        self.assertRaises(exception.InvalidImageProperty, self.spawn)

        self.assertNothingLeft()
        self.assertEqual([], self.host.defined)

    def test_unsupported_vif_type_fails_before_anything(self):
        bad = port(4, 'vhostuser')

        exc = self.assertRaises(exception.UnsupportedVifType, self.spawn,
                                [self.ports[0], bad])

        self.assertIn(bad['id'], str(exc))
        self.assertIn('vhostuser', str(exc))
        self.assertFalse(os.path.exists(self.directory))
        self.assertEqual([], self.fx.volumes.journal)
        self.assertEqual([], self.osvif.journal)
        self.assertEqual([], self.host.defined)

    def test_invalid_request_fails_before_anything(self):
        self.fx.validation_error = exception.InvalidFlavorExtraSpec(
            name='hw:cpu_policy', value='dedicated', reason='not built')

        raised = self.assertRaises(exception.InvalidFlavorExtraSpec,
                                   self.spawn)

        self.assertIs(self.fx.validation_error, raised)
        self.assertFalse(os.path.exists(self.directory))
        self.assertEqual([], self.fx.volumes.journal)
        self.assertEqual([], self.osvif.journal)
        self.assertEqual([], self.host.defined)
        self.assertEqual([], self.fx.requests)

    def test_validation_sees_what_design_will_see(self):
        self.spawn()

        [planned] = self.fx.validated
        [designed] = self.fx.requests
        self.assertEqual(designed.instance_dir, planned.instance_dir)
        self.assertEqual(designed.console_log, planned.console_log)
        self.assertEqual(self.ports, planned.network_info)
        self.assertEqual([VOL_BOOT], [v.volume_id for v in planned.volumes])
        self.assertEqual([(v.volume_id, v.mount_device, v.bus, v.boot_index)
                          for v in designed.volumes],
                         [(v.volume_id, v.mount_device, v.bus, v.boot_index)
                          for v in planned.volumes])
        self.assertEqual([(d.name, d.path, d.device)
                          for d in designed.local_disks],
                         [(d.name, d.path, d.device)
                          for d in planned.local_disks])


class LifecyclePortsTest(PortsTestCase):

    def setUp(self):
        super().setUp()
        self.spawn()
        self.osvif.journal = []

    def test_destroy_unplugs_every_port(self):
        self.driver.destroy(self.fx.context, self.instance, self.ports,
                            block_device_info=self.bdi)
        self.assertNothingLeft()

    def test_cleanup_keeps_ports_when_told(self):
        self.driver.cleanup(self.fx.context, self.instance, self.ports,
                            block_device_info=self.bdi, destroy_vifs=False)
        self.assertEqual(2, len(self.osvif.plugged))
        self.assertEqual(1, len(self.taps))

    def test_hard_reboot_and_power_on_keep_the_ports(self):
        self.driver.reboot(self.fx.context, self.instance, self.ports,
                           'HARD', block_device_info=self.bdi)
        self.driver.power_off(self.instance)
        self.driver.power_on(self.fx.context, self.instance, self.ports,
                             block_device_info=self.bdi)
        self.assertEqual([], [c for c in self.osvif.journal
                              if c[0] == 'unplug'])
        self.assertEqual(2, len(self.osvif.plugged))
        self.assertEqual(1, len(self.taps))

    def test_unplug_vifs_then_plug_vifs(self):
        self.driver.unplug_vifs(self.instance, self.ports)
        self.assertNoPortLeft()
        self.driver.plug_vifs(self.instance, self.ports)
        self.assertEqual({self.ports[0]['id'], self.ports[1]['id']},
                         self.osvif.plugged)
        self.assertEqual({self.ports[2]['devname']}, self.taps)

    def test_plug_vifs_failure_keeps_what_was_plugged(self):
        # At host start-up a port that fails must not unplug the others.
        self.osvif.fail_plug = self.ports[1]['id']
        self.assertRaises(RuntimeError, self.driver.plug_vifs,
                          self.instance, self.ports)
        self.assertIn(self.ports[0]['id'], self.osvif.plugged)
        self.assertNotIn(('unplug', self.ports[0]['id']),
                         self.osvif.journal)


class NeutronEventsTest(PortsTestCase):
    """spawn waits for network-vif-plugged with the guest paused."""

    def setUp(self):
        super().setUp()
        self.virtapi = self.fx.virtapi
        self.conf = self.fx.conf
        self.conf.set(group=None, vif_plugging_timeout=7,
                      vif_plugging_is_fatal=True)
        # Neutron reports the first two down; the tap port is up already.
        self.ports[2]['active'] = True

    def test_events_awaited_with_the_guest_paused_then_resumed(self):
        self.spawn()

        self.assertEqual([(self.expected(), 7)], self.virtapi.waits)
        # When the body ended: ports plugged, domain started paused.
        self.assertEqual([(True, True)], self.virtapi.bodies)
        domain = self.host.defined[0]
        self.assertEqual(['createWithFlags', 'resume'], domain.calls)
        self.assertTrue(domain.start_flags &
                        virt_fakes.libvirt.VIR_DOMAIN_START_PAUSED)
        self.assertTrue(domain.active)
        self.assertFalse(domain.paused)
        self.assertEqual(2, len(self.osvif.plugged))

    def test_timeout_fatal_fails_cleanly_naming_the_ports(self):
        self.virtapi.outcome = 'timeout'

        exc = self.assertRaises(exception.VifPlugTimeout, self.spawn)

        self.assertIn(self.ports[0]['id'], str(exc))
        self.assertIn(self.ports[1]['id'], str(exc))
        # Not rescheduled, and nova keeps this message as the fault.
        self.assertIsInstance(exc, nova_exception.BuildAbortException)
        self.assertIsInstance(exc,
                              nova_exception.VirtualInterfaceCreateException)
        self.assertNothingLeft()
        self.assertEqual(['createWithFlags', 'destroy', 'undefineFlags'],
                         self.host.defined[0].calls)

    def test_timeout_not_fatal_starts_the_guest(self):
        self.conf.set(group=None, vif_plugging_is_fatal=False)
        self.virtapi.outcome = 'timeout'

        self.spawn()

        domain = self.host.defined[0]
        self.assertEqual(['createWithFlags', 'resume'], domain.calls)
        self.assertFalse(domain.paused)
        self.assertEqual(2, len(self.osvif.plugged))

    def test_failed_event_fatal_fails_cleanly(self):
        self.virtapi.outcome = 'failed'

        exc = self.assertRaises(exception.VifPlugFailed, self.spawn)

        self.assertIn(self.ports[0]['id'], str(exc))
        self.assertIsInstance(exc, nova_exception.BuildAbortException)
        self.assertNothingLeft()

    def test_failed_event_not_fatal_goes_on(self):
        self.conf.set(group=None, vif_plugging_is_fatal=False)
        self.virtapi.outcome = 'failed'
        self.spawn()
        self.assertFalse(self.host.defined[0].paused)
        self.assertTrue(self.host.defined[0].active)

    def test_launch_failure_inside_the_wait_cleans_up(self):
        self.host.start_error = virt_fakes.libvirt_error('no /dev/kvm')
        self.assertRaises(type(self.host.start_error), self.spawn)
        self.assertNothingLeft()

    def test_no_wait_when_every_port_is_up(self):
        for vif in self.ports:
            vif['active'] = True
        self.spawn()
        self.assertEqual([], self.virtapi.waits)
        self.assertEqual(['createWithFlags'], self.host.defined[0].calls)
        self.assertFalse(self.host.defined[0].paused)

    def test_no_wait_when_timeout_is_zero_or_not_powered_on(self):
        self.conf.set(group=None, vif_plugging_timeout=0)
        self.spawn()
        self.assertEqual(['createWithFlags'], self.host.defined[0].calls)
        self.assertEqual([], self.virtapi.waits)

    def test_no_wait_when_not_powered_on(self):
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=self.ports,
                          block_device_info=self.bdi, power_on=False)
        self.assertEqual([], self.virtapi.waits)
        self.assertEqual([], self.host.defined[0].calls)


class InterfaceHotplugTest(PortsTestCase):
    """attach_interface / detach_interface: plugged, added, undone."""

    def setUp(self):
        super().setUp()
        self.spawn([])
        self.domain = self.host.defined[0]
        self.osvif.journal = []
        self.new = port(5)

    def attach(self, vif=None):
        self.driver.attach_interface(self.fx.context, self.instance,
                                     self.instance.image_meta,
                                     vif or self.new)

    def detach(self, vif=None):
        self.driver.detach_interface(self.fx.context, self.instance,
                                     vif or self.new)

    def nics(self):
        return self.driver._guest(self.instance).definition().interfaces

    def test_attach_running_plugs_then_adds_live_and_config(self):
        self.attach()

        self.assertEqual([('plug', self.new['id'])], self.osvif.journal)
        [nic] = self.nics()
        self.assertEqual(self.new['address'], nic.mac_address)
        self.assertEqual('br-int', nic.source_bridge)
        self.assertEqual(self.new['id'], nic.virtualport_interfaceid)
        self.assertEqual('virtio', nic.model)
        flags = self.domain.attach_flags
        self.assertTrue(flags & virt_fakes.libvirt.VIR_DOMAIN_AFFECT_LIVE)
        self.assertTrue(flags & virt_fakes.libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def test_attach_stopped_adds_to_the_definition_only(self):
        self.driver.power_off(self.instance)
        self.attach()
        self.assertEqual(virt_fakes.libvirt.VIR_DOMAIN_AFFECT_CONFIG,
                         self.domain.attach_flags)
        self.assertEqual({self.new['id']}, self.osvif.plugged)

    def test_attach_tap_port_creates_the_device(self):
        tap = port(6, 'tap')
        self.attach(tap)
        [nic] = self.nics()
        self.assertEqual('ethernet', nic.type)
        self.assertEqual({tap['devname']}, self.taps)

    def test_attach_fails_in_libvirt_unplugs_and_names_the_port(self):
        self.domain.attach_error = virt_fakes.libvirt_error(
            'no free PCI slot')

        exc = self.assertRaises(virt_fakes.exception.InterfaceAttachFailed,
                                self.attach)

        self.assertIn(self.new['id'], str(exc))
        self.assertIn('no free PCI slot', str(exc))
        self.assertEqual([('plug', self.new['id']),
                          ('unplug', self.new['id'])], self.osvif.journal)
        self.assertNoPortLeft()
        self.assertEqual([], self.nics())

    def test_attach_plug_fails_nothing_added(self):
        self.osvif.fail_plug = self.new['id']

        exc = self.assertRaises(virt_fakes.exception.InterfaceAttachFailed,
                                self.attach)

        self.assertIn(self.new['id'], str(exc))
        self.assertNotIn('attachDeviceFlags', self.domain.calls)
        self.assertNoPortLeft()

    def test_attach_unsupported_type_plugs_nothing(self):
        bad = port(7, 'vhostuser')
        exc = self.assertRaises(virt_fakes.exception.InterfaceAttachFailed,
                                self.attach, bad)
        self.assertIn(bad['id'], str(exc))
        self.assertIn('vhostuser', str(exc))
        self.assertEqual([], self.osvif.journal)
        self.assertNotIn('attachDeviceFlags', self.domain.calls)

    def test_attach_bad_vif_model_plugs_nothing(self):
        self.useFixture(fixtures.MockPatch(
            'nova_pyvirt.design.peripherals.vif_model',
            side_effect=exception.InvalidImageProperty(
                name='hw_vif_model', value='e1000', reason='not here')))
        self.assertRaises(virt_fakes.exception.InterfaceAttachFailed,
                          self.attach)
        self.assertEqual([], self.osvif.journal)

    def test_detach_running_waits_then_unplugs(self):
        self.attach()
        self.osvif.journal = []

        self.detach()

        self.assertEqual([], self.nics())
        self.assertEqual('detachDeviceFlags', self.domain.calls[-1])
        self.assertEqual(virt_fakes.libvirt.VIR_DOMAIN_AFFECT_LIVE,
                         self.domain.detach_flags)
        self.assertEqual([('unplug', self.new['id'])], self.osvif.journal)
        self.assertNoPortLeft()

    def test_detach_stopped_removes_from_the_definition(self):
        self.attach()
        self.driver.power_off(self.instance)

        self.detach()

        self.assertEqual(virt_fakes.libvirt.VIR_DOMAIN_AFFECT_CONFIG,
                         self.domain.detach_flags)
        self.assertEqual([], self.nics())
        self.assertNoPortLeft()

    def test_detach_guest_keeps_the_nic_times_out_and_unplugs(self):
        self.conf_timeout(1)
        self.attach()
        self.domain.guest_keeps_devices = True
        self.useFixture(fixtures.MockPatchObject(
            self.host, 'device_removed', lambda uuid, alias: False))

        exc = self.assertRaises(virt_fakes.exception.DeviceDetachFailed,
                                self.detach)

        self.assertIn(self.new['id'], str(exc))
        # As nova's libvirt driver: the port is unplugged all the same.
        self.assertNoPortLeft()

    def test_detach_libvirt_error_still_unplugs(self):
        self.attach()
        error = virt_fakes.libvirt_error('device busy')
        self.domain.detach_error = error
        raised = self.assertRaises(type(error), self.detach)
        self.assertIs(error, raised)
        self.assertNoPortLeft()

    def test_detach_port_not_on_the_guest_unplugs_it(self):
        other = port(8)
        self.attach()
        self.osvif.plugged.add(other['id'])
        self.osvif.journal = []

        self.detach(other)

        self.assertEqual([('unplug', other['id'])], self.osvif.journal)
        self.assertNotIn('detachDeviceFlags', self.domain.calls)
        self.assertEqual(1, len(self.nics()))

    def test_detach_from_a_missing_instance_is_not_found(self):
        self.driver.destroy(self.fx.context, self.instance, [],
                            block_device_info=self.bdi)
        self.assertRaises(virt_fakes.exception.InstanceNotFound, self.detach)

    def conf_timeout(self, seconds):
        self.fx.conf.set(group='pyvirt', live_device_detach_timeout=seconds)


class MigrationPortsBase(PortsTestCase):
    """One driver plays both hosts of a migration.

    Shared storage, as in the rollback tests; ``instance.host`` says which
    host the instance lives on.
    """

    def setUp(self):
        super().setUp()
        self.transport = test_cold_rollback.FakeTransport(
            os.path.join(self.fx.tmp, 'dest'), shared=True)
        self.driver._migration.transport = lambda: self.transport
        self.spawn()
        self.osvif.journal = []
        self.migration = types.SimpleNamespace(source_compute='this-host')

    def migrate(self):
        return self.driver.migrate_disk_and_power_off(
            self.fx.context, self.instance, 'this-host',
            self.instance.flavor, self.ports, block_device_info=self.bdi)

    def finish(self):
        self.driver.finish_migration(
            self.fx.context, self.migration, self.instance, '{}',
            self.ports, self.instance.image_meta, False, {},
            block_device_info=self.bdi)

    def revert(self):
        self.driver.finish_revert_migration(
            self.fx.context, self.instance, self.ports, self.migration,
            block_device_info=self.bdi)


class MigrationPortsTest(MigrationPortsBase):
    """Cold migration and resize take the ports along with the instance."""

    def test_migrate_unplugs_after_the_copy(self):
        send = self.driver._migration.send

        def recording_send(*args):
            self.assertEqual(2, len(self.osvif.plugged))
            return send(*args)
        self.driver._migration.send = recording_send

        self.migrate()

        self.assertNoPortLeft()

    def test_copy_fails_keeps_the_ports(self):
        self.driver._migration.send = mock_raise(RuntimeError('disk full'))
        error = self.assertRaises(nova_exception.InstanceFaultRollback,
                                  self.migrate)
        self.assertIsInstance(error.inner_exception, RuntimeError)
        # The guest starts again here on the ports it had: none is plugged
        # or unplugged.
        self.assertEqual(2, len(self.osvif.plugged))
        self.assertEqual(1, len(self.taps))
        self.assertEqual([], self.osvif.journal)

    def test_finish_plugs_before_the_guest_is_defined(self):
        self.migrate()
        order = []
        define = self.host.define_domain

        def recording_define(xml_text):
            order.append((set(self.osvif.plugged), set(self.taps)))
            return define(xml_text)
        self.host.define_domain = recording_define

        self.finish()

        self.assertEqual([({self.ports[0]['id'], self.ports[1]['id']},
                           {self.ports[2]['devname']})], order)
        self.assertTrue(self.host.defined[-1].active)

    def test_finish_start_fails_unplugs(self):
        self.migrate()
        self.host.start_error = virt_fakes.libvirt_error('no /dev/kvm')
        self.assertRaises(type(self.host.start_error), self.finish)
        self.assertNoPortLeft()

    def test_finish_plug_fails_defines_nothing(self):
        self.migrate()
        defined = len(self.host.defined)
        self.osvif.fail_plug = self.ports[1]['id']
        self.assertRaises(RuntimeError, self.finish)
        self.assertNoPortLeft()
        self.assertEqual(defined, len(self.host.defined))

    def test_revert_plugs_on_the_source_again(self):
        self.migrate()
        self.revert()
        self.assertEqual({self.ports[0]['id'], self.ports[1]['id']},
                         self.osvif.plugged)
        self.assertEqual({self.ports[2]['devname']}, self.taps)
        self.assertTrue(self.host.defined[-1].active)

    def test_confirm_on_the_source_leaves_no_port(self):
        self.migrate()
        # A hybrid bridge whose unplug failed earlier is still there.
        self.osvif.plugged.add(self.ports[1]['id'])
        self.instance.host = 'dest-host'

        self.driver.confirm_migration(self.fx.context, self.migration,
                                      self.instance, self.ports)

        self.assertNoPortLeft()
        self.assertFalse(os.path.exists(cold.resize_dir(
            self.driver._files(self.instance))))

    def test_confirm_of_a_same_host_resize_keeps_the_ports(self):
        self.migrate()
        self.finish()
        self.osvif.journal = []

        self.driver.confirm_migration(self.fx.context, self.migration,
                                      self.instance, self.ports)

        self.assertEqual([], self.osvif.journal)
        self.assertEqual(2, len(self.osvif.plugged))


class MigrationEventsTest(MigrationPortsBase):
    """A revert waits for network-vif-plugged, as spawn; a migration not.

    As nova's libvirt driver: on the source the ports come back on its
    switch, so Neutron reports those that are down plugged again; on the
    destination the source's unplug may go unnoticed, and no event may
    come.
    """

    def setUp(self):
        super().setUp()
        self.virtapi = self.fx.virtapi
        self.conf = self.fx.conf
        self.conf.set(group=None, vif_plugging_timeout=7,
                      vif_plugging_is_fatal=True)
        self.migrate()
        self.virtapi.waits = []
        self.virtapi.bodies = []
        # Neutron reports the first two down; the tap port is up already.
        for vif in self.ports:
            vif['active'] = False
        self.ports[2]['active'] = True

    def test_revert_waits_with_the_guest_paused_then_resumes_it(self):
        self.revert()

        self.assertEqual([(self.expected(), 7)], self.virtapi.waits)
        # When the body ended: the guest was started, paused.
        self.assertEqual([(True, True)], self.virtapi.bodies)
        domain = self.host.defined[-1]
        self.assertEqual(['createWithFlags', 'resume'],
                         domain.calls[-2:])
        self.assertTrue(domain.start_flags &
                        virt_fakes.libvirt.VIR_DOMAIN_START_PAUSED)
        self.assertTrue(domain.active)
        self.assertFalse(domain.paused)
        self.assertEqual({self.ports[0]['id'], self.ports[1]['id']},
                         self.osvif.plugged)

    def test_revert_timeout_fatal_stops_the_guest_and_unplugs(self):
        self.virtapi.outcome = 'timeout'

        exc = self.assertRaises(exception.VifPlugTimeout, self.revert)

        self.assertIn(self.ports[0]['id'], str(exc))
        self.assertIn(self.ports[1]['id'], str(exc))
        self.assertNoPortLeft()
        # The instance still lives here: its domain stays defined, its
        # files are back in place; only the guest is stopped.
        domain = self.host.defined[-1]
        self.assertFalse(domain.active)
        self.assertTrue(domain.defined)
        self.assertEqual('destroy', domain.calls[-1])
        self.assertTrue(os.path.isdir(self.directory))

    def test_revert_timeout_not_fatal_runs_the_guest(self):
        self.conf.set(group=None, vif_plugging_is_fatal=False)
        self.virtapi.outcome = 'timeout'

        self.revert()

        domain = self.host.defined[-1]
        self.assertTrue(domain.active)
        self.assertFalse(domain.paused)

    def test_revert_without_power_on_waits_for_nothing(self):
        self.driver.finish_revert_migration(
            self.fx.context, self.instance, self.ports, self.migration,
            block_device_info=self.bdi, power_on=False)
        self.assertEqual([], self.virtapi.waits)
        self.assertFalse(self.host.defined[-1].active)

    def test_finish_migration_waits_for_nothing(self):
        self.finish()

        self.assertEqual([], self.virtapi.waits)
        domain = self.host.defined[-1]
        self.assertTrue(domain.active)
        self.assertFalse(domain.paused)
        self.assertFalse(domain.start_flags &
                         virt_fakes.libvirt.VIR_DOMAIN_START_PAUSED)


def mock_raise(error):
    def fail(*args, **kwargs):
        raise error
    return fail
