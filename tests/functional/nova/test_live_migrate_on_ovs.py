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

"""Live migration of a guest on an Open vSwitch port, between two switches.

The world of :mod:`.test_migrate_on_ovs` (OVS-A and OVS-B, each in its own
network namespace, their ``br-int`` joined by a veth pair; the DHCP agent
on OVS-A; Neutron's OVS agent watching both) with the hosts of
:mod:`.ovs_live_computes_host`: a libvirtd over TLS per host, ``host1``'s
in OVS-A's namespaces and ``host2``'s in OVS-B's. The two hosts' network
namespaces are joined by one more veth pair, the management network
(``MANAGEMENT``), which carries nova-compute's connections to ``host2``'s
libvirtd, the peer-to-peer connection between the libvirtds and QEMU's
migration stream; the guest's traffic stays on the ``br-int`` link.

The server boots on ``host1`` on a port of nova's ``NeutronFixture``
(which has Neutron's ``binding-extended`` extension, so nova binds the
port to ``host2`` before the move and activates that binding after it)
and moves through ``os-migrateLive`` (``block_migration: auto``). After
the move it answers HTTP and ICMP echo at the same fixed address from the
DHCP namespace, with no new boot and no new DHCP lease, its port is on
OVS-B's ``br-int`` and nothing of it is left on OVS-A's, and Neutron
binds the port to ``host2`` only. A second test aborts the move half-way
(``live_migration_bandwidth`` 1 MiB/s): while it runs the destination's
QEMU has its tap on OVS-B and the port a binding to ``host2``; after the
rollback the guest answers on ``host1``, and ``host2`` has no domain, no
port on its bridge and no binding.

Neutron's agent here reports a port once its tap exists, which on the
destination is when the guest starts moving, so nova is told not to wait
for the event before the move (see :mod:`.ovs_live_computes_host`).
"""

import os
import subprocess
import time

import libvirt
from oslo_serialization import jsonutils

from tests.fixtures import ovs
from tests.functional.network import ovs_world
from tests.functional.nova import test_migrate_on_ovs as on_two
from tests.functional.nova import test_server_on_ovs as on_ovs

HOST1 = on_two.HOST1
HOST2 = on_two.HOST2
CHILD = 'tests.functional.nova.ovs_live_computes_host'
#: The management network between the two hosts' namespaces.
MANAGEMENT = {HOST1: '192.0.2.12', HOST2: '192.0.2.13'}
MANAGEMENT_PREFIX = 24
GUEST_BOOT = 'PYVIRT-GUEST: boot start'


class ManagementLink(object):
    """A veth pair between two switches' network namespaces.

    ``addresses`` (``{host: address}``) are on its ends, which are up. It
    goes with the namespaces; :meth:`remove` deletes it earlier.
    """

    def __init__(self, switches, addresses, name='mgmt'):
        self.switches = switches
        self.ends = {HOST1: name + '-a', HOST2: name + '-b'}
        first = switches[HOST1]
        self._run(first, ovs.IP, 'link', 'add', self.ends[HOST1], 'type',
                  'veth', 'peer', 'name', self.ends[HOST2])
        self._run(first, ovs.IP, 'link', 'set', self.ends[HOST2], 'netns',
                  str(switches[HOST2].pid))
        for host, switch in switches.items():
            self._run(switch, ovs.IP, 'addr', 'add', '%s/%d' % (
                addresses[host], MANAGEMENT_PREFIX), 'dev', self.ends[host])
            self._run(switch, ovs.IP, 'link', 'set', self.ends[host], 'up')

    @staticmethod
    def _run(switch, *argv):
        result = subprocess.run(switch.command(list(argv)),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ovs.OvsError('%s: %s' % (' '.join(argv),
                                           result.stderr.strip()))

    def remove(self):
        subprocess.run(self.switches[HOST1].command(
            [ovs.IP, 'link', 'del', self.ends[HOST1]]), capture_output=True)


class LiveMigrateOnOvsBase(on_ovs.NovaOnOvsSteps, ovs_world.OvsWorldTest):
    """The two hosts and switches, and the steps of a live migration."""

    CIDR = on_ovs.CIDR
    GATEWAY = on_ovs.GATEWAY
    LEASES = ((on_ovs.MAC, on_ovs.FIXED_IP),)

    # What is where, and what is left, as for the cold migration.
    host_of = on_two.MigrateOnOvsTest.host_of
    domain_state = on_two.MigrateOnOvsTest.domain_state
    assertSwitchBare = on_two.MigrateOnOvsTest.assertSwitchBare
    remember_processes = on_two.MigrateOnOvsTest.remember_processes
    assertNothingLeftOnceDeleted = \
        on_two.MigrateOnOvsTest.assertNothingLeftOnceDeleted

    def assertNoProcessLeft(self):
        ovs_b = getattr(self, 'ovs_b', None)
        if ovs_b is not None:
            self.assertFalse(os.path.exists(ovs_b.run_dir), ovs_b.run_dir)
        super(LiveMigrateOnOvsBase, self).assertNoProcessLeft()

    def setUp(self):
        super(LiveMigrateOnOvsBase, self).setUp()
        subprocess.run(self.ovs.command([ovs.IP, 'link', 'set', 'lo', 'up']),
                       check=True, capture_output=True)
        self.ovs_b = self.useFixture(ovs.OvsFixture())
        self.namespaces.append(ovs_world.net_namespace(self.ovs_b.pid))
        # As on any host, loopback is up on host2 too: the guest's VNC
        # server listens on 127.0.0.1 wherever it runs.
        subprocess.run(self.ovs_b.command([ovs.IP, 'link', 'set', 'lo',
                                           'up']),
                       check=True, capture_output=True)
        self.useFixture(ovs.SwitchLink(self.ovs, self.ovs_b))
        self.switches = {HOST1: self.ovs, HOST2: self.ovs_b}
        link = ManagementLink(self.switches, MANAGEMENT)
        self.addCleanup(link.remove)
        self.bare = {host: (switch.ports(), switch.links())
                     for host, switch in self.switches.items()}
        self.bare_pids = {host: sorted(switch.namespace_pids())
                          for host, switch in self.switches.items()}
        host2_switch = {'pid': self.ovs_b.pid, 'db_sock': self.ovs_b.db_sock,
                        'addresses': MANAGEMENT}
        self.host = on_ovs.NovaHost(self, self.ovs, module=CHILD,
                                    args=[jsonutils.dumps(host2_switch)])
        self.host.call('configure', vif_plugging_timeout=300,
                       vif_plugging_is_fatal=True)
        self.host.call('create_port', id=on_ovs.PORT_ID, mac=on_ovs.MAC,
                       ip=on_ovs.FIXED_IP, details=on_ovs.VIF_DETAILS)
        self.agent = self.useFixture(on_ovs.OvsAgent(
            self.switches, self.host, [on_ovs.PORT_ID],
            delay=on_two.AGENT_DELAY))

    # -- steps -------------------------------------------------------------

    def live_migrate(self, server):
        reply = self.host.api(
            'POST', '/servers/%s/action' % server['id'], admin=True,
            body={'os-migrateLive': {'host': None,
                                     'block_migration': 'auto'}})
        self.assertIn(reply['status'], (202, 204), reply)

    def boot_on_host1(self):
        server = self.host.call('boot', port_id=on_ovs.PORT_ID,
                                host=HOST1)['server']
        server = self.wait_for_status(server, 'ACTIVE')
        self.assertEqual(HOST1, self.host_of(server))
        nics = self.wait_for_nics(server)
        self.assertEqual([('eth0', on_ovs.MAC, None,
                           on_ovs.FIXED_IP + '/24')], nics)
        self.assertAnswers(on_ovs.FIXED_IP)
        self.assertPortOnlyOn(HOST1)
        return server

    def wait_for_live_migration(self, server):
        deadline = time.monotonic() + on_two.MOVE_TIMEOUT
        while True:
            reply = self.host.api(
                'GET', '/os-migrations?instance_uuid=%s' % server['id'],
                admin=True)
            live = sorted((m for m in reply['body']['migrations']
                           if m['migration_type'] == 'live-migration'),
                          key=lambda m: m['id'])
            if live and live[-1]['status'] in ('completed', 'error',
                                               'failed', 'cancelled'):
                return live[-1]
            if time.monotonic() > deadline:
                self.fail('live migration of %s not done within %d s: %s' % (
                    server['id'], on_two.MOVE_TIMEOUT, live))
            time.sleep(0.5)

    def migrate_to_host2(self, server):
        """Live-migrate ``server`` to host2; the server settled there."""
        self.live_migrate(server)
        migration = self.wait_for_live_migration(server)
        if migration['status'] != 'completed':
            self.fail('live migration %s: %s\n%s' % (
                migration['status'], self.action_events(server), '\n'.join(
                    self.host.call('log_problems')['lines'])))
        return self.wait_until_settled_on(server, HOST2)

    def wait_until_moving(self, server):
        """The live migration of ``server`` once memory is being sent."""
        deadline = time.monotonic() + on_two.MOVE_TIMEOUT
        while True:
            migrations = self.host.api(
                'GET', '/servers/%s/migrations' % server['id'],
                admin=True)['body']['migrations']
            if migrations and migrations[0]['memory_processed_bytes']:
                return migrations[0]
            if time.monotonic() > deadline:
                self.fail('no running live migration of %s: %s\n%s' % (
                    server['id'], self.action_events(server), '\n'.join(
                        self.host.call('log_problems')['lines'])))
            time.sleep(0.5)

    def abort_and_settle_on_host1(self, server, migration):
        """Abort ``migration`` through the API; the server back on host1."""
        reply = self.host.api('DELETE', '/servers/%s/migrations/%s' % (
            server['id'], migration['id']), admin=True)
        self.assertEqual(202, reply['status'], reply)
        self.assertEqual('cancelled',
                         self.wait_for_live_migration(server)['status'])
        return self.wait_until_settled_on(server, HOST1)

    def action_events(self, server):
        """The events of the server's last action, with their errors."""
        actions = self.host.api('GET', '/servers/%s/os-instance-actions' %
                                server['id'], admin=True)['body'][
            'instanceActions']
        last = max(actions, key=lambda a: a['start_time'])
        return self.host.api('GET', '/servers/%s/os-instance-actions/%s' % (
            server['id'], last['request_id']), admin=True)['body']

    def wait_until_settled_on(self, server, host):
        deadline = time.monotonic() + on_two.MOVE_TIMEOUT
        while True:
            server = self.host.server(server['id'])
            if server['status'] == 'ACTIVE' and \
                    self.host_of(server) == host and \
                    not server['OS-EXT-STS:task_state']:
                return server
            if server['status'] == 'ERROR' or \
                    time.monotonic() > deadline:
                self.fail('server %s not ACTIVE on %s: %s' % (
                    server['id'], host, server))
            time.sleep(0.5)

    def assertPortOnlyOn(self, host):
        self.assertEqual({on_ovs.TAP: on_ovs.PORT_ID},
                         self.switches[host].iface_ids())
        self.assertEqual(sorted(self.bare[host][0] + [on_ovs.TAP]),
                         sorted(self.switches[host].ports()))
        self.assertSwitchBare(on_two.OTHER[host])


class LiveMigrateOnOvsTest(LiveMigrateOnOvsBase):

    def test_live_migrate_keeps_the_address(self):
        server = self.boot_on_host1()
        leases = self.dhcp.leases()

        started = time.monotonic()
        server = self.migrate_to_host2(server)
        settled = time.monotonic()
        took = settled - started

        # It runs on host2 and nowhere else, its port on OVS-B only.
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         self.domain_state(HOST2, server))
        self.assertEqual([], self.host.call('domains', host=HOST1)['uuids'])
        self.assertPortOnlyOn(HOST2)
        # Neutron binds the port to host2 only, and nova reports the same
        # address.
        self.assertEqual([HOST2], self.host.call(
            'port_bindings', id=on_ovs.PORT_ID)['hosts'])
        self.assertEqual(HOST2, self.host.call(
            'port', id=on_ovs.PORT_ID)['port']['binding:host_id'])
        self.assertEqual([on_ovs.FIXED_IP], self.addresses(server))
        # It answers there, from the DHCP namespace on OVS-A's side of the
        # link, without having booted or asked for an address again.
        self.wait_until(
            lambda: self.dhcp.ping(on_ovs.FIXED_IP, count=1), 60,
            'an answer from %s' % on_ovs.FIXED_IP)
        answered = time.monotonic() - settled
        self.assertAnswers(on_ovs.FIXED_IP)
        console = self.console(server)
        self.assertNotIn(GUEST_BOOT, console)
        self.assertEqual(leases, self.dhcp.leases())
        print('live migration of %s from %s (OVS-A) to %s (OVS-B): %.1f s '
              'through the API; %s answered ICMP echo from the DHCP '
              'namespace %.1f s after nova showed it ACTIVE on %s (checks '
              'included), then HTTP, with no new boot or lease; port bound '
              'to %s; events the agent sent: %s' % (
                  server['id'], HOST1, HOST2, took, on_ovs.FIXED_IP,
                  answered, HOST2, HOST2, self.agent.sent))

        self.assertEqual([], self.agent.errors)
        self.assertNothingLeftOnceDeleted(server)

    def test_aborted_live_migration_leaves_nothing_on_host2(self):
        # 1 MiB/s: the 128 MiB guest would take minutes to move.
        self.host.call('set_flags', group='pyvirt',
                       values={'live_migration_bandwidth': 1})
        server = self.boot_on_host1()

        self.live_migrate(server)
        migration = self.wait_until_moving(server)
        # The destination's QEMU waits for the guest with its own tap on
        # OVS-B's bridge; the guest still runs on host1.
        self.assertEqual({on_ovs.TAP: on_ovs.PORT_ID},
                         self.ovs_b.iface_ids())
        self.assertEqual([HOST1, HOST2], self.host.call(
            'port_bindings', id=on_ovs.PORT_ID)['hosts'])
        server = self.abort_and_settle_on_host1(server, migration)

        # Still on host1 and answering there; host2 has no domain, no
        # port on its bridge, and Neutron no binding for it.
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         self.domain_state(HOST1, server))
        self.assertEqual([], self.host.call('domains', host=HOST2)['uuids'])
        self.assertPortOnlyOn(HOST1)
        self.assertEqual([HOST1], self.host.call(
            'port_bindings', id=on_ovs.PORT_ID)['hosts'])
        self.assertAnswers(on_ovs.FIXED_IP)
        print('aborted live migration of %s after %d of %d bytes: it runs '
              'on %s and answers at %s; %s has no domain, no port on OVS-B '
              'and no binding' % (
                  server['id'], migration['memory_processed_bytes'],
                  migration['memory_total_bytes'], HOST1, on_ovs.FIXED_IP,
                  HOST2))

        self.assertEqual([], self.agent.errors)
        self.assertNothingLeftOnceDeleted(server)
