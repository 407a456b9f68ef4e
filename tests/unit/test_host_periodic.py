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

"""What the periodic calls ask of libvirt, on libvirt's test driver.

Each test opens its own node file (``test:///<file>``: a private copy of
the test driver, so nothing is shared with other tests): three domains,
two of them running.  The calls counted are real libvirt calls, spied on,
never replaced.
"""

import os
import time
from unittest import mock

import fixtures
import libvirt
from nova.compute import power_state
from nova.compute import provider_tree
from nova import objects
from nova.virt import virtapi
from oslotest import base

from nova_pyvirt import driver as pyvirt_driver
from nova_pyvirt.hypervisor import host as host_mod
from tests import design_support
from tests.unit import test_host

UUIDS = ['11111111-0000-4000-8000-00000000000%d' % i for i in range(3)]
NODE = ('<node><cpu><mhz>2000</mhz><nodes>1</nodes><sockets>1</sockets>'
        '<cores>8</cores><threads>1</threads><active>8</active></cpu>'
        '<memory>8388608</memory>%s</node>')
DOMAIN = ("<domain type='test'><name>periodic-%d</name><uuid>%s</uuid>"
          "<memory unit='MiB'>64</memory><vcpu>%d</vcpu>"
          "<os><type>hvm</type></os></domain>")
WAIT = 10


def node_uri(tmp):
    path = os.path.join(tmp, 'node.xml')
    with open(path, 'w') as handle:
        handle.write(NODE % ''.join(DOMAIN % (i, UUIDS[i], i + 1)
                                    for i in range(3)))
    return 'test://%s' % path


def wait_until(predicate):
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out')
        time.sleep(0.02)


class HostPeriodicTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.clock = test_host.FakeClock()
        self.host = host_mod.Host(node_uri(tmp), reconnect_interval=None,
                                  clock=self.clock)
        self.addCleanup(self.host.cleanup)
        self.conn = self.host.get_connection()
        # Domains of a node file start running: the last one is stopped.
        self.conn.lookupByUUIDString(UUIDS[2]).destroy()

    def spy(self, name):
        """Count the calls of ``virDomain.<name>``, which still run."""
        return self.useFixture(fixtures.MockPatchObject(
            libvirt.virDomain, name, autospec=True,
            side_effect=getattr(libvirt.virDomain, name))).mock

    def test_domain_states_in_one_call(self):
        state = self.spy('state')
        states = self.host.domain_states()
        self.assertEqual(set(UUIDS), set(states))
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, states[UUIDS[0]][0])
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, states[UUIDS[2]][0])
        self.assertEqual(-1, states[UUIDS[2]][1])
        self.assertEqual(self.conn.lookupByUUIDString(UUIDS[0]).ID(),
                         states[UUIDS[0]][1])
        # getAllDomainStats gave the states: no call per domain.
        self.assertEqual(0, state.call_count)

    def test_recent_state_ages_and_is_forgotten(self):
        self.assertIsNone(self.host.recent_state(UUIDS[0], 10))
        self.host.domain_states()
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         self.host.recent_state(UUIDS[0], 10)[0])
        self.assertIsNone(self.host.recent_state('no-such-uuid', 10))
        self.host.forget_state(UUIDS[0])
        self.assertIsNone(self.host.recent_state(UUIDS[0], 10))
        self.assertIsNotNone(self.host.recent_state(UUIDS[1], 10))
        self.clock.advance(11)
        self.assertIsNone(self.host.recent_state(UUIDS[1], 10))

    def test_change_while_libvirt_answers_wins(self):
        read = host_mod._read_states

        def read_then_change(conn):
            states = read(conn)
            # As a lifecycle event arriving before the answer is used.
            self.host.forget_state(UUIDS[0])
            return states

        with mock.patch.object(host_mod, '_read_states', read_then_change):
            self.host.domain_states()
        self.assertIsNone(self.host.recent_state(UUIDS[0], 10))
        self.assertIsNotNone(self.host.recent_state(UUIDS[1], 10))
        # Read again, the state is good again.
        self.host.domain_states()
        self.assertIsNotNone(self.host.recent_state(UUIDS[0], 10))

    def test_remembered_changes_are_bounded(self):
        self.useFixture(fixtures.MockPatchObject(
            host_mod, 'MAX_REMEMBERED_CHANGES', 2))
        for uuid in UUIDS:
            self.host.forget_state(uuid)
        self.host.domain_states()
        self.assertEqual({}, self.host._changes)
        self.assertIsNotNone(self.host.recent_state(UUIDS[0], 10))

    def test_lifecycle_event_drops_the_recent_state(self):
        self.host.initialize()
        self.host.domain_states()
        self.assertIsNotNone(self.host.recent_state(UUIDS[1], 10))
        self.host.get_connection().lookupByUUIDString(UUIDS[1]).destroy()
        wait_until(lambda: self.host.recent_state(UUIDS[1], 10) is None)
        self.assertIsNotNone(self.host.recent_state(UUIDS[0], 10))

    def test_active_vcpus_asks_each_running_domain_once(self):
        max_vcpus = self.spy('maxVcpus')
        self.assertEqual({UUIDS[0]: 1, UUIDS[1]: 2}, self.host.active_vcpus())
        self.assertEqual(2, max_vcpus.call_count)
        self.assertEqual({UUIDS[0]: 1, UUIDS[1]: 2}, self.host.active_vcpus())
        self.assertEqual(2, max_vcpus.call_count)

        # Started again, a domain gets a new id: it is asked again.
        dom = self.conn.lookupByUUIDString(UUIDS[1])
        dom.destroy()
        self.assertEqual({UUIDS[0]: 1}, self.host.active_vcpus())
        dom.create()
        self.conn.lookupByUUIDString(UUIDS[2]).create()
        self.assertEqual({UUIDS[0]: 1, UUIDS[1]: 2, UUIDS[2]: 3},
                         self.host.active_vcpus())
        self.assertEqual(4, max_vcpus.call_count)

    def test_uuids_and_names_from_one_listing(self):
        self.assertEqual(set(UUIDS), set(self.host.domain_uuids()))
        self.assertEqual({'periodic-0', 'periodic-1', 'periodic-2'},
                         set(self.host.domain_names()))

    def test_memory_used_without_node_memory_stats(self):
        # The test driver has no virNodeGetMemoryStats: asked once.
        stats = self.useFixture(fixtures.MockPatchObject(
            libvirt.virConnect, 'getMemoryStats', autospec=True,
            side_effect=libvirt.virConnect.getMemoryStats)).mock
        first = self.host.get_memory_mb_used()
        self.assertEqual(first, self.host.get_memory_mb_used())
        self.assertEqual(1, stats.call_count)


class DriverPeriodicTest(base.BaseTestCase):
    """PyVirtDriver's periodic calls on the test driver, no fakes."""

    def setUp(self):
        super().setUp()
        objects.register_all()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.conf = self.useFixture(design_support.ConfFixture())
        self.conf.set(virt_type='test', connection_uri=node_uri(self.tmp))
        self.conf.set(group='DEFAULT',
                      instances_path=os.path.join(self.tmp, 'instances'))
        self.conf.set(group='oslo_concurrency',
                      lock_path=os.path.join(self.tmp, 'locks'))
        self.driver = pyvirt_driver.PyVirtDriver(virtapi.VirtAPI())
        self.driver.init_host('host')
        self.addCleanup(self.driver.cleanup_host, 'host')
        self.conn = self.driver._host.get_connection()
        self.conn.lookupByUUIDString(UUIDS[2]).destroy()
        # Its lifecycle event arrives on libvirt's event thread: wait for
        # it, or it would count as a change during the tests' first read.
        wait_until(lambda: UUIDS[2] in self.driver._host._changes)
        self.instances = [objects.Instance(uuid=u, id=i + 1)
                          for i, u in enumerate(UUIDS)]
        self.lookups = self.useFixture(fixtures.MockPatchObject(
            libvirt.virConnect, 'lookupByUUIDString', autospec=True,
            side_effect=libvirt.virConnect.lookupByUUIDString)).mock

    def test_power_state_sync_makes_one_call(self):
        self.assertEqual(3, self.driver.get_num_instances())
        states = [self.driver.get_info(i).state for i in self.instances]
        self.assertEqual([power_state.RUNNING, power_state.RUNNING,
                          power_state.SHUTDOWN], states)
        self.assertEqual(0, self.lookups.call_count)

    def test_uncached_get_info_asks_libvirt(self):
        self.driver.get_num_instances()
        self.conn.lookupByUUIDString(UUIDS[0]).suspend()
        self.lookups.reset_mock()
        info = self.driver.get_info(self.instances[0], use_cache=False)
        self.assertEqual(power_state.PAUSED, info.state)
        self.assertEqual(1, self.lookups.call_count)

    def test_driver_operation_forgets_the_state(self):
        self.driver.get_num_instances()
        self.driver.power_off(self.instances[0])
        self.assertEqual(power_state.SHUTDOWN,
                         self.driver.get_info(self.instances[0]).state)

    def test_state_is_not_kept_for_long(self):
        self.driver.get_num_instances()
        with mock.patch.object(pyvirt_driver, 'POWER_STATE_MAX_AGE', -1):
            self.driver.get_info(self.instances[0])
        self.assertEqual(1, self.lookups.call_count)

    def test_list_instance_uuids(self):
        self.assertEqual(set(UUIDS), set(self.driver.list_instance_uuids()))
        self.assertEqual(3, len(self.driver.list_instances()))

    def test_poll_rebooting_instances_leaves_the_guests_alone(self):
        # As nova's libvirt driver: a reboot ends inside reboot(), so an
        # instance still "rebooting" is not the driver's to reboot again.
        before = [(d.UUIDString(), d.ID(), d.state()[0])
                  for d in self.conn.listAllDomains()]
        self.lookups.reset_mock()

        with self.assertLogs('nova_pyvirt.driver', 'DEBUG') as logs:
            self.assertIsNone(self.driver.poll_rebooting_instances(
                60, self.instances[:2]))

        after = [(d.UUIDString(), d.ID(), d.state()[0])
                 for d in self.conn.listAllDomains()]
        self.assertEqual(sorted(before), sorted(after))
        self.assertEqual(0, self.lookups.call_count)
        self.assertEqual(2, len(logs.records))
        self.assertIn(UUIDS[0], logs.output[0])
        self.assertIn('more than 60 s', logs.output[0])

    def test_plug_vifs_without_ports_reads_nothing(self):
        instance = mock.Mock(spec=['uuid'], uuid=UUIDS[0])
        self.driver.plug_vifs(instance, [])
        self.driver.plug_vifs(instance, None)

    def test_audit(self):
        resource = self.driver.get_available_resource('host')
        self.assertEqual(3, resource['vcpus_used'])    # 1 + 2, one stopped
        self.assertEqual(8, resource['vcpus'])
        # A copy: the caller may change it.
        resource['supported_instances'].append('changed')
        self.assertNotIn(
            'changed',
            self.driver.get_available_resource('host')['supported_instances'])

        tree = provider_tree.ProviderTree()
        tree.new_root('host', '00000000-0000-4000-8000-000000000001')
        self.driver.update_provider_tree(tree, 'host')
        inventory = tree.data('host').inventory
        self.assertEqual(resource['vcpus'], inventory['VCPU']['total'])
        self.assertEqual(resource['memory_mb'],
                         inventory['MEMORY_MB']['total'])
        self.assertEqual(resource['local_gb'], inventory['DISK_GB']['total'])
        self.assertEqual(0, self.lookups.call_count)
