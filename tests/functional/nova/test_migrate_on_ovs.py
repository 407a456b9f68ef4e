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

"""Cold migration and resize between two hosts, each on its own switch.

nova's API, conductor, scheduler, placement and two ``PyVirtDriver``
computes (:mod:`two_computes`: ``host1`` on the embedded QEMU driver,
``host2`` on a private libvirtd, each with its own instances directory,
address and sshd) move a server on a port of nova's ``NeutronFixture``,
bound as ML2/OVS binds it for a netdev datapath host (``vif_type`` ovs,
direct plug, ``datapath_type`` netdev) and reported DOWN. The server is
booted with a key pair, user data and a config drive, and after every
move the test logs into it over SSH with the key and finds the drive's
``meta_data.json`` and the user data's marker. The guest is the
test guest under real QEMU (TCG); each host has its own real
``ovs-vswitchd`` (userspace datapath):

==============  ============================  ============================
                ``host1``                     ``host2``
==============  ============================  ============================
switch          OVS-A (``self.ovs``)          OVS-B (``self.ovs_b``)
network ns      OVS-A's: QEMU, taps, nova     OVS-B's: libvirtd, QEMU,
                and os-vif's privsep daemon   taps
plugged by      os-vif's ``ovs`` plugin       its own instance of the
                (``[os_vif_ovs]``)            plugin, on OVS-B's socket
==============  ============================  ============================

The two ``br-int`` are joined by a veth pair
(:class:`~tests.fixtures.ovs.SwitchLink`), the physical network between
the hosts; Neutron's DHCP agent (:class:`~tests.fixtures.dhcp.DhcpFixture`)
is on OVS-A's and reaches the guest on either host. Neutron's OVS agent
(:class:`~.test_server_on_ovs.OvsAgent`) watches both switches and sends
``network-vif-plugged`` whenever the port comes on one, a little late
(``AGENT_DELAY``), noting the domain's state on that host then.

One test cold-migrates the server from ``host1`` to ``host2``, reverts,
migrates again and confirms; the other resizes it (a bigger flavor) from
``host2`` to ``host1`` and confirms, so each host is once the source of a
confirmed move. After every step the guest booted again and got the
port's fixed IP from the DHCP agent, answers HTTP and ICMP echo there from
the DHCP namespace, and its port is on the ``br-int`` of the host it runs
on and on no other: after a confirm the source's bridge has no port of the
server left. A revert waits for the event, with the guest paused on the
source, as spawn does; the destination of a move does not (the agent
finds its guest running). The server is then deleted and nothing is left
on either switch, in either namespace or on the machine.

**Why one child process.** nova's harness runs its services in one process
over in-process RPC, so both computes are in the process that
:mod:`ovs_two_computes_host` runs in, entered into OVS-A's namespaces for
the reasons :mod:`.test_server_on_ovs` gives; ``host2`` reaches its own
switch through its libvirtd (started in OVS-B's namespaces) and its own
os-vif plugin. What that process shares between the two hosts, how each
is made per host, and what is not simulated for ``host2`` (hybrid plug)
is in that module's docstring.
"""

import os
import subprocess
import time

import libvirt
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from tests.fixtures import ovs
from tests.functional.network import ovs_world
from tests.functional.nova import test_server_on_ovs as on_ovs
from tests import guest_login
from tests import process_table

#: The compute services of :mod:`two_computes`.
HOST1 = 'host1'
HOST2 = 'host2'
#: Seconds for a move or a revert to finish: a graceful power-off, the
#: copy and a TCG guest start, on a machine that may be busy.
MOVE_TIMEOUT = max(on_ovs.STATUS_TIMEOUT, 300)
#: Seconds the agent takes to report a port it sees on a switch.
AGENT_DELAY = 3
#: What the guest prints when it powers off on the ACPI power button.
GUEST_ACPI_SHUTDOWN = 'PYVIRT-GUEST: acpi shutdown'
OTHER = {HOST1: HOST2, HOST2: HOST1}
CHILD = 'tests.functional.nova.ovs_two_computes_host'
KEY_NAME = 'mykey'


class MigrateOnOvsTest(on_ovs.NovaOnOvsSteps, ovs_world.OvsWorldTest):

    CIDR = on_ovs.CIDR
    GATEWAY = on_ovs.GATEWAY
    LEASES = ((on_ovs.MAC, on_ovs.FIXED_IP),)

    def setUp(self):
        super(MigrateOnOvsTest, self).setUp()
        # The sshds of both hosts, and the drivers' ssh clients, use
        # loopback addresses in OVS-A's network namespace.
        subprocess.run(self.ovs.command([ovs.IP, 'link', 'set', 'lo', 'up']),
                       check=True, capture_output=True)
        self.ovs_b = self.useFixture(ovs.OvsFixture())
        self.namespaces.append(ovs_world.net_namespace(self.ovs_b.pid))
        self.useFixture(ovs.SwitchLink(self.ovs, self.ovs_b))
        self.switches = {HOST1: self.ovs, HOST2: self.ovs_b}
        # Each switch without a server: the link (and on OVS-A the DHCP
        # port), the daemons.
        self.bare = {host: (switch.ports(), switch.links())
                     for host, switch in self.switches.items()}
        self.bare_pids = {host: sorted(switch.namespace_pids())
                          for host, switch in self.switches.items()}
        host2_switch = {'pid': self.ovs_b.pid, 'db_sock': self.ovs_b.db_sock}
        self.host = on_ovs.NovaHost(self, self.ovs, module=CHILD,
                                    args=[jsonutils.dumps(host2_switch)])
        self.host.call('configure', vif_plugging_timeout=300,
                       vif_plugging_is_fatal=True)
        self.host.call('create_port', id=on_ovs.PORT_ID, mac=on_ovs.MAC,
                       ip=on_ovs.FIXED_IP, details=on_ovs.VIF_DETAILS)
        self.flavors = self.host.call('flavors')
        # The server has a key pair, user data and a config drive: each
        # move must bring them along, and the user still log in.
        self.key = guest_login.make_keypair(self.tmp, 'instance-key')
        self.import_keypair(KEY_NAME, self.key)
        self.marker = uuidutils.generate_uuid()
        self.agent = self.useFixture(on_ovs.OvsAgent(
            self.switches, self.host, [on_ovs.PORT_ID], delay=AGENT_DELAY))

    # -- steps -------------------------------------------------------------

    def boot_on(self, host):
        server = self.host.call('boot', port_id=on_ovs.PORT_ID, host=host,
                                fields={
                                    'key_name': KEY_NAME,
                                    'user_data':
                                        guest_login.marker_user_data(
                                            self.marker),
                                    'config_drive': True})['server']
        server = self.wait_for_status(server, 'ACTIVE')
        self.assertAnswersOn(host, server)
        # The agent found the guest paused, the server still building.
        self.assertEqual(
            [(host, server['id'], on_ovs.PORT_ID, 'BUILD',
              libvirt.VIR_DOMAIN_PAUSED)], self.agent.sent)
        return server

    def act(self, server, action):
        reply = self.host.api('POST', '/servers/%s/action' % server['id'],
                              body=action)
        self.assertIn(reply['status'], (202, 204), reply)

    def move(self, server, action):
        """Migrate or resize: VERIFY_RESIZE, answering on the other host."""
        source = self.host_of(server)
        events = len(self.agent.sent)
        self.act(server, action)
        server = self.wait_for_status(server, 'VERIFY_RESIZE',
                                      timeout=MOVE_TIMEOUT)
        self.wait_for_migration(server, 'finished')
        self.assertEqual(OTHER[source], self.host_of(server))
        # The source keeps its domain, stopped, for a revert.
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.domain_state(
            source, server))
        self.assertAnswersOn(OTHER[source], server)
        # The destination did not wait for the event: the agent found its
        # guest running.
        event = self.wait_for_event(events + 1)
        self.assertEqual((OTHER[source], server['id'], on_ovs.PORT_ID,
                          libvirt.VIR_DOMAIN_RUNNING),
                         event[:3] + event[4:])
        return server

    def revert(self, server):
        self.act(server, {'revertResize': None})
        server = self.wait_for_status(server, 'ACTIVE', timeout=MOVE_TIMEOUT)
        self.wait_for_migration(server, 'reverted')
        return server

    def confirm(self, server):
        self.act(server, {'confirmResize': None})
        server = self.wait_for_status(server, 'ACTIVE', timeout=MOVE_TIMEOUT)
        self.wait_for_migration(server, 'confirmed')
        return server

    # -- tests -------------------------------------------------------------

    def test_cold_migrate_revert_then_migrate_and_confirm(self):
        server = self.boot_on(HOST1)

        server = self.move(server, {'migrate': None})

        events = len(self.agent.sent)
        server = self.revert(server)
        # Back on host1, in a new QEMU process booting from host1's copy.
        self.assertAnswersOn(HOST1, server, after=GUEST_ACPI_SHUTDOWN)
        self.assertEqual([], self.host.call('domains', host=HOST2)['uuids'])
        # host1 waited for the event: the agent found its guest paused,
        # the revert not done.
        self.assertEqual(
            (HOST1, server['id'], on_ovs.PORT_ID, 'REVERT_RESIZE',
             libvirt.VIR_DOMAIN_PAUSED), self.wait_for_event(events + 1))

        server = self.move(server, {'migrate': None})
        server = self.confirm(server)

        # host1's bridge has no port left; the guest answers on host2.
        self.assertAnswersOn(HOST2, server)
        self.assertEqual([], self.host.call('domains', host=HOST1)['uuids'])
        self.assertEqual(4, len(self.agent.sent), self.agent.sent)
        self.assertNothingLeftOnceDeleted(server)

    def test_resize_and_confirm(self):
        server = self.boot_on(HOST2)

        server = self.move(server, {'resize': {
            'flavorRef': self.flavors['new_flavor']}})
        self.assertEqual('pyvirt-guest-bigger',
                         server['flavor']['original_name'])

        server = self.confirm(server)

        # host2's bridge has no port left; the guest answers on host1.
        self.assertAnswersOn(HOST1, server)
        self.assertEqual([], self.host.call('domains', host=HOST2)['uuids'])
        self.assertEqual(2, len(self.agent.sent), self.agent.sent)
        self.assertNothingLeftOnceDeleted(server)

    # -- what is where -----------------------------------------------------

    def host_of(self, server):
        return server['OS-EXT-SRV-ATTR:host']

    def domain_state(self, host, server):
        return self.host.call('domain_state', uuid=server['id'],
                              host=host)['state']

    def assertAnswersOn(self, host, server, after=None):
        """The guest runs and answers on ``host``, its port there only.

        It answers at the port's fixed IP; its port is on ``host``'s
        switch, and nothing of it on the other host's.
        """
        self.assertEqual(host, self.host_of(server))
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         self.domain_state(host, server))
        self.assertEqual({on_ovs.TAP: on_ovs.PORT_ID},
                         self.switches[host].iface_ids())
        self.assertEqual(sorted(self.bare[host][0] + [on_ovs.TAP]),
                         sorted(self.switches[host].ports()))
        self.assertSwitchBare(OTHER[host])
        # The guest got the port's fixed IP from the DHCP agent on the
        # other side of the link or on its own host's switch ...
        nics = self.wait_for_nics(server, after=after)
        self.assertEqual([('eth0', on_ovs.MAC, None,
                           on_ovs.FIXED_IP + '/24')], nics)
        # ... which is the address nova reports, and it answers there.
        addresses = [a['addr'] for net in server['addresses'].values()
                     for a in net if a['version'] == 4]
        self.assertEqual([on_ovs.FIXED_IP], addresses)
        self.assertAnswers(on_ovs.FIXED_IP)
        # The user logs in with the key pair; the config drive came along.
        _hostname, _marker, meta_data = self.login(server, self.key,
                                                   self.marker)
        self.assertEqual(server['id'], meta_data['uuid'])

    def assertSwitchBare(self, host):
        """No port, interface or device of the server on ``host``."""
        switch = self.switches[host]
        ports, links = self.bare[host]
        self.assertEqual(ports, switch.ports())
        self.assertEqual({}, switch.iface_ids())
        self.assertEqual(links, switch.links())
        for link in switch.links():
            self.assertFalse(link.startswith(ovs_world.PLUG_DEVICES), link)

    def wait_for_event(self, number):
        """The agent's record of its ``number``-th event (from 1).

        It reports a port ``AGENT_DELAY`` seconds after it saw it.
        """
        deadline = time.monotonic() + AGENT_DELAY + 30
        while (len(self.agent.sent) < number and not self.agent.errors and
               time.monotonic() < deadline):
            time.sleep(0.2)
        self.assertEqual([], self.agent.errors)
        self.assertLessEqual(number, len(self.agent.sent), self.agent.sent)
        return self.agent.sent[number - 1]

    def wait_for_migration(self, server, status):
        deadline = time.monotonic() + MOVE_TIMEOUT
        while True:
            reply = self.host.api(
                'GET', '/os-migrations?instance_uuid=%s' % server['id'],
                admin=True)
            migrations = sorted(reply['body']['migrations'],
                                key=lambda m: m['id'])
            if migrations and migrations[-1]['status'] == status:
                return migrations[-1]
            if time.monotonic() > deadline:
                self.fail('migration of %s not %s within %d s: %s' % (
                    server['id'], status, MOVE_TIMEOUT, migrations))
            time.sleep(0.5)

    # -- what is left -----------------------------------------------------

    def remember_processes(self):
        """Note every process of the test's namespaces (QEMU included)."""
        running = process_table.processes()
        for pid in (self.ovs.namespace_pids() + self.ovs_b.namespace_pids() +
                    self.dhcp.namespace_pids()):
            if pid in running:
                self.held[pid] = running[pid]
        self.assertTrue(any(b'qemu-system' in cmd
                            for cmd in self.held.values()), self.held)

    def assertNothingLeftOnceDeleted(self, server):
        self.remember_processes()
        self.delete(server)
        self.assertEqual([], self.agent.errors)
        running = process_table.processes()
        for host, switch in self.switches.items():
            self.assertEqual([], self.host.call('domains',
                                                host=host)['uuids'])
            self.assertSwitchBare(host)
            for pid in switch.namespace_pids():
                self.assertNotIn(b'qemu-system', running.get(pid, b''))
        # Then the services stop: host2's libvirtd, the privsep daemons
        # and the process itself leave the namespaces.
        self.host.stop()
        for host, switch in self.switches.items():
            deadline = time.monotonic() + 15
            while (sorted(switch.namespace_pids()) != self.bare_pids[host]
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            self.assertEqual(self.bare_pids[host],
                             sorted(switch.namespace_pids()))

    def assertNoProcessLeft(self):
        ovs_b = getattr(self, 'ovs_b', None)
        if ovs_b is not None:
            self.assertFalse(os.path.exists(ovs_b.run_dir),
                             ovs_b.run_dir)
        super(MigrateOnOvsTest, self).assertNoProcessLeft()
