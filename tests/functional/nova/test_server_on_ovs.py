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

"""A server on a Neutron network, through nova's API, on a real OVS.

nova's API, conductor, scheduler, placement and a ``PyVirtDriver`` compute
service (nova's functional harness, :mod:`base`) boot a server on a port of
nova's ``NeutronFixture``, bound as ML2/OVS binds it (``vif_type`` ovs,
``port_filter``, ``datapath_type`` netdev; ``ovs_hybrid_plug`` False, or
True in the hybrid test, where the tap sits in a ``qbr`` bridge joined to
``br-int`` by ``qvb``/``qvo``) and reported DOWN, so nova waits for
``network-vif-plugged``. The guest is the
test guest under real QEMU (TCG) on the real embedded libvirt; its port is
plugged by os-vif into ``br-int`` of a real ``ovs-vswitchd``
(:class:`~tests.fixtures.ovs.OvsFixture`, userspace datapath).

:class:`OvsAgent` plays Neutron's OVS agent for the host: once an
interface with the port's ``external_ids:iface-id`` is on ``br-int`` with
an OpenFlow port, it sends ``network-vif-plugged`` through nova's external
events API (``POST /os-server-external-events``, as admin), after noting
the server's status then (it must not be ACTIVE yet). Neutron's DHCP agent
is :class:`~tests.fixtures.dhcp.DhcpFixture` (dnsmasq in its own namespace
on ``br-int``, serving the port's fixed IP to its MAC only). The guest
prints the address it got; the test reaches the guest's HTTP server and
ICMP echo from the DHCP namespace at the address nova's API reports for the
server, deletes the server through the API and checks that nothing is
left. Another test attaches a second port of the network to the running
server (``POST /servers/{id}/os-interface``; nova binds the port, the
driver plugs it and hot-plugs its NIC): the API lists it, the port is on
``br-int``, libvirt has the NIC live and persistent, the guest reports a
new NIC with the port's MAC that got the port's fixed IP by DHCP and
answers there, and the agent's ``network-vif-plugged`` for it finds the
server ACTIVE (nova does not wait for it on attach). It then detaches it
(``DELETE /servers/{id}/os-interface/{port}``, done in the background):
once the API stops listing the port, the guest has reported the NIC gone,
libvirt has it neither live nor persistent, the port and its tap are off
``br-int``, the address no longer answers, nova left the port unbound
(it did not create it) and the first port still works. A further test
keeps the agent silent: the spawn times out (``vif_plugging_timeout``,
fatal), the server goes to ERROR with a fault naming the port, and
nothing is left on ``br-int`` or in libvirt.

**Why nova runs in a child process.** The code under test (the driver, the
embedded libvirt it opens in its own process, QEMU, ``ovs-vsctl`` run by
libvirt and os-vif, os-vif's privsep daemon) must see the OVS fixture's
``/run/openvswitch`` (a private mount namespace) and make its tap devices
in the fixture's private network namespace. nova's harness runs the
compute service in the process that runs the test, over in-process RPC and
an in-process (wsgi-intercept) API, so the whole stack has to be in one
process that is in those namespaces. A process joins a mount namespace
with ``setns`` only while it has a single thread, and the test process
already has many (libvirt's event loop, oslo.messaging, earlier tests'
services); switching only some threads' network namespace would leave the
others, and the processes they start, outside. So the stack runs in a
child started with ``nsenter`` (:mod:`ovs_compute_host`, the
:mod:`tests.functional.network.guest_host` pattern), and the test drives
nova's API through it over a JSON-lines pipe; the fixtures, the agent and
the checks stay in the test process, outside, where they look at OVS by
its socket's real path and at the namespaces with ``nsenter``.
"""

import os
import threading
import time

import fixtures
import libvirt
from oslo_serialization import jsonutils
from testtools import content

from tests.fixtures import nova_harness
from tests.functional.network import ovs_world
from tests import guest_console
from tests import guest_login

# NeutronFixture's network_1 ('private') and its IPv4 subnet.
CIDR = '192.168.1.0/24'
GATEWAY = '192.168.1.1'
FIXED_IP = '192.168.1.50'
PORT_ID = '3b1f6d2e-9a47-4c5b-8e6f-0d1c2b3a4f59'
MAC = 'fa:16:3e:3b:1f:6d'
TAP = ('tap' + PORT_ID)[:14]
# The port attached to the running server through os-interface.
SECOND_PORT_ID = '8e4a2c71-5d3b-4f90-a6e2-7b1c9d0e3f42'
SECOND_MAC = 'fa:16:3e:8e:4a:2c'
SECOND_IP = '192.168.1.51'
SECOND_TAP = ('tap' + SECOND_PORT_ID)[:14]
#: The compute service of ovs_compute_host.
COMPUTE = 'compute'
#: binding:vif_details as ML2/OVS sets them for a netdev datapath host.
VIF_DETAILS = {'port_filter': True, 'ovs_hybrid_plug': False,
               'datapath_type': 'netdev', 'bridge_name': 'br-int',
               'connectivity': 'l2'}
TIMEOUT = int(os.environ.get('PYVIRT_GUEST_BOOT_TIMEOUT', '180'))
STATUS_TIMEOUT = int(os.environ.get('PYVIRT_NOVA_STATUS_TIMEOUT', '240'))
#: The silent-agent test's [DEFAULT] vif_plugging_timeout.
SHORT_TIMEOUT = 5


class NovaHost(ovs_world.NamespaceHost):
    """:mod:`ovs_compute_host` (or ``module``) in the switch's namespaces."""

    def __init__(self, test, ovs_fixture,
                 module='tests.functional.nova.ovs_compute_host', args=()):
        # The guest image is built (its packages downloaded) here: in the
        # switch's network namespace there is no route to the package
        # archive.
        nova_harness.guest_image_dir()
        super(NovaHost, self).__init__(
            test, ovs_fixture, module, stop_timeout=180, log_tail=30000,
            args=args)

    def api(self, method, url, body=None, admin=False):
        return self.call('api', method=method, url=url, body=body,
                         admin=admin)

    def server(self, uuid):
        reply = self.api('GET', '/servers/%s' % uuid)
        if reply['status'] == 404:
            return None
        return reply['body']['server']


def iface_ofports(ovs_fixture):
    """``{iface-id: ofport}`` of the interfaces wired on the switch."""
    out = ovs_fixture.vsctl('--format=json', '--columns=ofport,external_ids',
                            'list', 'Interface')
    found = {}
    for ofport, ids in jsonutils.loads(out)['data']:
        external = dict(ids[1])
        if 'iface-id' in external and isinstance(ofport, int) and ofport > 0:
            found[external['iface-id']] = ofport
    return found


class OvsAgent(fixtures.Fixture):
    """Neutron's OVS agent (and its server) for the compute hosts.

    ``switches`` maps the name of each compute host to its switch (an
    :class:`~tests.fixtures.ovs.OvsFixture`); ``host`` is the
    :class:`NovaHost` whose API it reports to. On each switch it watches
    ``br-int``: whenever an interface with the ``iface-id`` of a port in
    ``ports`` is there with an OpenFlow port and was not at the last look,
    it sends ``network-vif-plugged`` for the server the port is bound to
    (its ``device_id``) through nova's external events API. A port that
    leaves a switch and comes back is reported again, as the agent of a
    host reports a device plugged there again (after a migration, a
    revert). ``sent`` records ``(host, server, port, server status, domain
    state on that host)`` as they were just before each event. With
    ``silent`` it only records ``(host, port)`` in ``seen``.

    ``delay`` seconds pass between seeing a port and reporting it (as a
    busy agent takes its time): a guest started without waiting for the
    event is running by then, one that waits is still paused.
    """

    def __init__(self, switches, host, ports, silent=False, delay=0):
        super(OvsAgent, self).__init__()
        self.switches = dict(switches)
        self.host = host
        self.ports = list(ports)
        self.silent = silent
        self.delay = delay

    def _setUp(self):
        self.sent = []
        self.seen = []
        self.errors = []
        self._wired = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.addCleanup(self._thread.join, 30)
        self.addCleanup(self._stop.set)

    def _run(self):
        while not self._stop.wait(0.2):
            try:
                self._poll()
            except Exception as exc:   # reported by the test
                self.errors.append(repr(exc))
                return

    def _poll(self):
        for compute, switch in sorted(self.switches.items()):
            wired = iface_ofports(switch)
            for port_id in self.ports:
                key = (compute, port_id)
                if port_id not in wired:
                    self._wired.discard(key)
                    continue
                if key in self._wired:
                    continue
                self._wired.add(key)
                self.seen.append(key)
                if self.silent or self._stop.wait(self.delay):
                    continue
                self._report(compute, port_id)

    def _report(self, compute, port_id):
        server_id = self.host.call('port', id=port_id)['port']['device_id']
        status = self.host.server(server_id)['status']
        state = self.host.call('domain_state', uuid=server_id,
                               host=compute)['state']
        self.sent.append((compute, server_id, port_id, status, state))
        reply = self.host.api(
            'POST', '/os-server-external-events', admin=True,
            body={'events': [{'name': 'network-vif-plugged',
                              'server_uuid': server_id,
                              'tag': port_id,
                              'status': 'completed'}]})
        if reply['status'] != 200:
            self.errors.append('external event: %s' % reply)


class NovaOnOvsSteps(object):
    """Waits and checks through nova's API of :class:`NovaHost`.

    The test's ``self.host`` is the :class:`NovaHost`, ``self.dhcp`` the
    DHCP agent.
    """

    def wait_for_status(self, server, status, timeout=STATUS_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            found = self.host.server(server['id'])
            if found['status'] == status:
                return found
            if found['status'] == 'ERROR':
                self.fail('server %s went to ERROR instead of %s: %s' % (
                    server['id'], status, found.get('fault')))
            if time.monotonic() > deadline:
                self.fail('server %s not %s within %d s: %s' % (
                    server['id'], status, timeout, found))
            time.sleep(0.5)

    def console(self, server):
        return self.host.api(
            'POST', '/servers/%s/action' % server['id'],
            body={'os-getConsoleOutput': {}})['body']['output']

    def wait_for_console(self, server, read, what):
        """The first non-empty ``read(console)``, through nova's API."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            output = self.console(server)
            found = read(output)
            if found:
                return found
            if time.monotonic() > deadline:
                self.addDetail('console', content.text_content(output))
                self.fail('no %s within %d s' % (what, TIMEOUT))
            time.sleep(0.5)

    def wait_for_nics(self, server, after=None):
        """The guest's PYVIRT-NET reports, once it printed one.

        With ``after``, only what follows the last ``after`` line counts
        (when the console log holds an earlier boot too).
        """
        def read(text):
            if after is not None and after in text:
                text = text[text.rfind(after):]
            return guest_console.nic_reports(text)
        return self.wait_for_console(server, read, 'PYVIRT-NET line')

    def wait_until(self, predicate, timeout, what, details=None):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                if details:
                    self.addDetail('state', content.text_content(
                        jsonutils.dumps(details(), indent=1, default=str)))
                self.fail('%s not within %d s' % (what, timeout))
            time.sleep(0.5)

    def interfaces(self, server):
        """``{port: mac}`` of the server's interfaces, as the API lists."""
        reply = self.host.api('GET', '/servers/%s/os-interface' %
                              server['id'])
        self.assertEqual(200, reply['status'], reply)
        return {a['port_id']: a['mac_addr']
                for a in reply['body']['interfaceAttachments']}

    def addresses(self, server):
        """The server's IPv4 addresses, as nova's API reports them."""
        found = self.host.server(server['id'])
        return sorted(a['addr'] for net in found['addresses'].values()
                      for a in net if a['version'] == 4)

    def assertAnswers(self, address):
        """The guest's HTTP string and ICMP echo, from the DHCP namespace."""
        self.assertEqual(ovs_world.HTTP_TEXT + '\n',
                         self.dhcp.fetch('http://%s/' % address))
        self.assertTrue(self.dhcp.ping(address))

    def import_keypair(self, name, key):
        """``POST /os-keypairs`` of the public half of ``key``."""
        reply = self.host.api('POST', '/os-keypairs', body={'keypair': {
            'name': name, 'public_key': guest_login.public_key(key)}})
        self.assertIn(reply['status'], (200, 201), reply)

    def login(self, server, key, marker):
        """``(hostname, marker, meta_data)`` read over SSH with ``key``.

        Tried until the guest's user data has written ``marker``.
        """
        address = self.addresses(server)[0]
        deadline = time.monotonic() + TIMEOUT
        while True:
            result = self.dhcp.ssh(key, address, guest_login.LOGIN_COMMAND)
            lines = result.stdout.split('\n', 2)
            if result.returncode == 0 and lines[1] == marker:
                return lines[0], lines[1], jsonutils.loads(lines[2])
            if time.monotonic() > deadline:
                self.addDetail('console', content.text_content(
                    self.console(server)))
                self.fail('no login to %s finding marker %s within %d s: '
                          'exit %d, %s %s' % (address, marker, TIMEOUT,
                                              result.returncode,
                                              result.stdout, result.stderr))
            time.sleep(1)

    def delete(self, server):
        self.host.api('DELETE', '/servers/%s' % server['id'])
        deadline = time.monotonic() + STATUS_TIMEOUT
        while self.host.server(server['id']) is not None:
            if time.monotonic() > deadline:
                self.fail('server %s not gone within %d s' % (
                    server['id'], STATUS_TIMEOUT))
            time.sleep(0.5)


class ServerOnOvsTest(NovaOnOvsSteps, ovs_world.OvsWorldTest):

    CIDR = CIDR
    GATEWAY = GATEWAY
    LEASES = ((MAC, FIXED_IP), (SECOND_MAC, SECOND_IP))

    def setUp(self):
        super(ServerOnOvsTest, self).setUp()
        self.host = NovaHost(self, self.ovs)

    def start(self, vif_plugging_timeout, silent=False, hybrid=False,
              watched=(PORT_ID,)):
        """Boot the server on ``PORT_ID``; the agent watches ``watched``."""
        self.host.call('configure',
                       vif_plugging_timeout=vif_plugging_timeout,
                       vif_plugging_is_fatal=True)
        self.host.call('create_port', id=PORT_ID, mac=MAC, ip=FIXED_IP,
                       details=dict(VIF_DETAILS, ovs_hybrid_plug=hybrid))
        self.agent = self.useFixture(OvsAgent({COMPUTE: self.ovs},
                                              self.host, watched,
                                              silent=silent))
        return self.host.call('boot', port_id=PORT_ID)['server']

    def check_server_on_the_network(self, hybrid):
        server = self.start(vif_plugging_timeout=300, hybrid=hybrid)
        server = self.wait_for_status(server, 'ACTIVE')
        self.assertEqual([], self.agent.errors)

        # The agent saw the port on br-int and reported it while the server
        # was still building and its guest held paused; only then did the
        # server go ACTIVE.
        self.assertEqual([(COMPUTE, server['id'], PORT_ID, 'BUILD',
                           libvirt.VIR_DOMAIN_PAUSED)], self.agent.sent)
        # Hybrid plug: the tap sits in qbr, joined to br-int by qvb/qvo.
        on_switch = ('qvo' + PORT_ID[:11]) if hybrid else TAP
        self.assertEqual({on_switch: PORT_ID}, self.ovs.iface_ids())
        if hybrid:
            self.assertTrue({'qbr' + PORT_ID[:11], 'qvb' + PORT_ID[:11],
                             TAP}.issubset(self.ovs.links()),
                            self.ovs.links())
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.host.call(
            'domain_state', uuid=server['id'])['state'])

        # The guest got the port's fixed IP from the DHCP agent ...
        nics = self.wait_for_nics(server)
        self.addDetail('dhcp-leases', content.text_content(
            self.dhcp.leases()))
        self.assertEqual([('eth0', MAC, None, FIXED_IP + '/24')], nics)
        # ... which is the address nova reports for the server, and it
        # answers there from the DHCP namespace.
        addresses = [a['addr'] for net in server['addresses'].values()
                     for a in net if a['version'] == 4]
        self.assertEqual([FIXED_IP], addresses)
        self.assertAnswers(addresses[0])

        self.remember_processes()
        self.delete(server)
        self.assertNothingLeft()

    def test_server_gets_its_fixed_ip_once_the_agent_reports_the_port(self):
        self.check_server_on_the_network(hybrid=False)

    def test_hybrid_plugged_server_gets_its_fixed_ip(self):
        self.check_server_on_the_network(hybrid=True)

    def test_interface_attached_and_detached_through_the_api(self):
        server = self.start(vif_plugging_timeout=300,
                            watched=(PORT_ID, SECOND_PORT_ID))
        server = self.wait_for_status(server, 'ACTIVE')
        self.assertEqual([('eth0', MAC, None, FIXED_IP + '/24')],
                         self.wait_for_nics(server))
        self.host.call('create_port', id=SECOND_PORT_ID, mac=SECOND_MAC,
                       ip=SECOND_IP, details=VIF_DETAILS)

        # Attach: nova binds the port to the server and the host, then the
        # driver plugs it and adds its NIC; the call returns once it did.
        reply = self.host.api(
            'POST', '/servers/%s/os-interface' % server['id'],
            body={'interfaceAttachment': {'port_id': SECOND_PORT_ID}})
        self.assertEqual(200, reply['status'], reply)
        attachment = reply['body']['interfaceAttachment']
        self.assertEqual((SECOND_PORT_ID, SECOND_MAC),
                         (attachment['port_id'], attachment['mac_addr']))
        self.assertEqual({PORT_ID: MAC, SECOND_PORT_ID: SECOND_MAC},
                         self.interfaces(server))
        self.assertEqual(sorted([FIXED_IP, SECOND_IP]),
                         self.addresses(server))
        self.assertEqual({TAP: PORT_ID, SECOND_TAP: SECOND_PORT_ID},
                         self.ovs.iface_ids())
        self.assertEqual({'live': [MAC, SECOND_MAC],
                          'persistent': [MAC, SECOND_MAC]},
                         self.host.call('domain_macs', uuid=server['id']))

        # The guest saw a new NIC with the port's MAC, which got the port's
        # fixed IP from the DHCP agent, and answers there.
        added = self.wait_for_console(
            server, lambda text: [nic for nic in
                                  guest_console.nic_reports(text)
                                  if nic[2] == 'added'],
            'PYVIRT-NET event=added line')
        self.addDetail('dhcp-leases-attached', content.text_content(
            self.dhcp.leases()))
        [(nic_name, nic_mac, _event, nic_addr)] = added
        self.assertEqual((SECOND_MAC, SECOND_IP + '/24'),
                         (nic_mac, nic_addr))
        self.assertAnswers(SECOND_IP)
        # The agent reported the new port too; nova waits for no event on
        # attach (it logs this one as unexpected), so the server was
        # ACTIVE and its guest running then.
        self.wait_until(
            lambda: any(port_id == SECOND_PORT_ID
                        for _host, _server, port_id, _status, _state
                        in self.agent.sent),
            STATUS_TIMEOUT, 'the agent reporting %s' % SECOND_PORT_ID,
            lambda: {'seen': self.agent.seen, 'sent': self.agent.sent,
                     'errors': self.agent.errors})
        self.assertEqual(
            [(COMPUTE, server['id'], PORT_ID, 'BUILD',
              libvirt.VIR_DOMAIN_PAUSED),
             (COMPUTE, server['id'], SECOND_PORT_ID, 'ACTIVE',
              libvirt.VIR_DOMAIN_RUNNING)], self.agent.sent)
        self.assertEqual([], self.agent.errors)

        # Detach: accepted, done in the background; the API stops listing
        # the port once nova released it (after the driver's detach).
        reply = self.host.api('DELETE', '/servers/%s/os-interface/%s' % (
            server['id'], SECOND_PORT_ID))
        self.assertEqual(202, reply['status'], reply)
        self.wait_until(
            lambda: (self.interfaces(server) == {PORT_ID: MAC} and
                     self.addresses(server) == [FIXED_IP]),
            STATUS_TIMEOUT, 'port %s detached' % SECOND_PORT_ID,
            lambda: {'interfaces': self.interfaces(server),
                     'server': self.host.server(server['id']),
                     'actions': self.host.api(
                         'GET', '/servers/%s/os-instance-actions' %
                         server['id'])['body']})
        # The guest saw that NIC go ...
        self.assertEqual([nic_name], self.wait_for_console(
            server, guest_console.nic_removed_reports,
            'PYVIRT-NET event=removed line'))
        # ... libvirt has it neither live nor in the definition, the port
        # is off br-int and its tap is gone ...
        self.assertEqual({'live': [MAC], 'persistent': [MAC]},
                         self.host.call('domain_macs', uuid=server['id']))
        self.assertEqual({TAP: PORT_ID}, self.ovs.iface_ids())
        self.assertEqual(sorted(self.dhcp_ports + [TAP]),
                         sorted(self.ovs.ports()))
        self.assertNotIn(SECOND_TAP, self.ovs.links())
        # ... and nova gave the port back unbound, not deleted: the user
        # made it.
        port = self.host.call('port', id=SECOND_PORT_ID)['port']
        self.assertEqual('', port['device_id'])
        # The address went with the NIC; the first port still works.
        self.assertFalse(self.dhcp.ping(SECOND_IP, count=1))
        self.assertAnswers(FIXED_IP)

        self.remember_processes()
        self.delete(server)
        self.assertNothingLeft()

    def test_silent_agent_puts_the_server_in_error(self):
        server = self.start(vif_plugging_timeout=SHORT_TIMEOUT, silent=True)
        deadline = time.monotonic() + STATUS_TIMEOUT
        while True:
            found = self.host.server(server['id'])
            self.assertNotEqual('ACTIVE', found['status'])
            if found['status'] == 'ERROR':
                break
            if time.monotonic() > deadline:
                self.fail('server not ERROR within %d s: %s' % (
                    STATUS_TIMEOUT, found))
            time.sleep(0.5)
        self.addDetail('fault', content.text_content(str(found['fault'])))
        # The port was wired (the agent saw it) but never reported.
        self.assertEqual([(COMPUTE, PORT_ID)], self.agent.seen)
        self.assertEqual([], self.agent.sent)
        # The driver's message: nova kept it (not rescheduled).
        self.assertEqual(
            'Neutron did not report port(s) %s of instance %s plugged '
            'within %d s ([DEFAULT] vif_plugging_timeout)' % (
                PORT_ID, server['id'], SHORT_TIMEOUT),
            found['fault']['message'])
        # Nothing is left on br-int or in libvirt.
        self.assertEqual(self.dhcp_ports, self.ovs.ports())
        self.assertEqual({}, self.ovs.iface_ids())
        self.assertEqual([], self.host.call('domains')['uuids'])
        self.assertEqual(self.dhcp_links, self.ovs.links())

        self.delete(found)
        self.assertNothingLeft()

    # -- what is left -----------------------------------------------------

    def assertNothingLeft(self):
        self.assertEqual([], self.agent.errors)
        self.assertEqual([], self.host.call('domains')['uuids'])
        self.assertSwitchEmptyOnceHostStops(self.host)
