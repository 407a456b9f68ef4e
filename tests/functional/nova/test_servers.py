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

"""A server's life through nova's REST API, checked in libvirt and placement.

The guest really boots (QEMU TCG, direct kernel boot of the test guest) and
every power operation is checked against the real domain and the guest's
own console lines.
"""

import os

import libvirt
from oslo_utils import units

from nova.compute import power_state

from tests.functional.nova import base


class ServerLifecycleTest(base.PyVirtTestBase):

    def setUp(self):
        super().setUp()
        self.flavor_id = self._create_guest_flavor()
        self.flavor = self.api.get_flavor(self.flavor_id)

    def _assert_running(self, server, previous_id=None):
        """The domain runs; with ``previous_id``, in a new QEMU process."""
        dom = self._domain(server)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, dom.state()[0])
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        if previous_id is not None:
            self.assertNotEqual(previous_id, dom.ID())
        return dom.ID()

    def test_boot_stop_start_reboot_delete(self):
        server = self._boot_guest(self.flavor_id)
        instance_dir = os.path.join(self.instances_path, server['id'])

        # The domain nova asked for: TCG, the image's kernel, ramdisk and
        # command line, the flavor's memory and vCPUs.
        dom_id = self._assert_running(server)
        doc = self._domain_xml(server)
        self.assertEqual('qemu', doc.get('type'))
        self.assertEqual(server['id'], doc.findtext('uuid'))
        self.assertEqual(os.path.join(instance_dir, 'kernel'),
                         doc.findtext('os/kernel'))
        self.assertEqual(os.path.join(instance_dir, 'ramdisk'),
                         doc.findtext('os/initrd'))
        self.assertEqual('console=ttyS0 quiet', doc.findtext('os/cmdline'))
        self.assertEqual(128 * units.Ki, int(doc.findtext('memory')))
        self.assertEqual(1, int(doc.findtext('vcpu')))
        self.assertTrue(os.path.isdir(instance_dir))

        # The guest booted to the end of its /init, and saw the image's
        # root disk.
        console = self._wait_for_console(server, base.GUEST_READY)
        self.assertIn('marker=PYVIRT-DISK-MARKER root', console)

        # The allocation matches the flavor.
        rp_uuid = self._provider_uuid()
        self.assertFlavorMatchesUsage(rp_uuid, self.flavor)

        # Stop: nova asks for a clean shutdown, the guest sees the ACPI
        # power button, the domain is shut off but still defined.
        server = self._stop_server(server)
        self.assertEqual(power_state.SHUTDOWN,
                         server['OS-EXT-STS:power_state'])
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF,
                         self._domain_state(server))
        self.assertIn(base.GUEST_ACPI_SHUTDOWN, self._console(server))

        # Start: a new QEMU process that boots the guest again.
        server = self._start_server(server)
        dom_id = self._assert_running(server, dom_id)
        self._wait_for_console(server, base.GUEST_READY,
                               after=base.GUEST_ACPI_SHUTDOWN)

        # Soft reboot: ACPI shutdown then start, with no fallback to a hard
        # reboot.
        server = self._reboot_server(server)
        dom_id = self._assert_running(server, dom_id)
        self._wait_for_console(server, base.GUEST_READY,
                               after=base.GUEST_ACPI_SHUTDOWN)
        self.assertNotIn('rebooting it hard', self.stdlog.logger.output)

        # Hard reboot.
        server = self._reboot_server(server, hard=True)
        dom_id = self._assert_running(server, dom_id)
        self._wait_for_console(server, base.GUEST_READY)

        # Delete: no domain, no instance directory, no allocation.
        self._delete_server(server)
        self.assertNoDomain(server)
        self.assertFalse(os.path.exists(instance_dir))
        self.assertEqual({}, self._get_allocations_by_server_uuid(
            server['id']))
        self.assertRequestMatchesUsage(
            {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}, rp_uuid)


class ProviderInventoryTest(base.PyVirtTestBase):

    def test_inventory_is_what_the_driver_reported(self):
        rp_uuid = self._provider_uuid()
        # os-hypervisors (2.53+) names the same compute node.
        hypervisors = self.admin_api.api_get(
            'os-hypervisors?hypervisor_hostname_pattern=%s'
            % self.nodename).body['hypervisors']
        self.assertEqual([rp_uuid], [h['id'] for h in hypervisors])

        # Placement holds exactly what the driver reported, every field.
        reported = self.reported_inventory[self.nodename]
        inventory = self._get_provider_inventory(rp_uuid)
        self.assertEqual({'VCPU', 'MEMORY_MB', 'DISK_GB'}, set(inventory))
        for rc, fields in reported.items():
            for field, value in fields.items():
                self.assertEqual(value, inventory[rc][field],
                                 '%s %s' % (rc, field))

        # And that is the host as libvirt and the filesystem describe it.
        conn = self.driver._host.get_connection()
        _model, memory_mb, cpus = conn.getInfo()[:3]
        stat = os.statvfs(self.instances_path)
        disk_gb = stat.f_frsize * stat.f_blocks // units.Gi
        self.assertEqual(cpus, inventory['VCPU']['total'])
        self.assertEqual(cpus, inventory['VCPU']['max_unit'])
        self.assertEqual(disk_gb, inventory['DISK_GB']['total'])
        self.assertEqual(disk_gb, inventory['DISK_GB']['max_unit'])
        self.assertEqual(inventory['MEMORY_MB']['total'],
                         inventory['MEMORY_MB']['max_unit'])
        # virNodeGetInfo's memory is the NUMA nodes' total, which moves on
        # hosts whose memory is ballooned or hot-plugged: only close here.
        self.assertLess(abs(memory_mb - inventory['MEMORY_MB']['total']),
                        memory_mb * 0.1)

        # nova's defaults: reserved host memory, initial allocation ratios.
        self.assertEqual(512, inventory['MEMORY_MB']['reserved'])
        self.assertEqual(0, inventory['VCPU']['reserved'])
        self.assertEqual(0, inventory['DISK_GB']['reserved'])
        self.assertEqual(4.0, inventory['VCPU']['allocation_ratio'])
        self.assertEqual(1.0, inventory['MEMORY_MB']['allocation_ratio'])
        self.assertEqual(1.0, inventory['DISK_GB']['allocation_ratio'])
