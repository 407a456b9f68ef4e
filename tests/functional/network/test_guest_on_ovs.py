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

"""A real guest on a real Open vSwitch gets its fixed IP and answers.

Each test runs a private OVS (:class:`~tests.fixtures.ovs.OvsFixture`),
Neutron's DHCP agent for the port's subnet
(:class:`~tests.fixtures.dhcp.DhcpFixture`: dnsmasq in its own namespace
on ``br-int``) and a compute host (:mod:`guest_host`: the driver on the
embedded QEMU driver, in the OVS fixture's namespaces, with a virtapi that
plays nova-compute and Neutron's OVS agent). It spawns the test guest
(QEMU TCG) with one port through ``PyVirtDriver.spawn``, checks that
``network-vif-plugged`` was delivered while the guest was still paused,
reads the address the guest got by DHCP from its console, fetches the
guest's HTTP string and pings it from the DHCP namespace, and checks that
``get_instance_diagnostics`` counted that traffic on the NIC. One test
also attaches a second port to the running guest (``attach_interface``),
which the guest sees and configures by DHCP, and detaches it again. Then
the guest is destroyed and the test checks that nothing is left: no OVS
port, no tap/``qbr``/``qvb``/``qvo`` device (in the test's namespace or
the machine's), no process in the namespaces, no namespace of the test and
no process of the test anywhere, compared with lists taken before it
started.
"""

import os
import time

import libvirt
from testtools import content

from nova.network import model as network_model

from tests import design_support as support
from tests.fixtures import driver as driver_fixture
from tests.functional.network import os_vif_host
from tests.functional.network import ovs_world
from tests import guest_console

CIDR = '10.20.0.0/24'
FIXED_IP = '10.20.0.5'
GATEWAY = '10.20.0.1'
# The port attached to the running guest (hybrid plug: qbr, qvb, qvo).
SECOND_PORT = os_vif_host.new_port_values(
    '7c3d9e21-4b6a-4f58-9d0e-2a1b3c4d5e6f')
SECOND_IP = '10.20.0.6'
TIMEOUT = int(os.environ.get('PYVIRT_GUEST_BOOT_TIMEOUT', '180'))


def port(hybrid=False, fixed_ip=FIXED_IP, **values):
    """The port as nova hands it over: ML2/OVS on a netdev datapath."""
    vif = support.vif('ovs', hybrid=hybrid, datapath_type='netdev',
                      **values)
    subnet = network_model.Subnet(
        cidr=CIDR, gateway=network_model.IP(address=GATEWAY, type='gateway'),
        ips=[network_model.FixedIP(address=fixed_ip)],
        dhcp_server=network_model.IP(address='10.20.0.254'))
    vif['network']['subnets'] = [subnet]
    return vif


class DriverOnOvsTest(ovs_world.OvsWorldTest):
    """The driver in the switch's namespaces (:mod:`guest_host`)."""

    def setUp(self):
        super(DriverOnOvsTest, self).setUp()
        # Built here, where the package archive is reachable: the host
        # runs in the switch's network namespace.
        driver_fixture.guest_image_dir()
        self.host = ovs_world.NamespaceHost(
            self, self.ovs, 'tests.functional.network.guest_host')

    def wait_console(self, uuid, predicate, what):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            console = self.host.call('console', uuid=uuid)['console']
            found = predicate(console)
            if found:
                return found
            time.sleep(0.5)
        self.addDetail('console', content.text_content(console))
        self.fail('the guest did not print %s within %d s' % (what, TIMEOUT))


class GuestOnOvsTest(DriverOnOvsTest):

    CIDR = CIDR
    GATEWAY = GATEWAY
    LEASES = ((support.MAC, FIXED_IP), (SECOND_PORT['address'], SECOND_IP))

    def boot(self, vif):
        """Spawn with ``vif``; the guest's uuid once it has its address."""
        spawned = self.host.call('spawn', network_info=[vif])
        uuid = spawned['uuid']

        # Neutron's agent reported the port once it was on br-int, and the
        # guest was held paused until then.
        self.assertEqual([('network-vif-plugged', support.PORT_ID,
                           libvirt.VIR_DOMAIN_PAUSED)],
                         [(e['name'], e['tag'], e['domain_state'])
                          for e in spawned['events']])
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         self.host.call('state', uuid=uuid)['state'])

        # The guest got the port's fixed IP from the DHCP agent.
        nics = self.wait_console(
            uuid, lambda text: guest_console.nic_reports(text),
            'a PYVIRT-NET line')
        self.addDetail('dhcp-leases', content.text_content(
            self.dhcp.leases()))
        self.assertEqual([('eth0', support.MAC, None, FIXED_IP + '/24')],
                         nics)
        self.assertIn(FIXED_IP, self.dhcp.leases())
        return uuid

    def assertAnswers(self, address):
        """The guest's HTTP string and ICMP echo, from the DHCP namespace."""
        self.assertEqual(ovs_world.HTTP_TEXT + '\n',
                         self.dhcp.fetch('http://%s/' % address))
        self.assertTrue(self.dhcp.ping(address))

    def nic_counters(self, uuid):
        """``{mac: (rx bytes, tx bytes)}`` from get_instance_diagnostics."""
        nics = self.host.call('diagnostics', uuid=uuid)['nics']
        return {nic['mac_address']: (nic.get('rx_octets'),
                                     nic.get('tx_octets')) for nic in nics}

    def check_guest_on_the_network(self, hybrid):
        vif = port(hybrid)
        uuid = self.boot(vif)
        on_switch = 'qvo' + support.PORT_ID[:11] if hybrid else vif['devname']
        self.assertEqual({on_switch: support.PORT_ID},
                         self.ovs.iface_ids())

        # It answers at its address, and the NIC's counters saw that.
        before = self.nic_counters(uuid)
        self.assertEqual([support.MAC], list(before))
        self.assertAnswers(FIXED_IP)
        after = self.nic_counters(uuid)
        self.addDetail('nic-counters', content.text_content(
            'before traffic: %s\nafter traffic: %s' % (before, after)))
        self.assertEqual([support.MAC], list(after))
        (rx_before, tx_before), (rx, tx) = before[support.MAC], after[
            support.MAC]
        self.assertGreater(rx, 0)
        self.assertGreater(tx, 0)
        self.assertGreater(rx, rx_before)
        self.assertGreater(tx, tx_before)

        self.remember_processes()
        self.host.call('destroy', uuid=uuid)
        self.assertNothingLeft()

    def plug_devices(self, port_id):
        """The test namespace's devices os-vif and libvirt make for a port."""
        return [link for link in self.ovs.links()
                if link.startswith(ovs_world.PLUG_DEVICES) and
                link[3:] == port_id[:11]]

    def test_attached_port_gets_its_fixed_ip_and_goes_on_detach(self):
        uuid = self.boot(port())
        second = port(hybrid=True, fixed_ip=SECOND_IP, active=True,
                      **SECOND_PORT)
        qvo = 'qvo' + SECOND_PORT['id'][:11]

        self.host.call('attach_interface', uuid=uuid, vif=second)
        self.assertEqual({support.TAP: support.PORT_ID,
                          qvo: SECOND_PORT['id']}, self.ovs.iface_ids())
        self.assertEqual(sorted(['tap', 'qbr', 'qvb', 'qvo']),
                         sorted(link[:3] for link in
                                self.plug_devices(SECOND_PORT['id'])))
        # The guest saw a new NIC and got the second port's fixed IP ...
        added = self.wait_console(
            uuid, lambda text: [nic for nic in guest_console.nic_reports(text)
                                if nic[2] == 'added'],
            'a PYVIRT-NET event=added line')
        self.addDetail('dhcp-leases-attached', content.text_content(
            self.dhcp.leases()))
        self.assertEqual([('eth1', SECOND_PORT['address'], 'added',
                           SECOND_IP + '/24')], added)
        self.assertIn(SECOND_IP, self.dhcp.leases())
        # ... and answers there, from the DHCP namespace.
        self.assertAnswers(SECOND_IP)

        self.host.call('detach_interface', uuid=uuid, vif=second)
        removed = self.wait_console(
            uuid, guest_console.nic_removed_reports,
            'a PYVIRT-NET event=removed line')
        self.assertEqual(['eth1'], removed)
        # The port is off br-int, and none of its devices is left.
        self.assertNotIn(qvo, self.ovs.ports())
        self.assertEqual({support.TAP: support.PORT_ID},
                         self.ovs.iface_ids())
        self.assertEqual(sorted(self.dhcp_ports + [support.TAP]),
                         sorted(self.ovs.ports()))
        self.assertEqual([], self.plug_devices(SECOND_PORT['id']))
        # The first port still works.
        self.assertAnswers(FIXED_IP)

        self.remember_processes()
        self.host.call('destroy', uuid=uuid)
        self.assertNothingLeft()

    def assertNothingLeft(self):
        self.assertSwitchEmptyOnceHostStops(self.host)

    def test_guest_gets_fixed_ip_by_dhcp_and_answers(self):
        self.check_guest_on_the_network(hybrid=False)

    def test_hybrid_plug_guest_gets_fixed_ip_and_answers(self):
        self.check_guest_on_the_network(hybrid=True)
