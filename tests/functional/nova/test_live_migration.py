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

"""Live migration through nova's API between two libvirtds over TLS.

The hosts are :class:`.two_libvirtds.TwoLibvirtdsTestBase`'s. The guest
boots with ``pyvirt.counter=1`` (a ``PYVIRT-COUNTER <n> boot=<id>`` line
every 100 ms) and ``pyvirt.write=vda:...`` (a line written at the start of
its root disk). A thread reads both hosts' console logs while the guest
moves, noting when each counter line appeared: the count must go on at
the destination with the same boot id (no reboot), and the longest gap
between two lines is the guest's pause, which the test prints.
"""

import os
import tempfile
import time

import libvirt

from nova.compute import power_state
from nova import context as nova_context
from nova import objects
from oslo_concurrency import processutils

from tests.fixtures import nova_harness
from tests.functional.nova import base
from tests.functional.nova import two_libvirtds
from tests import guest_counter

HOST1 = two_libvirtds.HOST1
HOST2 = two_libvirtds.HOST2

#: Seconds for a live migration to finish through the API: a 128 MiB TCG
#: guest on a busy 2-core machine.
MIGRATION_TIMEOUT = max(base.STATUS_TIMEOUT, 300)

DATA_LINE = 'PYVIRT-LIVE-DATA written-before-the-move'
COUNTER = guest_counter.COUNTER
CounterWatch = guest_counter.CounterWatch


class LiveMigrationTestBase(two_libvirtds.TwoLibvirtdsTestBase):
    """The counter guest and the steps of a live migration through the API."""

    #: The test guest's image name and kernel command line.
    GUEST_IMAGE = 'pyvirt-counter'
    GUEST_COMMAND_LINE = ('console=ttyS0 quiet pyvirt.counter=1 '
                          'pyvirt.write="vda:%s"' % DATA_LINE)

    def setUp(self):
        super().setUp()
        self.flavor_id = self._create_guest_flavor(name='pyvirt-live',
                                                   disk=1)
        self.image_id = nova_harness.register_root_image(
            self.glance, nova_harness.guest_image_dir(), self.images,
            self.GUEST_IMAGE, {'architecture': 'x86_64'},
            command_line=self.GUEST_COMMAND_LINE)

    # -- steps -------------------------------------------------------------

    def _boot_on(self, host):
        body = self._build_server(
            name='pyvirt-live', image_uuid=self.image_id,
            flavor_id=self.flavor_id, networks='none', host=host)
        server = self._wait_for_status(self.api.post_server({'server': body}),
                                       'ACTIVE')
        self.assertEqual(host, self._host_of(server))
        console = self._wait_for_console(server, 'PYVIRT-COUNTER ')
        self.assertIn('PYVIRT-WROTE vda', console)
        return server

    def _console_file(self, host, server):
        return os.path.join(self._instance_dir(host, server), 'console.log')

    def _migration_of(self, server):
        migrations = self.api.api_get(
            '/os-migrations?instance_uuid=%s&migration_type=live-migration'
            % server['id']).body['migrations']
        self.assertTrue(migrations, 'no live migration of %s' % server['id'])
        return max(migrations, key=lambda m: m['id'])

    def _wait_for_migration(self, server, statuses,
                            timeout=MIGRATION_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            migrations = self.api.api_get(
                '/os-migrations?instance_uuid=%s' % server['id']).body[
                'migrations']
            live = [m for m in migrations
                    if m['migration_type'] == 'live-migration']
            if live:
                migration = max(live, key=lambda m: m['id'])
                if migration['status'] in statuses:
                    return migration
            if time.monotonic() > deadline:
                self.fail('live migration of %s not %s within %d s: %s' % (
                    server['id'], statuses, timeout, live))
            time.sleep(base.POLL)

    def _live_migrate(self, server, host=None):
        self.api.post_server_action(
            server['id'],
            {'os-migrateLive': {'host': host, 'block_migration': 'auto'}})

    def _wait_for_server(self, server, status, host):
        deadline = time.monotonic() + MIGRATION_TIMEOUT
        while True:
            server = self.api.get_server(server['id'])
            if server['status'] == status and \
                    self._host_of(server) == host and \
                    not server['OS-EXT-STS:task_state']:
                return server
            if server['status'] == 'ERROR' or \
                    time.monotonic() > deadline:
                self.fail('server %s not %s on %s: %s' % (
                    server['id'], status, host, server))
            time.sleep(base.POLL)

    def _read_disk_start(self, host, server):
        """The first line of the server's root disk file on ``host``."""
        path = os.path.join(self._instance_dir(host, server), 'disk')
        with tempfile.NamedTemporaryFile() as out:
            processutils.execute('qemu-img', 'dd', '-U', '-f', 'qcow2',
                                 '-O', 'raw', 'bs=512', 'count=1',
                                 'if=%s' % path, 'of=%s' % out.name)
            return out.read().split(b'\n', 1)[0].decode('ascii', 'replace')

    def _assert_runs_on(self, host, server):
        dom = self._domain_on(host, server)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, dom.state()[0])
        self.assertTrue(dom.isPersistent())
        return dom

    def _assert_keeps_counting(self, server, boot_id, more=10):
        """The guest prints ``more`` new counter lines, all of one boot."""
        seen = len(COUNTER.findall(self._console(server)))
        deadline = time.monotonic() + base.BOOT_TIMEOUT
        while True:
            after = COUNTER.findall(self._console(server))
            if len(after) > seen + more or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertGreater(len(after), seen + more)
        self.assertEqual({boot_id}, {b for _n, b in after})
        return after

    def _migrate_to_completion(self, server, dest):
        """Live-migrate ``server``; the completed migration, the server."""
        self._live_migrate(server)
        migration = self._wait_for_migration(
            server, ['completed', 'error', 'failed', 'cancelled'])
        self.assertEqual('completed', migration['status'], migration)
        return migration, self._wait_for_server(server, 'ACTIVE', dest)

    def _wait_until_copying(self, server):
        """The running live migration, once libvirt reported progress."""
        migration = self._wait_for_migration(server, ['running'])
        deadline = time.monotonic() + MIGRATION_TIMEOUT
        while True:
            shown = self.api.api_get('/servers/%s/migrations/%s' % (
                server['id'], migration['id'])).body['migration']
            if shown['memory_processed_bytes']:
                return shown
            if time.monotonic() > deadline:
                self.fail('no progress of %s within %d s: %s' % (
                    migration['id'], MIGRATION_TIMEOUT, shown))
            time.sleep(base.POLL)


class LiveMigrationTest(LiveMigrationTestBase):

    # -- tests -------------------------------------------------------------

    def test_live_migrate_block_auto(self):
        source, dest = HOST1, HOST2
        server = self._boot_on(source)
        before = COUNTER.findall(self._console(server))
        boot_id = before[-1][1]
        watch = CounterWatch([self._console_file(source, server),
                              self._console_file(dest, server)]).start()
        self.addCleanup(watch.stop)
        started = time.monotonic()

        migration, server = self._migrate_to_completion(server, dest)
        took = time.monotonic() - started

        # It runs on the destination, defined there for good; the source
        # has neither the domain nor the instance's files.
        self._assert_runs_on(dest, server)
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        self.assertNoDomainOn(source, server)
        self.assertFalse(os.path.exists(self._instance_dir(source, server)))

        # The guest kept counting there, with the same boot: no reboot.
        deadline = time.monotonic() + base.BOOT_TIMEOUT
        dest_log = self._console_file(dest, server)
        while len(watch.on(dest_log)) < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        watch.stop()
        on_dest = watch.on(dest_log)
        on_source = watch.on(self._console_file(source, server))
        self.assertGreaterEqual(len(on_dest), 20, watch.seen)
        self.assertEqual({boot_id}, {b for _t, b, _p in watch.seen.values()})
        self.assertGreater(on_dest[0], int(before[-1][0]))
        if on_source:
            self.assertGreater(on_dest[0], on_source[-1])
        gap, last, first = watch.longest_gap()
        print('live migration of %s: %.1f s through the API; guest '
              'paused %.0f ms (counter %s on %s, %s on %s), %d lines lost'
              % (server['id'], took, gap * 1000, last, source, first, dest,
                 (first or 0) - (last or 0) - 1))

        # What the guest wrote before the move is on the destination's
        # disk, an overlay of the destination's own image cache.
        self.assertEqual(DATA_LINE, self._read_disk_start(dest, server))
        info = processutils.execute(
            'qemu-img', 'info', '-U', '--output=json',
            os.path.join(self._instance_dir(dest, server), 'disk'))[0]
        self.assertIn(os.path.join(self.paths[dest], '_base'), info)

        # The migration's progress was recorded.
        record = objects.Migration.get_by_id(
            nova_context.get_admin_context(), migration['id'])
        self.assertGreater(record.memory_total or 0, 0)
        self.assertEqual(0, record.memory_remaining)

    def test_abort_keeps_the_guest_on_the_source(self):
        source, dest = HOST1, HOST2
        # 1 MiB/s: the 128 MiB guest would take minutes to move.
        self.flags(live_migration_bandwidth=1, group='pyvirt')
        server = self._boot_on(source)
        boot_id = COUNTER.findall(self._console(server))[-1][1]

        self._live_migrate(server)
        migration = self._wait_until_copying(server)
        self.api.api_delete('/servers/%s/migrations/%s' % (
            server['id'], migration['id']))
        self._wait_for_migration(server, ['cancelled'])
        server = self._wait_for_server(server, 'ACTIVE', source)

        # Still running where it was, still counting, same boot.
        self._assert_runs_on(source, server)
        self._assert_keeps_counting(server, boot_id)
        # Nothing of it is left on the destination.
        self.assertNoDomainOn(dest, server)
        self.assertFalse(os.path.exists(self._instance_dir(dest, server)))

    def test_force_complete_with_post_copy(self):
        source, dest = HOST1, HOST2
        self.flags(live_migration_bandwidth=1,
                   live_migration_permit_post_copy=True, group='pyvirt')
        server = self._boot_on(source)
        boot_id = COUNTER.findall(self._console(server))[-1][1]

        self._live_migrate(server)
        migration = self._wait_until_copying(server)
        started = time.monotonic()
        self.api.force_complete_migration(server['id'], migration['id'])
        self.assertEqual('completed', self._wait_for_migration(
            server, ['completed', 'error', 'failed', 'cancelled'])['status'])
        server = self._wait_for_server(server, 'ACTIVE', dest)
        print('forced live migration of %s completed %.1f s after the '
              'request' % (server['id'], time.monotonic() - started))

        self._assert_runs_on(dest, server)
        self.assertNoDomainOn(source, server)
        self.assertFalse(os.path.exists(self._instance_dir(source, server)))
        console = self._wait_for_console(server, 'PYVIRT-COUNTER ')
        self.assertEqual({boot_id}, {b for _n, b in COUNTER.findall(console)})
