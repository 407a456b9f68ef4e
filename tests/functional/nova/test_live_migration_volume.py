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

"""Live migration, through nova's API, of a guest with an iSCSI volume.

The hosts are :class:`.two_libvirtds.TwoLibvirtdsTestBase`'s (two
libvirtds over TLS); a real tgtd on 127.0.0.1 (:mod:`tests.fixtures.tgtd`)
serves the volume, with CHAP, and nova's ``CinderFixture`` hands out its
``connection_info``. Both hosts use ``[pyvirt] iscsi_transport = qemu``
(the test machines have no kernel initiator), so a host's connection to
the volume is its QEMU's iSCSI session plus the CHAP secret in its
libvirtd, which ``pre_live_migration`` creates on the destination.

The guest writes a marker at the start of the volume when it boots
(``pyvirt.write=vdb:...``) and reads the volume's first line every second
with ``O_DIRECT`` (``pyvirt.watch=vdb``, a ``PYVIRT-DISK-READ`` console
line). Lines in the destination's console log were printed while the
guest ran there, so a marker in them was read through the destination's
connection; a new marker the test writes into the LUN's backing file after
the move shows that the reads reach the storage, not a cache.

Who holds a session is read from tgtd (the initiators of the target) and
from the TCP connections to tgtd's portal of each host's QEMU (the PID in
that libvirtd's ``/run/libvirt/qemu``).
"""

import os
import re
import time

import libvirt
from lxml import etree
from oslo_utils import uuidutils
import psutil

from nova_pyvirt.volume import iscsi
from nova_pyvirt.volume import secrets
from tests.fixtures import tgtd as tgtd_fixture
from tests.functional.nova import base
from tests.functional.nova import test_live_migration
from tests.functional.nova import two_libvirtds

HOST1 = two_libvirtds.HOST1
HOST2 = two_libvirtds.HOST2

WRITTEN = 'PYVIRT-LIVE-VOLUME written-by-the-guest-before-the-move'
WRITTEN_AFTER = 'PYVIRT-LIVE-VOLUME written-to-the-lun-after-the-move'
WRITTEN_DURING = 'PYVIRT-LIVE-VOLUME written-to-the-lun-after-the-abort'
READ = re.compile(r'^PYVIRT-DISK-READ name=(\S+) n=(\d+) marker=(.*?)\r?$',
                  re.M)
CHAP_USER = 'pyvirtlive'
CHAP_PASSWORD = 'live-migration-chap-Secret1'
QEMU_INITIATOR = 'iqn.2008-11.org.linux-kvm:'


class LiveMigrationISCSIVolumeTest(
        test_live_migration.LiveMigrationTestBase):

    def _setup_compute_service(self):
        # Registered before the hosts: stopped after their guests.
        self.tgtd = self.useFixture(tgtd_fixture.TgtdFixture())
        self.flags(iscsi_transport='qemu', group='pyvirt')
        return super()._setup_compute_service()

    GUEST_IMAGE = 'pyvirt-volume-watch'
    GUEST_COMMAND_LINE = ('console=ttyS0 quiet pyvirt.write="vdb:%s" '
                          'pyvirt.watch=vdb' % WRITTEN)

    def setUp(self):
        super().setUp()
        self.volume_id = uuidutils.generate_uuid()
        self.lun = self.tgtd.create_volume(
            'live-%s' % self.volume_id[:8], username=CHAP_USER,
            password=CHAP_PASSWORD)
        # nova's Cinder fixture returns this for every attachment of it.
        self.cinder.VOLUME_CONNECTION_INFO = dict(
            self.cinder.VOLUME_CONNECTION_INFO, **{
                self.volume_id: self.tgtd.connection_info(
                    self.lun.name, self.volume_id)})

    # -- what each host has of the volume --------------------------------

    def _secret_on(self, host, server):
        usage = secrets.volume_usage_id(iscsi.SECRET_USAGE_TYPE,
                                        self.volume_id, server['id'])
        try:
            self._connection(host).secretLookupByUsage(
                libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                return False
            raise
        return True

    def _qemu_pid(self, host, server):
        """PID of the server's QEMU on ``host``, None when none runs."""
        path = os.path.join(self.libvirtds[host].base, 'run', 'qemu',
                            server['OS-EXT-SRV-ATTR:instance_name'] + '.pid')
        try:
            with open(path) as handle:
                pid = int(handle.read().strip())
            if 'qemu' in psutil.Process(pid).name():
                return pid
        except (OSError, ValueError, psutil.NoSuchProcess):
            pass
        return None

    def _portal_sessions(self, host, server):
        """TCP connections of ``host``'s QEMU of the server to tgtd."""
        pid = self._qemu_pid(host, server)
        if pid is None:
            return 0
        return len([c for c in psutil.Process(pid).net_connections('tcp')
                    if c.raddr and c.raddr.port == self.tgtd.port and
                    c.status == psutil.CONN_ESTABLISHED])

    def _connections(self, server):
        """``{host: (QEMU sessions, CHAP secret)}`` and tgtd's initiators."""
        return ({host: (self._portal_sessions(host, server),
                        self._secret_on(host, server))
                 for host in (HOST1, HOST2)},
                self.tgtd.sessions(self.lun.name))

    def _write_lun(self, text):
        """A new first line on the LUN, written into its backing file."""
        fd = os.open(self.lun.path, os.O_WRONLY)
        try:
            os.pwrite(fd, (text + '\n').encode(), 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the guest's reads -------------------------------------------------

    def _reads(self, text):
        return [(int(n), marker) for dev, n, marker in READ.findall(text)
                if dev == 'vdb']

    def _wait_for_read(self, read_text, marker, after=0,
                       timeout=base.BOOT_TIMEOUT):
        """The first read numbered above ``after`` that saw ``marker``."""
        deadline = time.monotonic() + timeout
        while True:
            for n, seen in self._reads(read_text()):
                if n > after and seen == marker:
                    return n
            if time.monotonic() > deadline:
                self.fail('the guest did not read %r from its volume within '
                          '%d s; its reads: %s' % (
                              marker, timeout, self._reads(read_text())[-5:]))
            time.sleep(base.POLL)

    def _file_text(self, path):
        def read():
            try:
                with open(path, errors='replace') as handle:
                    return handle.read()
            except FileNotFoundError:
                return ''
        return read

    # -- steps -------------------------------------------------------------

    def _boot_with_volume(self, host):
        body = self._build_server(
            name='pyvirt-live-vol', image_uuid=self.image_id,
            flavor_id=self.flavor_id, networks='none', host=host)
        body['block_device_mapping_v2'] = [{
            'boot_index': 0, 'uuid': self.image_id, 'source_type': 'image',
            'destination_type': 'local'}, {
            'boot_index': -1, 'uuid': self.volume_id,
            'source_type': 'volume', 'destination_type': 'volume'}]
        server = self._wait_for_status(self.api.post_server({'server': body}),
                                       'ACTIVE')
        self.assertEqual(host, self._host_of(server))
        console = self._wait_for_console(server, 'PYVIRT-DISK-READ ')
        self.assertIn('PYVIRT-WROTE vdb', console)
        # vdb is the volume (its serial, cut to 20 bytes by virtio-blk).
        self.assertRegex(console, r'PYVIRT-DISK name=vdb serial=%s ' %
                         re.escape(self.volume_id[:20]))
        self._wait_for_read(lambda: self._console(server), WRITTEN)
        self.assertEqual(WRITTEN.encode() + b'\n',
                         self.tgtd.read(self.lun.name, len(WRITTEN) + 1))
        return server

    # -- tests -------------------------------------------------------------

    def test_volume_follows_the_guest(self):
        source, dest = HOST1, HOST2
        server = self._boot_with_volume(source)
        hosts, initiators = self._connections(server)
        self.assertEqual({source: (1, True), dest: (0, False)}, hosts)
        self.assertEqual([QEMU_INITIATOR + server['id']], initiators)

        started = time.monotonic()
        migration, server = self._migrate_to_completion(server, dest)
        took = time.monotonic() - started

        self._assert_runs_on(dest, server)
        self.assertNoDomainOn(source, server)
        self.assertFalse(os.path.exists(self._instance_dir(source, server)))
        # The destination's libvirtd opens the volume with its own secret;
        # nothing of the volume is left on the source.
        disk = [d for d in etree.fromstring(
            self._domain_on(dest, server).XMLDesc(0)).findall(
            './devices/disk') if d.findtext('serial') == self.volume_id][0]
        self.assertEqual(('iscsi', '%s/1' % self.lun.iqn, self.tgtd.port), (
            disk.find('source').get('protocol'),
            disk.find('source').get('name'),
            int(disk.find('source/host').get('port'))))
        hosts, initiators = self._connections(server)
        self.assertEqual({source: (0, False), dest: (1, True)}, hosts)
        self.assertEqual([QEMU_INITIATOR + server['id']], initiators)

        # The guest, on the destination, reads what it wrote before the
        # move, then what was written to the LUN after it.
        dest_console = self._file_text(self._console_file(dest, server))
        first = self._wait_for_read(dest_console, WRITTEN)
        self._write_lun(WRITTEN_AFTER)
        written = time.monotonic()
        later = self._wait_for_read(dest_console, WRITTEN_AFTER, after=first)
        print('iSCSI volume %s live-migrated with %s from %s to %s in %.1f s '
              'through the API; on %s the guest read %r (read %d) and, '
              '%.1f s after it was written to the LUN, %r (read %d); tgtd '
              'sessions after the move: %s; QEMU sessions and CHAP secret '
              'per host: %s' % (
                  self.volume_id, server['id'], source, dest, took, dest,
                  WRITTEN, first, time.monotonic() - written, WRITTEN_AFTER,
                  later, initiators, hosts))

    def test_rollback_removes_the_destination_connection(self):
        source, dest = HOST1, HOST2
        # 1 MiB/s: the 128 MiB guest would take minutes to move.
        self.flags(live_migration_bandwidth=1, group='pyvirt')
        server = self._boot_with_volume(source)

        self._live_migrate(server)
        migration = self._wait_until_copying(server)
        # pre_live_migration connected the volume on the destination.
        during, _initiators = self._connections(server)
        self.assertEqual((1, True), during[source])
        self.assertTrue(during[dest][1], during)
        self.api.api_delete('/servers/%s/migrations/%s' % (
            server['id'], migration['id']))
        self._wait_for_migration(server, ['cancelled'])
        server = self._wait_for_server(server, 'ACTIVE', source)

        self._assert_runs_on(source, server)
        self.assertNoDomainOn(dest, server)
        self.assertFalse(os.path.exists(self._instance_dir(dest, server)))
        hosts, initiators = self._connections(server)
        self.assertEqual({source: (1, True), dest: (0, False)}, hosts)
        self.assertEqual([QEMU_INITIATOR + server['id']], initiators)
        # The guest still reaches its volume from the source.
        last = max(n for n, _m in self._reads(self._console(server)))
        self._write_lun(WRITTEN_DURING)
        seen = self._wait_for_read(lambda: self._console(server),
                                   WRITTEN_DURING, after=last)
        print('aborted live migration of %s with iSCSI volume %s: the '
              'destination connection was made (%s) and removed; QEMU '
              'sessions and CHAP secret per host after the rollback: %s; '
              'the guest on %s read %r (read %d)' % (
                  server['id'], self.volume_id, during[dest], hosts, source,
                  WRITTEN_DURING, seen))
