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

"""``bench/scale_bench.py --quick`` runs, and leaves nothing behind.

The smoke run builds small hosts on libvirt's test driver and one on
embedded QEMU, with nova's own driver as a baseline. No figure is judged
here: the bench itself compares speed. What is checked is that every call
was timed for every contender and that the bench removes what it made,
also when it is stopped by SIGTERM in the middle of a QEMU host.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from oslotest import base

from tests import process_table

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BENCH = os.path.join(_REPO, 'bench', 'scale_bench.py')
PREFIX = 'pyvirt-scale-bench-'
TIMEOUT = 900
# Not the test's nested temporary directory: QEMU's monitor socket paths
# under an embedded root must stay short (see tests/fixtures/embedded.py).
SYSTEM_TMP = '/tmp'


def qemu_under(paths):
    """PIDs of processes whose command line names one of ``paths``."""
    found = []
    for pid, cmdline in process_table.processes().items():
        if b'qemu-system' in cmdline and any(p.encode() in cmdline
                                             for p in paths):
            found.append(pid)
    return found


class ScaleBenchSmokeTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        # The bench's TMPDIR: what it leaves behind is what is in here.
        self.tmp = tempfile.mkdtemp(prefix='sb-', dir=SYSTEM_TMP)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.env = dict(os.environ, TMPDIR=self.tmp)

    def leftovers(self):
        return set(glob.glob(os.path.join(self.tmp, PREFIX + '*')))

    def run_bench(self, *args):
        return subprocess.run(
            [sys.executable, BENCH, '--quick'] + list(args), cwd=_REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=TIMEOUT, env=self.env)

    def test_quick_run(self):
        result = self.run_bench()
        out = result.stdout
        self.assertEqual(0, result.returncode, out)
        sizes = re.findall(r'^-- (\w+) N=(\d+):', out, re.M)
        expected = [('test', '5'), ('test', '20')]
        if shutil.which('qemu-system-x86_64'):
            expected.append(('qemu', '2'))
        self.assertEqual(expected, sizes)
        # Every call of the test driver's hosts has the three figures.
        for call in ('audit', 'sync', 'uuids', 'imagecache', 'resume',
                     'restart'):
            rows = re.findall(r'^%s +([\d.]+) +([\d.]+) +([\d.]+) ' % call,
                              out, re.M)
            self.assertGreaterEqual(len(rows), 2, '%s: %s' % (call, out))
        self.assertIn('== scale_bench (load average', out)
        self.assertIn('RSS/instance ours', out)
        self.assertNotIn(' failed: ', out)
        self.assertEqual(set(), self.leftovers())
        self.assertEqual([], os.listdir(self.tmp))

    def test_sigterm_removes_everything(self):
        if not shutil.which('qemu-system-x86_64'):
            self.skipTest('QEMU is not installed')
        bench = subprocess.Popen(
            [sys.executable, BENCH, '--quick', '--sizes', '',
             '--qemu-sizes', '2'], cwd=_REPO, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=self.env)
        self.addCleanup(bench.stdout.close)
        deadline = time.monotonic() + TIMEOUT
        while not qemu_under(self.leftovers()):
            self.assertIsNone(bench.poll(), 'the bench ended first')
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        made = self.leftovers()

        bench.send_signal(signal.SIGTERM)
        out = bench.communicate(timeout=TIMEOUT)[0]

        self.assertEqual(128 + signal.SIGTERM, bench.returncode, out)
        self.assertIn('stopped by signal', out)
        self.assertEqual([], os.listdir(self.tmp))
        self.assertEqual([], qemu_under(made))
