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
  copies memory, or while it copies the disks (the incoming QEMU then
  outlives its daemon): the guest goes on counting on the source with the
  same boot, nova records the migration as failed and the server ACTIVE
  on the source; once that libvirtd runs again, the destination holds
  neither a domain, nor the instance's files, nor a QEMU process of it
  (the driver removes the directory when its connection comes back).
* The destination cannot run the guest's CPU: the check before anything
  moves refuses, naming the missing feature; the guest goes on on the
  source and the destination holds nothing of it.

Two daemons on one machine share its CPU and its QEMU, so their domain
capabilities agree. What differs between real hosts is what their QEMU
can give a guest: here the destination's daemon runs, in its own mount
namespace, a ``/usr/bin/qemu-system-x86_64`` that starts the real QEMU
with ``-global max-x86_64-cpu.avx2=off``, so the ``max`` CPU that libvirt
probes for TCG guests (their ``host-model``) lacks AVX2, as on a host
whose CPU or QEMU has none. libvirt probes that binary as it would any
other, and its own CPU comparison does the refusing.
"""

import glob
import os
import signal
import stat
import sys
import time

import libvirt_qemu
from lxml import etree

from nova_pyvirt.migration import live_leftovers
from tests.functional.nova import base
from tests.functional.nova import test_live_migration

HOST1 = test_live_migration.HOST1
HOST2 = test_live_migration.HOST2
COUNTER = test_live_migration.COUNTER

#: The destination's QEMU, whose ``max`` CPU lacks one feature.
QEMU = '/usr/bin/qemu-system-x86_64'
QEMU_WITHOUT_FEATURE = """#!%(python)s
# Written by tests/functional/nova/test_live_migration_failures.py: the real
# QEMU, whose max CPU (all TCG guests can get) lacks %(feature)s.
import os
import sys
os.execv(%(real)r, [%(real)r, '-global', 'max-x86_64-cpu.%(feature)s=off'] +
         sys.argv[1:])
"""

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

    def _fill_disk(self, server, host, mib):
        """Have the guest's QEMU write ``mib`` MiB into its root disk.

        The blocks go to the disk's qcow2 overlay, past the line the guest
        wrote at its start; a block migration then has that much to copy
        before any memory moves.
        """
        disk = os.path.join(self._instance_dir(host, server), 'disk')
        before = os.stat(disk).st_blocks * 512
        dom = self._domain_on(host, server)
        alias = etree.fromstring(dom.XMLDesc(0)).find(
            "./devices/disk[@device='disk']/alias").get('name')
        # The guest device's own block backend (a virtio-blk-pci device
        # holds it in its virtio-backend child), so the write goes through
        # the image chain the guest uses.
        out = libvirt_qemu.qemuMonitorCommand(
            dom, 'qemu-io -d /machine/peripheral/%s/virtio-backend '
                 '"write -P 0x5a 1M %dM"' % (alias, mib),
            libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
        # qemu-io reports to QEMU's stdout, not to the monitor: errors
        # come back, success is silent.
        self.assertEqual('', out.strip())
        self.assertGreaterEqual(os.stat(disk).st_blocks * 512 - before,
                                mib << 20)

    def _wait_for_phase(self, server, phase):
        """The migration as the API shows it once ``phase`` is copied."""
        migration = self._wait_for_migration(server, ['running'])
        deadline = time.monotonic() + test_live_migration.MIGRATION_TIMEOUT
        while True:
            shown = self.api.api_get('/servers/%s/migrations/%s' % (
                server['id'], migration['id'])).body['migration']
            if shown['%s_processed_bytes' % phase]:
                return shown
            if time.monotonic() > deadline:
                self.fail('no %s copied for %s within %d s: %s' % (
                    phase, migration['id'],
                    test_live_migration.MIGRATION_TIMEOUT, shown))
            time.sleep(0.2)

    def _kill_destination_libvirtd_during(self, phase):
        source, dest = HOST1, HOST2
        # 1 MiB/s: the 128 MiB guest would take minutes to move.
        self.flags(live_migration_bandwidth=1, group='pyvirt')
        server = self._boot_on(source)
        boot_id = COUNTER.findall(self._console(server))[-1][1]
        if phase == 'disk':
            self._fill_disk(server, source, 32)
        daemon = self.libvirtds[dest]

        self._live_migrate(server)
        shown = self._wait_for_phase(server, phase)
        incoming = _qemu_pids(daemon)
        killed = time.monotonic()
        daemon.kill(signal.SIGKILL)
        migration = self._wait_for_migration(
            server, ['completed', 'error', 'failed', 'cancelled'])
        failed_after = time.monotonic() - killed
        server = self._wait_for_server(server, 'ACTIVE', source)
        print('destination libvirtd (PID %d) killed with disk %s/%s and '
              'memory %s/%s bytes copied: migration %s %.1f s later, '
              'server %s on %s' % (
                  daemon.pid, shown['disk_processed_bytes'],
                  shown['disk_total_bytes'], shown['memory_processed_bytes'],
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
              'kept and marked; QEMU of the incoming guest %s, running: %s'
              % (sorted(incoming), [p for p in incoming if _running(p)]))

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
        # What the driver said it did, on both hosts.
        for line in self.stdlog.logger.output.splitlines():
            if '[nova_pyvirt.migration.live]' in line and \
                    server['id'] in line:
                print(line)

    def test_destination_libvirtd_killed_while_memory_moves(self):
        self._kill_destination_libvirtd_during('memory')

    def test_destination_libvirtd_killed_while_disks_are_copied(self):
        # The incoming QEMU only serves the disks over NBD yet: nothing
        # tells it the migration failed, it outlives its libvirtd, and
        # libvirt kills it when it starts again.
        self._kill_destination_libvirtd_during('disk')


class UnrunnableCpuTest(test_live_migration.LiveMigrationTestBase):

    # RPC casts stay casts, as between real services: the API answers
    # os-migrateLive at once and the refusal reaches the migration record
    # and the instance action (nova's harness would otherwise hand the
    # conductor's error back to the API request as a 500).
    CAST_AS_CALL = False

    #: Required by the guest, given by the source's QEMU, not by the
    #: destination's.
    FEATURE = 'avx2'
    MODEL = 'Nehalem'

    def _libvirtd_binds(self, host):
        if host != HOST2 or not os.path.exists(QEMU):
            return []
        # The real binary stays reachable in the daemon's namespace, in a
        # prefix of its own: QEMU finds its modules and firmware relative
        # to its own directory (../lib, ../share), so those point to /usr.
        prefix = os.path.join(self.tmp, 'qemu-prefix')
        os.makedirs(os.path.join(prefix, 'bin'))
        for name in ('lib', 'libexec', 'share'):
            os.symlink(os.path.join('/usr', name), os.path.join(prefix, name))
        real = os.path.join(prefix, 'bin', os.path.basename(QEMU))
        open(real, 'w').close()
        wrapper = os.path.join(self.tmp, 'qemu-without-%s' % self.FEATURE)
        with open(wrapper, 'w') as handle:
            handle.write(QEMU_WITHOUT_FEATURE % {
                'python': sys.executable, 'real': real,
                'feature': self.FEATURE})
        os.chmod(wrapper, stat.S_IRWXU)
        return [(QEMU, real), (wrapper, QEMU)]

    def _instance_action_events(self, server):
        actions = self.api.api_get('/servers/%s/os-instance-actions' %
                                   server['id']).body['instanceActions']
        action = [a for a in actions if a['action'] == 'live-migration'][0]
        return self.api.api_get('/servers/%s/os-instance-actions/%s' % (
            server['id'], action['request_id'])).body[
            'instanceAction']['events']

    def test_cpu_the_destination_cannot_run(self):
        source, dest = HOST1, HOST2
        self.flags(cpu_mode='custom', cpu_models=[self.MODEL],
                   cpu_model_extra_flags=[self.FEATURE], group='pyvirt')
        server = self._boot_on(source)
        boot_id = COUNTER.findall(self._console(server))[-1][1]
        cpu = self._domain_on(source, server).XMLDesc(0)
        self.assertIn("name='%s'" % self.FEATURE, cpu)
        dest_before = sorted(os.listdir(self.paths[dest]))

        started = time.monotonic()
        self._live_migrate(server, host=dest)
        migration = self._wait_for_migration(
            server, ['completed', 'error', 'failed', 'cancelled',
                     'running'])
        took = time.monotonic() - started
        server = self._wait_for_server(server, 'ACTIVE', source)
        events = self._instance_action_events(server)
        reason = ' | '.join('%s: %s' % (e['event'], e.get('details'))
                            for e in events if e['result'] == 'Error')
        print('live migration to a host without %s: migration %s after '
              '%.1f s, server %s on %s; %s' % (
                  self.FEATURE, migration['status'], took, server['status'],
                  self._host_of(server), reason))
        self.assertEqual('error', migration['status'])
        self.assertIn('Host CPU does not provide required features: %s' %
                      self.FEATURE, reason)

        # Nothing moved, nothing started: the guest counts on where it
        # was, the destination has neither a domain nor a file of it.
        self._assert_runs_on(source, server)
        self._assert_keeps_counting(server, boot_id)
        self.assertNoDomainOn(dest, server)
        self.assertEqual(dest_before, sorted(os.listdir(self.paths[dest])))
