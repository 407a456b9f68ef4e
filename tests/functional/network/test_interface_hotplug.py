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

"""Interface attach and detach on a running QEMU guest, on a real OVS.

The driver runs in :class:`~tests.fixtures.ovs.OvsFixture`'s namespaces
(:mod:`hotplug_guest`), with an embedded QEMU root of its own and the test
guest booted; a direct and a hybrid ML2/OVS port are attached and
detached. The test checks what OVS and libvirt showed at each step, and
that nothing is left: no OVS port, no device, no process.
"""

import os
import subprocess
import sys
import time

import fixtures
from oslo_serialization import jsonutils
import testtools

from tests.fixtures import driver as driver_fixture
from tests.fixtures import ovs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


class InterfaceHotplugTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.ovs = self.useFixture(ovs.OvsFixture())
        self.state = self.useFixture(fixtures.TempDir()).path
        self.links_before = self.ovs.links()
        self.pids_before = sorted(self.ovs.namespace_pids())

    def test_attach_and_detach_direct_and_hybrid_ports(self):
        result = subprocess.run(
            self.ovs.command([sys.executable, '-m',
                              'tests.functional.network.hotplug_guest',
                              driver_fixture.guest_image_dir(),
                              self.state]),
            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
            capture_output=True, text=True, timeout=600)
        self.addDetail('output', testtools.content.text_content(
            result.stdout[-3000:] + result.stderr[-6000:]))
        self.assertEqual(0, result.returncode, result.stderr[-3000:])
        seen = jsonutils.loads(result.stdout.strip().splitlines()[-1])

        direct, hybrid = seen['direct'], seen['hybrid']
        # Direct: the tap itself is on br-int, live and persistent.
        self.assertEqual([direct['devname']], direct['attached']['ports'])
        self.assertEqual({'live': [direct['mac']],
                          'persistent': [direct['mac']]},
                         direct['attached']['nics'])
        self.assertEqual([direct['mac']], direct['attached']['diagnostics'])
        # Hybrid: the qvo end of the veth pair is on br-int.
        self.assertEqual(['qvo' + hybrid['port'][:11]],
                         hybrid['attached']['ports'])
        self.assertEqual([hybrid['mac']],
                         hybrid['attached']['nics']['live'])
        for kind in (direct, hybrid):
            # The guest let go of the NIC; OVS and both definitions lost it.
            self.assertEqual([], kind['detached']['ports'])
            self.assertEqual({'live': [], 'persistent': []},
                             kind['detached']['nics'])
            self.assertLess(kind['detach_seconds'], 60)

        self.assertEqual([], self.ovs.ports())
        self.assertEqual(self.links_before, self.ovs.links())
        deadline = time.monotonic() + 15
        while (sorted(self.ovs.namespace_pids()) != self.pids_before and
               time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(self.pids_before, sorted(self.ovs.namespace_pids()))
