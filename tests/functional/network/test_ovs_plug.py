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

"""Ports plugged by the driver's network code into a real Open vSwitch.

:class:`~tests.fixtures.ovs.OvsFixture` runs a private ovsdb-server and
ovs-vswitchd (userspace datapath) in their own mount and network
namespaces; the network code runs there too, in a child process
(:mod:`plug_ports`), through os-vif and privsep as on a compute host.
Each test plugs a port, finds it on ``br-int`` by its
``external_ids:iface-id`` (and the hybrid plug's ``qbr``/``qvb``/``qvo``
devices), unplugs it and checks that nothing is left: no OVS port, no
device, no process but the two OVS daemons.
"""

import os
import subprocess
import sys
import time

import fixtures
from oslo_serialization import jsonutils
import testtools

from tests import design_support as support
from tests.fixtures import ovs
from tests.functional.network import plug_ports

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
HELPER = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
INSTANCE_UUID = support.UUID
PORT_ID = support.PORT_ID
SHORT = PORT_ID[:11]           # the part of the id in device names


def netdev_port(vif_type, hybrid=False):
    # Bound as the OVS agent of a userspace-datapath host binds it.
    return support.vif(vif_type, hybrid=hybrid, datapath_type='netdev')


def wait_until(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


class OvsPlugTest(testtools.TestCase):

    def setUp(self):
        super(OvsPlugTest, self).setUp()
        self.ovs = self.useFixture(ovs.OvsFixture())
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.config = os.path.join(self.tmp, 'nova.conf')
        with open(self.config, 'w') as handle:
            handle.write(plug_ports.CONFIG % {'helper': HELPER})
        self.links_before = self.ovs.links()
        self.pids_before = sorted(self.ovs.namespace_pids())

    def run_ports(self, action, network_info):
        path = os.path.join(self.tmp, 'network_info.json')
        with open(path, 'w') as handle:
            jsonutils.dump(network_info, handle)
        env = dict(os.environ, PYTHONPATH=REPO)
        result = subprocess.run(
            self.ovs.command([sys.executable, '-m',
                              'tests.functional.network.plug_ports',
                              self.config, action, path, INSTANCE_UUID]),
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        self.addDetail('%s-output' % action, testtools.content.text_content(
            result.stdout[-3000:] + result.stderr[-6000:]))
        self.assertEqual(0, result.returncode, result.stderr[-3000:])
        self.assertIn('done', result.stdout)

    def assertNothingLeft(self):
        self.assertEqual([], self.ovs.ports())
        self.assertEqual({}, self.ovs.iface_ids())
        self.assertEqual(self.links_before, self.ovs.links())
        # The privsep daemons end with the process that started them (once
        # they notice their socket closed).
        wait_until(lambda: sorted(self.ovs.namespace_pids()) ==
                   self.pids_before)
        self.assertEqual(self.pids_before,
                         sorted(self.ovs.namespace_pids()))

    def test_direct_plug_puts_the_port_on_br_int(self):
        port = netdev_port('ovs')
        self.run_ports('plug', [port])

        ports = self.ovs.ports()
        self.assertEqual([port['devname']], ports)
        self.assertEqual({port['devname']: PORT_ID}, self.ovs.iface_ids())
        external = self.ovs.vsctl('get', 'Interface', port['devname'],
                                  'external_ids')
        self.assertIn('"%s"' % port['address'], external)
        self.assertIn('"%s"' % INSTANCE_UUID, external)

        self.run_ports('unplug', [port])
        self.assertNothingLeft()

    def test_hybrid_plug_builds_qbr_qvb_qvo(self):
        port = netdev_port('ovs', hybrid=True)
        self.run_ports('plug', [port])

        qbr, qvb, qvo = ('qbr' + SHORT, 'qvb' + SHORT, 'qvo' + SHORT)
        self.assertEqual([qvo], self.ovs.ports())
        self.assertEqual({qvo: PORT_ID}, self.ovs.iface_ids())
        links = self.ovs.links()
        for device in (qbr, qvb, qvo):
            self.assertIn(device, links)
        master = subprocess.run(
            self.ovs.command([ovs.IP, '-json', 'link', 'show', qvb]),
            capture_output=True, text=True, check=True)
        self.assertEqual(qbr, jsonutils.loads(master.stdout)[0].get('master'))

        self.run_ports('unplug', [port])
        self.assertNothingLeft()

    def test_tap_port_device_created_and_removed(self):
        port = support.vif('tap', details={})
        self.run_ports('plug', [port])
        self.assertIn(port['devname'], self.ovs.links())
        self.assertEqual([], self.ovs.ports())

        self.run_ports('unplug', [port])
        self.assertNothingLeft()

    def test_unsupported_port_plugs_nothing(self):
        ports = [netdev_port('ovs'),
                 support.vif('vhostuser',
                             id='c0000000-0000-4000-8000-000000000009')]
        path = os.path.join(self.tmp, 'network_info.json')
        with open(path, 'w') as handle:
            jsonutils.dump(ports, handle)
        result = subprocess.run(
            self.ovs.command([sys.executable, '-m',
                              'tests.functional.network.plug_ports',
                              self.config, 'plug', path, INSTANCE_UUID]),
            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
            capture_output=True, text=True, timeout=120)
        self.assertNotEqual(0, result.returncode)
        self.assertIn('c0000000-0000-4000-8000-000000000009', result.stderr)
        self.assertIn('vhostuser', result.stderr)
        self.assertNothingLeft()
