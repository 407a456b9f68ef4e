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

"""The user's story across a live migration: key pair, SSH, move, SSH.

On the two hosts and switches of :mod:`.test_live_migrate_on_ovs`, the
test imports a key pair, boots a server on ``host1`` through nova's API
with ``key_name``, a user data script that writes a marker and
``config_drive: true``, and logs in over SSH at the address nova reports
(as :mod:`.test_first_boot_on_ovs` does). In the guest it writes a marker
line at the start of its root disk (``/dev/vda``, synced) and reads its
boot id and uptime. Then ``os-migrateLive`` (``block_migration: auto``:
the instance directories are not shared, so a block migration) moves it
to ``host2``, and the same key logs in at the same address again: the
same boot id, a larger uptime, the user data's marker, the disk marker
read from the disk with ``O_DIRECT`` (so from the storage on ``host2``,
not the guest's cache), and the config drive read again from its device:
the guest drops its page cache first, reads the drive's label with
``O_DIRECT`` and the uuid in its ``meta_data.json``. ``host1`` has no
domain and no instance directory left; ``host2``'s directory has the
drive, recorded in its ``disk.info``.

One test per config drive format: iso9660 (nova's default, a read-only
CD-ROM that the block migration does not copy: the driver copies the
file) and vfat (a disk, copied by the block migration as the others).
A third aborts the move of a guest with an iso9660 drive half-way (at
``live_migration_bandwidth`` 1 MiB/s): while it runs, ``host2`` holds the
same drive (same SHA-256); after the rollback ``host2`` has no domain and
no instance directory, and the guest still reads its drive on ``host1``.
"""

import time

import libvirt
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from tests.functional.nova import test_live_migrate_on_ovs as live
from tests.functional.nova import test_server_on_ovs as on_ovs
from tests import guest_login

HOST1 = live.HOST1
HOST2 = live.HOST2
KEY_NAME = 'mykey'
#: The guest's root disk (the image; the vfat drive is the next disk).
ROOT_DISK = '/dev/vda'
#: Prints the boot id, the uptime, the user data's marker, the first
#: line of the root disk (O_DIRECT) and whether the config drive's
#: label is on its device (O_DIRECT), one per line; then, after the page
#: cache is dropped, the drive's meta_data.json.
# The label is matched inside a token: in a FAT boot sector it follows
# the volume id, whose time-made bytes may be letters or digits too.
READ_STATE = (
    'cat /proc/sys/kernel/random/boot_id; '
    'cut -d" " -f1 /proc/uptime; '
    'cat %(marker)s; '
    'dd if=%(root)s bs=512 count=1 iflag=direct 2>/dev/null | head -n 1; '
    'dev=$(awk \'$2 == "%(mount)s" {print $1}\' /proc/mounts); '
    'if dd if=$dev bs=65536 count=1 iflag=direct 2>/dev/null | '
    'tr -c "A-Za-z0-9-" "\\n" | grep -qi config-2; '
    'then echo "label $dev"; else echo "no-label $dev"; fi; '
    'sync; echo 3 > /proc/sys/vm/drop_caches; cat %(meta)s') % {
        'marker': guest_login.MARKER_FILE, 'root': ROOT_DISK,
        'mount': guest_login.CONFIG_DRIVE_MOUNT,
        'meta': guest_login.META_DATA}


class LiveMigrateFirstBootTest(live.LiveMigrateOnOvsBase):

    def setUp(self):
        super(LiveMigrateFirstBootTest, self).setUp()
        self.key = guest_login.make_keypair(self.tmp, 'instance-key')

    def boot_with_key(self, marker, drive_format):
        self.host.call('configure', vif_plugging_timeout=300,
                       vif_plugging_is_fatal=True,
                       config_drive_format=drive_format)
        self.import_keypair(KEY_NAME, self.key)
        server = self.host.call('boot', port_id=on_ovs.PORT_ID, host=HOST1,
                                fields={
                                    'key_name': KEY_NAME,
                                    'user_data': guest_login.marker_user_data(
                                        marker),
                                    'config_drive': True})['server']
        server = self.wait_for_status(server, 'ACTIVE')
        self.assertEqual(HOST1, self.host_of(server))
        return server

    def ssh(self, server, command):
        result = self.dhcp.ssh(self.key, self.addresses(server)[0], command)
        self.assertEqual(0, result.returncode, '%s\n%s' % (
            result.stdout, result.stderr))
        return result.stdout

    def read_state(self, server):
        """The guest's state, read over SSH (see :data:`READ_STATE`)."""
        lines = self.ssh(server, READ_STATE).split('\n', 5)
        label, device = lines[4].split(' ', 1)
        return {'boot_id': lines[0], 'uptime': float(lines[1]),
                'marker': lines[2], 'disk': lines[3],
                'drive_label': label == 'label', 'drive': device,
                'meta_data': jsonutils.loads(lines[5])}

    def instance_dir(self, host, server, digest=()):
        return self.host.call('instance_dir', host=host, uuid=server['id'],
                              digest=list(digest))

    def check_story(self, drive_format, device):
        marker = uuidutils.generate_uuid()
        server = self.boot_with_key(marker, drive_format)
        self.wait_for_nics(server)
        hostname, found, meta_data = self.login(server, self.key, marker)
        self.assertEqual(server['id'], meta_data['uuid'])
        disk_marker = 'PYVIRT-DISK-MARKER live-%s' % marker
        self.ssh(server, "printf '%%s\\n' '%s' | dd of=%s bs=512 count=1 "
                         "conv=notrunc,fsync 2>/dev/null" % (disk_marker,
                                                             ROOT_DISK))
        before = self.read_state(server)
        self.assertEqual(disk_marker, before['disk'])
        self.assertEqual(('/dev/' + device, True),
                         (before['drive'], before['drive_label']))
        self.assertEqual(server['id'], before['meta_data']['uuid'])
        on_host1 = self.instance_dir(HOST1, server)
        self.assertIn('disk.config', on_host1['files'])

        started = time.monotonic()
        server = self.migrate_to_host2(server)
        moved = time.monotonic() - started

        # Nothing of it on host1; on host2 the domain and its directory,
        # the drive in it and in its disk.info.
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         self.domain_state(HOST2, server))
        self.assertEqual([], self.host.call('domains', host=HOST1)['uuids'])
        self.assertIsNone(self.instance_dir(HOST1, server)['files'])
        on_host2 = self.instance_dir(HOST2, server)
        self.assertIn('disk.config', on_host2['files'])
        self.assertEqual(on_host1['disk_info'], on_host2['disk_info'])
        self.assertIn('disk.config', [d['path'] for d in
                                      on_host2['disk_info']['disks']])

        # The same key logs in at the same address, into the same boot.
        started_login = time.monotonic()
        hostname_after, found_after, _meta = self.login(server, self.key,
                                                        marker)
        login_took = time.monotonic() - started_login
        self.assertEqual((hostname, marker), (hostname_after, found_after))
        after = self.read_state(server)
        self.assertEqual(before['boot_id'], after['boot_id'])
        self.assertGreater(after['uptime'], before['uptime'])
        self.assertEqual(disk_marker, after['disk'])
        self.assertEqual(('/dev/' + device, True),
                         (after['drive'], after['drive_label']))
        self.assertEqual(before['meta_data'], after['meta_data'])
        self.assertEqual([on_ovs.FIXED_IP], self.addresses(server))
        print('live migration of %s with the %s config drive (%s) from %s to '
              '%s: %.1f s through the API; SSH login with the key pair on '
              '%s %.1f s later; same boot %s, uptime %.1f -> %.1f s; user '
              'data marker, disk marker (O_DIRECT) and drive label '
              '(O_DIRECT) and meta_data.json uuid (page cache dropped) '
              'read again; %s: no domain, no instance directory; %s: %s' % (
                  server['id'], drive_format, after['drive'], HOST1, HOST2,
                  moved, on_ovs.FIXED_IP, login_took, after['boot_id'],
                  before['uptime'], after['uptime'], HOST1, HOST2,
                  ' '.join(on_host2['files'])))

        self.assertEqual([], self.agent.errors)
        self.assertNothingLeftOnceDeleted(server)

    def test_iso9660_config_drive_moves_with_the_guest(self):
        self.check_story('iso9660', 'sr0')

    def test_vfat_config_drive_moves_with_the_guest(self):
        self.check_story('vfat', 'vdb')

    def test_aborted_move_leaves_no_copy_of_the_drive_on_host2(self):
        self.host.call('set_flags', group='pyvirt',
                       values={'live_migration_bandwidth': 1})
        marker = uuidutils.generate_uuid()
        server = self.boot_with_key(marker, 'iso9660')
        self.wait_for_nics(server)
        self.login(server, self.key, marker)
        before = self.read_state(server)
        drive = self.instance_dir(HOST1, server, ['disk.config'])['sha256']

        self.live_migrate(server)
        migration = self.wait_until_moving(server)
        # The guest is moving: host2 has the whole drive already.
        self.assertEqual(drive, self.instance_dir(
            HOST2, server, ['disk.config'])['sha256'])
        server = self.abort_and_settle_on_host1(server, migration)

        self.assertEqual([], self.host.call('domains', host=HOST2)['uuids'])
        self.assertIsNone(self.instance_dir(HOST2, server)['files'])
        self.assertEqual(drive, self.instance_dir(
            HOST1, server, ['disk.config'])['sha256'])
        after = self.read_state(server)
        self.assertEqual(before['boot_id'], after['boot_id'])
        self.assertTrue(after['drive_label'])
        self.assertEqual(server['id'], after['meta_data']['uuid'])
        print('aborted live migration of %s with an iso9660 config drive '
              'after %d of %d bytes: host2 had the drive (sha256 %s) while '
              'it ran, and after the rollback no domain and no instance '
              'directory; the guest runs on host1 in the same boot and '
              'reads its drive (O_DIRECT label, meta_data.json uuid)' % (
                  server['id'], migration['memory_processed_bytes'],
                  migration['memory_total_bytes'],
                  drive['disk.config'][:12]))

        self.assertEqual([], self.agent.errors)
        self.assertNothingLeftOnceDeleted(server)
