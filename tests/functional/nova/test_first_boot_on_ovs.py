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

"""The user's story through nova's API: a key pair, a boot, an SSH login.

On the stack of :mod:`test_server_on_ovs` (nova's API, scheduler and a
``PyVirtDriver`` compute in the OVS fixture's namespaces, the agent and
DHCP fixtures as Neutron): the test imports a key pair through
``POST /os-keypairs``, boots a server with ``key_name``, a ``#!/bin/sh``
``user_data`` that writes a marker and ``config_drive: true``, and once
nova says ACTIVE logs in over SSH from the DHCP namespace at the address
nova reports, with the key pair's private key. In the guest it reads the
hostname (the server's, from the config drive), the marker and the uuid in
the mounted drive's ``meta_data.json``. Another key is refused. A rebuild
through the API with new user data gives a new drive, and the new marker
is there after it. The same login works with ``config_drive_format =
vfat``. Deleting the server leaves nothing on the switch or in libvirt.
"""

from oslo_utils import uuidutils

from tests.functional.network import ovs_world
from tests.functional.nova import test_server_on_ovs as on_ovs
from tests import guest_console
from tests import guest_login

KEY_NAME = 'mykey'


class FirstBootOnOvsTest(on_ovs.NovaOnOvsSteps, ovs_world.OvsWorldTest):

    CIDR = on_ovs.CIDR
    GATEWAY = on_ovs.GATEWAY
    LEASES = ((on_ovs.MAC, on_ovs.FIXED_IP),)

    def setUp(self):
        super(FirstBootOnOvsTest, self).setUp()
        self.host = on_ovs.NovaHost(self, self.ovs)
        self.key = guest_login.make_keypair(self.tmp, 'instance-key')
        self.other_key = guest_login.make_keypair(self.tmp, 'other-key')

    def boot(self, marker, drive_format='iso9660'):
        self.host.call('configure', vif_plugging_timeout=300,
                       vif_plugging_is_fatal=True,
                       config_drive_format=drive_format)
        self.import_keypair(KEY_NAME, self.key)
        self.host.call('create_port', id=on_ovs.PORT_ID, mac=on_ovs.MAC,
                       ip=on_ovs.FIXED_IP, details=on_ovs.VIF_DETAILS)
        self.agent = self.useFixture(on_ovs.OvsAgent(
            {on_ovs.COMPUTE: self.ovs}, self.host, [on_ovs.PORT_ID]))
        server = self.host.call('boot', port_id=on_ovs.PORT_ID, fields={
            'key_name': KEY_NAME,
            'user_data': guest_login.marker_user_data(marker),
            'config_drive': True})['server']
        return self.wait_for_status(server, 'ACTIVE')

    def hostname(self, server):
        reply = self.host.api('GET', '/servers/%s' % server['id'],
                              admin=True)
        return reply['body']['server']['OS-EXT-SRV-ATTR:hostname']

    def assertLogsIn(self, server, marker):
        hostname, found_marker, meta_data = self.login(server, self.key,
                                                       marker)
        self.assertEqual(self.hostname(server), hostname)
        self.assertEqual(marker, found_marker)
        self.assertEqual(server['id'], meta_data['uuid'])
        self.assertEqual({KEY_NAME: guest_login.public_key(self.key)},
                         {k: v.strip() for k, v in
                          meta_data['public_keys'].items()})

    def assertRefusesOtherKey(self, server):
        result = self.dhcp.ssh(self.other_key, self.addresses(server)[0],
                               'true')
        self.assertNotEqual(0, result.returncode)
        self.assertIn('Permission denied (publickey)', result.stderr)

    def assertDriveSeen(self, server, fs):
        reports = self.wait_for_console(
            server, lambda text: guest_console.config_reports(text).get(
                'CONFIG-DRIVE'), 'PYVIRT-CONFIG-DRIVE line')
        self.assertEqual({'fs': fs, 'uuid': server['id']}, {
            k: v for k, v in guest_console.fields(reports).items()
            if k in ('fs', 'uuid')})

    def finish(self, server):
        self.remember_processes()
        self.delete(server)
        self.assertEqual([], self.agent.errors)
        self.assertEqual([], self.host.call('domains')['uuids'])
        self.assertSwitchEmptyOnceHostStops(self.host)

    def test_login_with_the_key_pair_then_rebuild_with_new_user_data(self):
        marker = uuidutils.generate_uuid()
        server = self.boot(marker)
        self.assertDriveSeen(server, 'iso9660')
        self.assertLogsIn(server, marker)
        self.assertRefusesOtherKey(server)

        # Rebuild with new user data: a new drive, a new marker.
        image = self.host.server(server['id'])['image']['id']
        new_marker = uuidutils.generate_uuid()
        reply = self.host.api(
            'POST', '/servers/%s/action' % server['id'], body={'rebuild': {
                'imageRef': image,
                'user_data': guest_login.marker_user_data(new_marker)}})
        self.assertEqual(202, reply['status'], reply)
        self.wait_until(
            lambda: self.host.server(server['id'])['status'] != 'ACTIVE',
            on_ovs.STATUS_TIMEOUT, 'the rebuild to start')
        server = self.wait_for_status(server, 'ACTIVE')
        self.assertLogsIn(server, new_marker)
        self.finish(server)

    def test_login_with_a_vfat_config_drive(self):
        marker = uuidutils.generate_uuid()
        server = self.boot(marker, drive_format='vfat')
        self.assertDriveSeen(server, 'vfat')
        self.assertLogsIn(server, marker)
        self.finish(server)
