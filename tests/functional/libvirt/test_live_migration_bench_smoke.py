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

"""``bench/live_migration_bench.py --quick`` runs, and leaves nothing behind.

The smoke run starts two libvirtds over TLS and moves one dirtying guest
from one to the other through the driver and once through bare
``migrateToURI3``. No timing is judged here (the machine is shared): what
is checked is that every figure was printed for both contenders, that the
block migration's byte count was judged, and that the bench removed what
it made (daemons, guests, QEMU processes, files), also when it is stopped
by SIGTERM while a guest runs.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from oslotest import base

from tests.fixtures import remote_libvirtd
from tests import process_table

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BENCH = os.path.join(_REPO, 'bench', 'live_migration_bench.py')
TIMEOUT = 900
# Short paths: QEMU's monitor sockets live under the daemons' directories.
SYSTEM_TMP = '/tmp'
ROUND = re.compile(
    r'^  round 1 (driver|libvirt) +([\d.]+) s, gap +(\d+) ms, libvirt '
    r'downtime (\d+) ms, memory ([\d.]+) MiB, disk ([\d.]+) MiB of '
    r'([\d.]+) MiB allocated, dirty rate (\d+) MB/s', re.M)


def processes_under(path):
    """PIDs of processes whose command line names ``path``."""
    return sorted(pid for pid, cmdline in process_table.processes().items()
                  if path.encode() in cmdline and pid != os.getpid())


class LiveMigrationBenchSmokeTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        reason = remote_libvirtd.unavailable(tls=True)
        if reason:
            self.skipTest(reason)
        if not shutil.which('qemu-system-x86_64'):
            self.skipTest('QEMU is not installed')
        # The bench's TMPDIR: what it leaves behind is what is in here.
        self.tmp = tempfile.mkdtemp(prefix='lmb-', dir=SYSTEM_TMP)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.env = dict(os.environ, TMPDIR=self.tmp)

    def assertNothingLeft(self, out):
        self.assertEqual([], os.listdir(self.tmp), out)
        self.assertEqual([], processes_under(self.tmp), out)

    def test_quick_run(self):
        result = subprocess.run(
            [sys.executable, BENCH, '--quick'], cwd=_REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=TIMEOUT, env=self.env)
        out = result.stdout
        self.assertEqual(0, result.returncode, out)

        rounds = {m.group(1): m.groups()[1:] for m in ROUND.finditer(out)}
        self.assertEqual({'driver', 'libvirt'}, set(rounds), out)
        for contender, (seconds, gap, downtime, memory, disk, allocated,
                        _rate) in rounds.items():
            # Real figures: the guest moved, paused, its memory and the
            # data written into its overlay (8 MiB) were copied.
            self.assertGreater(float(seconds), 0, out)
            self.assertGreater(int(gap), 0, out)
            self.assertGreater(float(memory), 0, out)
            self.assertGreaterEqual(float(disk), 8.0, out)
            self.assertGreaterEqual(float(allocated), 8.0, out)
        self.assertIn('the driver called migrateToURI3(qemu+tls://', out)
        self.assertRegex(out, r'(?m)^driver +1 +[\d.]+ ')
        self.assertRegex(out, r'(?m)^libvirt +1 +[\d.]+ ')
        self.assertRegex(out, r'(?m)^ratio driver / libvirt: [\d.]+ ')
        self.assertRegex(out, r'(?m)^driver / libvirt time .* INFO$')
        self.assertRegex(out, r'(?m)^disk copied / allocated .* PASS$')
        self.assertRegex(out, r'(?m)^  driver downtime +gap \d+ ms, '
                              r'libvirt \d+ ms ')
        self.assertRegex(out, r'(?m)^  libvirt downtime +gap \d+ ms, '
                              r'libvirt \d+ ms ')
        self.assertNothingLeft(out)

    def test_sigterm_removes_everything(self):
        bench = subprocess.Popen(
            [sys.executable, BENCH, '--quick'], cwd=_REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=self.env)
        self.addCleanup(bench.stdout.close)
        deadline = time.monotonic() + TIMEOUT
        # Stopped once a guest runs (its QEMU names the bench's files).
        while not any(b'qemu-system' in process_table.processes().get(
                pid, b'') for pid in processes_under(self.tmp)):
            self.assertIsNone(bench.poll(), 'the bench ended first')
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)

        bench.send_signal(signal.SIGTERM)
        out = bench.communicate(timeout=TIMEOUT)[0]

        self.assertEqual(128 + signal.SIGTERM, bench.returncode, out)
        self.assertNothingLeft(out)
