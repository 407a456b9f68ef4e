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

"""A real guest reads its config drive like a cloud image, and takes SSH.

In the world of :mod:`test_guest_on_ovs` (a private OVS, Neutron's DHCP
agent in its own namespace, the driver in the switch's namespaces via
:mod:`guest_host`), the test guest is spawned with one port and asks for
a config drive, which the driver builds from nova's metadata (an SSH key
pair, a ``#!/bin/sh`` user data writing a marker, the port's
``network_data.json``) and attaches. The guest reports each step on its
console; then,
from the DHCP namespace, the test logs in with ``ssh`` and the instance's
key and reads the guest's hostname, the user data's marker and the
instance uuid from the mounted drive's ``meta_data.json``. A key that is
not the instance's is refused.

Two drives: iso9660 on a CD-ROM with a port configured by DHCP, and vfat
on a virtio disk with a port on a subnet without DHCP, whose static
address the guest takes from ``network_data.json``.
"""

import shutil

from oslo_serialization import jsonutils
from oslo_utils import uuidutils
from testtools import content

from nova.network import model as network_model

from tests import design_support as support
from tests.functional.network import test_guest_on_ovs as on_ovs
from tests import guest_console
from tests import guest_login

# A fixed IP the DHCP agent does not serve: the guest can only have it
# from network_data.json.
STATIC_IP = '10.20.0.9'
PREFIX = on_ovs.CIDR.split('/')[1]
# Where the user data writes its marker, inside the guest.
MARKER_FILE = '/root/user-data-marker'
META_DATA = guest_login.META_DATA


def static_port(fixed_ip=STATIC_IP):
    """The port on a subnet without DHCP: nova writes a static address."""
    vif = support.vif('ovs', datapath_type='netdev')
    vif['network']['subnets'] = [network_model.Subnet(
        cidr=on_ovs.CIDR, ips=[network_model.FixedIP(address=fixed_ip)],
        gateway=network_model.IP(address=on_ovs.GATEWAY, type='gateway'))]
    return vif


class ConfigDriveGuestTest(on_ovs.DriverOnOvsTest):

    CIDR = on_ovs.CIDR
    GATEWAY = on_ovs.GATEWAY
    LEASES = ((support.MAC, on_ovs.FIXED_IP),)

    def setUp(self):
        super(ConfigDriveGuestTest, self).setUp()
        for tool in ('genisoimage', 'ssh', 'ssh-keygen'):
            if not shutil.which(tool):
                self.skipTest('%s is missing' % tool)
        self.key = guest_login.make_keypair(self.tmp, 'instance-key')
        self.other_key = guest_login.make_keypair(self.tmp, 'other-key')

    def boot(self, vif, drive_format):
        """Spawn with ``vif`` and a config drive; what the guest reported."""
        self.hostname = 'cfg-%s' % drive_format
        self.marker = uuidutils.generate_uuid()
        with open(self.key + '.pub') as handle:
            key_data = handle.read()
        user_data = '#!/bin/sh\necho %s > %s\n' % (self.marker, MARKER_FILE)
        spawned = self.host.call('spawn', network_info=[vif], config_drive={
            'format': drive_format, 'hostname': self.hostname,
            'key_name': 'instance-key', 'key_data': key_data,
            'user_data': user_data})
        uuid = spawned['uuid']

        def all_steps(text):
            reports = guest_console.config_reports(text)
            drive = reports.get('CONFIG-DRIVE', '')
            finished = 'USERDATA' in reports and 'SSH' in reports
            if finished or drive == 'none' or 'error=' in drive:
                return reports, text
        reports, console = self.wait_console(
            uuid, all_steps, 'the config drive steps')
        self.addDetail('console', content.text_content(console))
        # The guest's disk of the drive's size.
        drives = [name for name, _serial, size, _event, _marker
                  in guest_console.disk_reports(console)
                  if size == spawned['config_drive_size']]
        return {'uuid': uuid, 'reports': reports, 'drives': drives,
                'nics': guest_console.nic_reports(console)}

    def assertLogsIn(self, address, uuid):
        """The instance's key logs in; hostname, marker, uuid are right."""
        result = self.dhcp.ssh(self.key, address,
                               'hostname; cat %s; cat %s' % (MARKER_FILE,
                                                             META_DATA))
        self.addDetail('ssh', content.text_content(
            'exit %d\nstdout:\n%s\nstderr:\n%s'
            % (result.returncode, result.stdout, result.stderr)))
        self.assertEqual(0, result.returncode, result.stderr)
        hostname, marker, meta_data = result.stdout.split('\n', 2)
        self.assertEqual(self.hostname, hostname)
        self.assertEqual(self.marker, marker)
        self.assertEqual(uuid, jsonutils.loads(meta_data)['uuid'])

    def assertRefuses(self, address):
        """Another key is refused."""
        result = self.dhcp.ssh(self.other_key, address, 'true')
        self.assertNotEqual(0, result.returncode)
        self.assertIn('Permission denied (publickey)', result.stderr)

    def assertConfigured(self, guest, fs, dhcp, static):
        reports = guest['reports']
        self.assertEqual(1, len(guest['drives']), guest['drives'])
        self.assertEqual({'dev': guest['drives'][0], 'fs': fs,
                          'uuid': guest['uuid']},
                         guest_console.fields(reports['CONFIG-DRIVE']))
        self.assertEqual(self.hostname, guest_console.fields(
            reports['HOSTNAME'])['name'])
        self.assertEqual({'count': '1'},
                         guest_console.fields(reports['KEYS']))
        self.assertEqual({'links': '1', 'dhcp': str(dhcp),
                          'static': str(static)},
                         guest_console.fields(reports['NETWORK-DATA']))
        self.assertEqual('port=22 started', reports['SSH'])
        self.assertEqual('status=0', reports['USERDATA'])

    def check_guest(self, guest, address):
        self.assertEqual([('eth0', support.MAC, None,
                           '%s/%s' % (address, PREFIX))], guest['nics'])
        self.assertLogsIn(address, guest['uuid'])
        self.assertRefuses(address)

        self.remember_processes()
        self.host.call('destroy', uuid=guest['uuid'])
        self.assertSwitchEmptyOnceHostStops(self.host)

    def test_iso9660_drive_on_cdrom_with_dhcp_port(self):
        guest = self.boot(on_ovs.port(), 'iso9660')
        self.assertConfigured(guest, 'iso9660', dhcp=1, static=0)
        # A CD-ROM (IDE on the pc machine type).
        self.assertTrue(guest['drives'][0].startswith('sr'), guest['drives'])
        self.check_guest(guest, on_ovs.FIXED_IP)

    def test_vfat_drive_with_static_address(self):
        if not (shutil.which('mkfs.vfat') and shutil.which('mcopy')):
            self.skipTest('mkfs.vfat (dosfstools) or mcopy (mtools) '
                          'is missing')
        guest = self.boot(static_port(), 'vfat')
        self.assertConfigured(guest, 'vfat', dhcp=0, static=1)
        # A virtio disk.
        self.assertTrue(guest['drives'][0].startswith('vd'), guest['drives'])
        self.assertNotIn(STATIC_IP, self.dhcp.leases())
        self.check_guest(guest, STATIC_IP)
