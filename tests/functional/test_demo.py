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

"""The README's main job: ``nova-pyvirt demo`` boots a guest and logs in.

The demo runs as its own process (it moves itself into namespaces of its
own, which a test process with threads cannot), on the embedded QEMU
driver with the test guest; the test checks what it printed and that the
host's network and mount table are as they were.
"""

import os
import subprocess
import sys

import fixtures
from oslotest import base
from testtools import content

from tests.fixtures import nova_harness

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TIMEOUT = int(os.environ.get('PYVIRT_DEMO_TIMEOUT', '600'))


def host_links():
    return sorted(os.listdir('/sys/class/net'))


def host_mounts():
    with open('/proc/self/mountinfo') as handle:
        return sorted(line.split()[4] for line in handle)


class DemoTest(base.BaseTestCase):

    def test_demo_logs_into_its_guest_and_leaves_nothing(self):
        if os.geteuid() != 0:
            self.skipTest('the demo needs root for its network namespace')
        state = self.useFixture(fixtures.TempDir()).path
        links, mounts = host_links(), host_mounts()
        # As tools/demo.sh runs it: no warning filter of the caller's.
        env = dict(os.environ, LIBVIRT_LOG_OUTPUTS='3:file:%s' % os.path.join(
            state, 'libvirt.log'))
        env.pop('PYTHONWARNINGS', None)
        proc = subprocess.run(
            [sys.executable, '-m', 'nova_pyvirt.cmd.demo', '--state-dir',
             state, '--guest-image', nova_harness.guest_image_dir()],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=TIMEOUT)
        self.addDetail('demo-output', content.text_content(proc.stdout))
        self.assertEqual(0, proc.returncode)
        lines = [line.strip() for line in proc.stdout.splitlines()]
        steps = [line for line in lines if line.startswith('demo [')]
        # The first line is the demo's first step: no eventlet notice, no
        # warning, before it.
        self.assertEqual(steps[0], lines[0])
        self.assertNotIn('Eventlet is deprecated', proc.stdout)
        self.assertEqual(['demo [%d/9]' % n for n in range(1, 10)],
                         [step.split(']')[0] + ']' for step in steps])
        # The login's own output: the guest's kernel, its hostname from the
        # config drive and the user data's marker.
        self.assertTrue(any(line.startswith('Linux demo-vm ')
                            for line in lines), proc.stdout)
        after = lines.index('$ cat /run/demo-user-data')
        self.assertTrue(lines[after + 1].startswith('user data ran at'))
        self.assertIn('domains left: 0, instance files left: no', lines)
        self.assertTrue(lines[-1].startswith('demo: OK in '), lines[-1])
        self.assertEqual(links, host_links())
        self.assertEqual(mounts, host_mounts())
