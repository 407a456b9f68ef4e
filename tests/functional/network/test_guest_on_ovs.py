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

import json
import os
import subprocess
import sys
import time

import fixtures
import libvirt
import testtools
from testtools import content

from nova.network import model as network_model

from tests import design_support as support
from tests.fixtures import dhcp
from tests.fixtures import ovs
from tests.functional.network import os_vif_host
from tests import guest_console

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
HELPER = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
QEMU = '/usr/bin/qemu-system-x86_64'
CIDR = '10.20.0.0/24'
FIXED_IP = '10.20.0.5'
GATEWAY = '10.20.0.1'
# The port attached to the running guest (hybrid plug: qbr, qvb, qvo).
SECOND_PORT = os_vif_host.new_port_values(
    '7c3d9e21-4b6a-4f58-9d0e-2a1b3c4d5e6f')
SECOND_IP = '10.20.0.6'
PLUG_DEVICES = ('tap', 'qbr', 'qvb', 'qvo')
HTTP_TEXT = 'PYVIRT-HTTP hello from the test guest'
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


def processes():
    """``{pid: cmdline}`` of every process on the machine."""
    found = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/cmdline' % name, 'rb') as handle:
                    found[int(name)] = handle.read().replace(b'\0', b' ')
            except OSError:
                continue
    return found


def descendants(pid):
    """``{pid: cmdline}`` of every process below ``pid``."""
    parents = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name) as handle:
                    stat = handle.read().rsplit(')', 1)[-1].split()
                parents[int(name)] = int(stat[1])
            except (OSError, IndexError, ValueError):
                continue
    running = processes()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found and child in running:
                found[child] = running[child]
                todo.append(child)
    return found


def net_namespace(pid):
    try:
        return os.readlink('/proc/%d/ns/net' % pid)
    except OSError:
        return None


def machine_plug_devices():
    """Plug and DHCP devices in the machine's own network namespace.

    Taps, ``qbr``/``qvb``/``qvo`` and the DHCP fixture's veth ends: the
    test must never make any there.
    """
    out = subprocess.run([ovs.IP, '-json', 'link', 'show'],
                         capture_output=True, text=True, check=True).stdout
    return sorted(link['ifname'] for link in json.loads(out)
                  if link['ifname'].startswith(PLUG_DEVICES +
                                               ('dhcp-', 'ns-')))


def named_namespaces():
    out = subprocess.run([ovs.IP, 'netns', 'list'], capture_output=True,
                         text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines()
                  if line.strip())


class GuestHost(object):
    """:mod:`guest_host` in the OVS fixture's namespaces; see there."""

    def __init__(self, test, ovs_fixture):
        self.log = os.path.join(test.tmp, 'guest_host.log')
        self.stderr = open(self.log, 'wb')
        self.proc = subprocess.Popen(
            ovs_fixture.command([sys.executable, '-m',
                                 'tests.functional.network.guest_host',
                                 HELPER]),
            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True)
        self.test = test
        test.addCleanup(self.stop)

    def call(self, op, **values):
        values['op'] = op
        self.proc.stdin.write(json.dumps(values) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError('guest_host exited (%s); see its log'
                                 % self.proc.poll())
        reply = json.loads(line)
        if 'error' in reply:
            raise AssertionError('guest_host %s failed:\n%s'
                                 % (op, reply['error']))
        return reply

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({'op': 'quit'}) + '\n')
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                ovs._stop(self.proc.pid)
                self.proc.wait()
        if not self.stderr.closed:
            self.stderr.close()
            with open(self.log, errors='replace') as handle:
                self.test.addDetail('guest-host-log', content.text_content(
                    handle.read()[-20000:]))


class GuestOnOvsTest(testtools.TestCase):

    def setUp(self):
        super(GuestOnOvsTest, self).setUp()
        if not os.access(QEMU, os.X_OK):
            self.skipTest('%s is missing: no QEMU to boot a guest' % QEMU)
        reason = dhcp.missing_capability()
        if reason:
            self.skipTest(reason)
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.held = {}
        self.machine_before = self.machine_state()
        # Runs last, after every fixture's cleanup.
        self.addCleanup(self.assertNoProcessLeft)
        self.ovs = self.useFixture(ovs.OvsFixture())
        self.links_before = self.ovs.links()
        self.pids_before = sorted(self.ovs.namespace_pids())
        self.dhcp = self.useFixture(dhcp.DhcpFixture(
            self.ovs, CIDR, [(support.MAC, FIXED_IP),
                             (SECOND_PORT['address'], SECOND_IP)],
            gateway=GATEWAY))
        # The namespaces the test made: none may outlive it.
        self.namespaces = [net_namespace(self.ovs.pid),
                           net_namespace(self.dhcp.holder_pid)]
        self.addCleanup(lambda: self.addDetail(
            'dnsmasq-log', content.text_content(self.dhcp.log())))
        self.dhcp_ports = self.ovs.ports()
        self.dhcp_links = self.ovs.links()
        self.host = GuestHost(self, self.ovs)

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
        self.assertEqual(HTTP_TEXT + '\n',
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
                if link.startswith(PLUG_DEVICES) and
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
        # Only the DHCP agent's port stays on the switch.
        self.assertEqual(self.dhcp_ports, self.ovs.ports())
        self.assertEqual({}, self.ovs.iface_ids())
        self.assertEqual(self.dhcp_links, self.ovs.links())
        for link in self.ovs.links():
            self.assertFalse(link.startswith(('tap', 'qbr', 'qvb', 'qvo')),
                             link)
        # QEMU is gone; the host process and its privsep daemons remain
        # until the host stops.
        running = processes()
        for pid in self.ovs.namespace_pids():
            self.assertNotIn(b'qemu-system', running.get(pid, b''))
        self.host.stop()
        deadline = time.monotonic() + 15
        while (sorted(self.ovs.namespace_pids()) != self.pids_before and
               time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(self.pids_before, sorted(self.ovs.namespace_pids()))

    def assertNoProcessLeft(self):
        # Runs after the fixtures' cleanups: every process started for the
        # test (OVS daemons, dnsmasq, namespace holders, QEMU, privsep) is
        # gone, and so are the namespaces they held.
        dirs = [fx.dir for fx in [getattr(self, 'dhcp', None)] if fx] + [
            fx.run_dir for fx in [getattr(self, 'ovs', None)] if fx]
        running = processes()
        left = ['%d: %s' % (pid, cmdline.decode(errors='replace'))
                for pid, cmdline in self.held.items()
                if running.get(pid) == cmdline]
        self.assertEqual([], left)
        for path in dirs:
            self.assertFalse(os.path.exists(path), path)
        # No process on the machine is still in a namespace of the test
        # (so the namespaces are gone), and the machine's devices, named
        # namespaces and this test's child processes are as before.
        namespaces = [ns for ns in getattr(self, 'namespaces', []) if ns]
        in_them = ['%d: %s' % (pid, cmdline.decode(errors='replace'))
                   for pid, cmdline in running.items()
                   if net_namespace(pid) in namespaces]
        self.assertEqual([], in_them)
        self.assertEqual(self.machine_before, self.machine_state())

    def machine_state(self):
        return {'devices': machine_plug_devices(),
                'named_namespaces': named_namespaces(),
                'child_processes': descendants(os.getpid())}

    def remember_processes(self):
        """Note every process of the test's namespaces (QEMU included)."""
        running = processes()
        for pid in self.ovs.namespace_pids() + self.dhcp.namespace_pids():
            if pid in running:
                self.held[pid] = running[pid]
        self.assertTrue(any(b'qemu-system' in cmd
                            for cmd in self.held.values()), self.held)

    def test_guest_gets_fixed_ip_by_dhcp_and_answers(self):
        self.check_guest_on_the_network(hybrid=False)

    def test_hybrid_plug_guest_gets_fixed_ip_and_answers(self):
        self.check_guest_on_the_network(hybrid=True)
