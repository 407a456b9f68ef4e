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

"""Diagnostics report each NIC's MAC and counters (a fake domain)."""

import libvirt
from oslotest import base

from nova_pyvirt.hypervisor import guest as guest_mod
from tests.unit import virt_fakes

UUID = 'c0000000-0000-4000-8000-000000000001'
NICS = """<interface type='bridge'>
      <mac address='fa:16:3e:00:00:01'/><source bridge='br-int'/>
      <target dev='tap1'/><model type='virtio'/></interface>
    <interface type='bridge'>
      <mac address='fa:16:3e:00:00:02'/><source bridge='qbr2'/>
      <target dev='tap2'/></interface>
    <interface type='user'><mac address='fa:16:3e:00:00:03'/></interface>"""
STATS = {'tap1': (1000, 10, 0, 1, 2000, 20, 0, 0),
         'tap2': (5, 1, -1, -1, 7, 1, -1, -1)}


class StatsDomain(virt_fakes.FakeDomain):

    def __init__(self):
        super().__init__(UUID, active=True)
        self.devices = [NICS]
        self.gone = set()

    def info(self):
        return [libvirt.VIR_DOMAIN_RUNNING, 262144, 131072, 1, 0]

    def vcpus(self):
        return [[(0, 1, 5000, 0)], [(True,)]]

    def blockStats(self, dev):
        return (1, 512, 2, 1024, 0)

    def memoryStats(self):
        return {'actual': 131072}

    def interfaceStats(self, dev):
        if dev in self.gone:
            raise virt_fakes.libvirt_error(
                "'%s' is not a known interface" % dev,
                libvirt.VIR_ERR_INVALID_ARG)
        return STATS[dev]


class NicDiagnosticsTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.domain = StatsDomain()
        self.guest = guest_mod.Guest(self.domain)

    def test_instance_diagnostics_report_each_nic(self):
        diags = self.guest.diagnostics(virt_type='qemu')

        self.assertEqual(3, diags.num_nics)
        first, second, third = diags.nic_details
        self.assertEqual('fa:16:3e:00:00:01', first.mac_address)
        self.assertEqual((1000, 10, 0, 1, 2000, 20, 0, 0),
                         (first.rx_octets, first.rx_packets,
                          first.rx_errors, first.rx_drop, first.tx_octets,
                          first.tx_packets, first.tx_errors,
                          first.tx_drop))
        # -1 (a counter the device does not keep) reads as 0.
        self.assertEqual((5, 0, 0, 7, 0), (
            second.rx_octets, second.rx_errors, second.rx_drop,
            second.tx_octets, second.tx_drop))
        # No host device: the MAC, no counters.
        self.assertEqual('fa:16:3e:00:00:03', third.mac_address)
        self.assertIsNone(third.rx_octets)

    def test_nic_detached_meanwhile_reports_its_mac(self):
        self.domain.gone.add('tap2')
        diags = self.guest.diagnostics()
        self.assertEqual('fa:16:3e:00:00:02',
                         diags.nic_details[1].mac_address)
        self.assertIsNone(diags.nic_details[1].rx_octets)
        self.assertEqual(1000, diags.nic_details[0].rx_octets)

    def test_legacy_diagnostics_name_counters_by_device(self):
        legacy = self.guest.legacy_diagnostics()
        self.assertEqual(1000, legacy['tap1_rx'])
        self.assertEqual(2000, legacy['tap1_tx'])
        self.assertEqual(10, legacy['tap1_rx_packets'])
        self.assertEqual(1, legacy['tap1_rx_drop'])
        self.assertEqual(0, legacy['tap2_rx_errors'])

    def test_stopped_guest_has_no_counters(self):
        self.domain.active = False
        diags = self.guest.diagnostics()
        self.assertEqual(0, len(diags.nic_details))
        self.assertEqual({}, self.guest.legacy_diagnostics())
