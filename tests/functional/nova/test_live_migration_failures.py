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

"""Live migrations that fail, through nova's API between two libvirtds.

* The destination's libvirtd is killed (SIGKILL) while the migration
  copies memory: the guest goes on counting on the source with the same
  boot, nova records the migration as failed and the server ACTIVE on the
  source; once that libvirtd runs again, the destination holds neither a
  domain, nor the instance's files, nor a QEMU process of it (the
  driver removes the directory when its connection comes back).
"""

import glob
import os
import signal
import time

from nova_pyvirt.migration import live_leftovers
from tests.functional.nova import base
from tests.functional.nova import test_live_migration

HOST1 = test_live_migration.HOST1
HOST2 = test_live_migration.HOST2
COUNTER = test_live_migration.COUNTER

#: Seconds for the destination to be cleaned up once its libvirtd runs
#: again: the driver reconnects every 10 s.
CLEANUP_TIMEOUT = 120


def _qemu_pids(daemon):
    """PIDs of the QEMU processes ``daemon`` started that still run."""
    pids = set()
    for path in glob.glob(os.path.join(daemon.base, 'run', 'qemu', '*.pid')):
        try:
            with open(path) as handle:
                pid = int(handle.read().strip())
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                if b'qemu' in handle.read():
                    pids.add(pid)
        except (OSError, ValueError):
            continue
    return pids


def _running(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            # A zombie is gone for every purpose here.
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


class LiveMigrationFailureTest(test_live_migration.LiveMigrationTestBase):

    def _assert_keeps_counting(self, server, boot_id, more=10):
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

    def test_destination_libvirtd_killed(self):
        source, dest = HOST1, HOST2
        # 1 MiB/s: the 128 MiB guest would take minutes to move.
        self.flags(live_migration_bandwidth=1, group='pyvirt')
        server = self._boot_on(source)
        boot_id = COUNTER.findall(self._console(server))[-1][1]
        daemon = self.libvirtds[dest]

        self._live_migrate(server)
        shown = self._wait_until_copying(server)
        incoming = _qemu_pids(daemon)
        print('destination QEMU %s, libvirtd PID %d' % (
            sorted(incoming), daemon.pid))
        killed = time.monotonic()
        daemon.kill(signal.SIGKILL)
        migration = self._wait_for_migration(
            server, ['completed', 'error', 'failed', 'cancelled'])
        failed_after = time.monotonic() - killed
        server = self._wait_for_server(server, 'ACTIVE', source)
        print('destination libvirtd killed after %d of %d bytes: migration '
              '%s %.1f s later, server %s on %s' % (
                  shown['memory_processed_bytes'],
                  shown['memory_total_bytes'], migration['status'],
                  failed_after, server['status'], self._host_of(server)))
        # nova rolled back (not 'error': nothing in the rollback failed).
        self.assertEqual('failed', migration['status'])

        # The guest never stopped on the source.
        self._assert_runs_on(source, server)
        self._assert_keeps_counting(server, boot_id)
        # What the destination prepared waits for its libvirt: only that
        # can tell that no guest there uses the disks.
        marker = os.path.join(self._instance_dir(dest, server),
                              live_leftovers.MARKER)
        self.assertTrue(os.path.exists(marker))
        print('while the destination libvirtd is down: instance directory '
              'kept and marked, QEMU of the incoming guest still running: '
              '%s' % [p for p in incoming if _running(p)])

        # Back: the driver reconnects and the destination is cleaned up.
        daemon.start()
        restarted = time.monotonic()
        deadline = restarted + CLEANUP_TIMEOUT
        while os.path.exists(self._instance_dir(dest, server)) and \
                time.monotonic() < deadline:
            time.sleep(base.POLL)
        print('destination cleaned up %.1f s after its libvirtd started' % (
            time.monotonic() - restarted))
        self.assertFalse(os.path.exists(self._instance_dir(dest, server)))
        self.assertNoDomainOn(dest, server)
        self.assertEqual([], [p for p in incoming if _running(p)])
        self._assert_runs_on(source, server)
