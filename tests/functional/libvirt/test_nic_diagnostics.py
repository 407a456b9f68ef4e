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

"""NIC counters through the real libvirt API (the test driver).

libvirt's test driver runs no guest, but its default domain has a NIC
whose ``virDomainInterfaceStats`` answers like a real one; each
connection to ``test:///default`` has its own private state.
"""

import libvirt
from oslotest import base

from nova_pyvirt.hypervisor import guest as guest_mod


class TestDriverNicDiagnosticsTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.conn = libvirt.open('test:///default')
        self.addCleanup(self.conn.close)
        self.guest = guest_mod.Guest(self.conn.lookupByName('test'))

    def test_instance_diagnostics_show_the_nic_and_its_traffic(self):
        [nic] = self.guest.definition().interfaces
        diags = self.guest.diagnostics(virt_type='test')

        self.assertEqual(1, diags.num_nics)
        [reported] = diags.nic_details
        self.assertEqual(nic.mac_address, reported.mac_address)
        self.assertGreater(reported.rx_octets, 0)
        self.assertGreater(reported.tx_octets, 0)
        self.assertGreater(reported.rx_packets, 0)
        self.assertGreater(reported.tx_packets, 0)

    def test_legacy_diagnostics_name_the_target_device(self):
        [nic] = self.guest.definition().interfaces
        legacy = self.guest.legacy_diagnostics()
        self.assertGreater(legacy[nic.target_dev + '_rx'], 0)
        self.assertGreater(legacy[nic.target_dev + '_tx'], 0)

    def test_unknown_device_has_no_counters(self):
        self.assertEqual({}, self.guest.interface_stats('nosuchdev0'))
