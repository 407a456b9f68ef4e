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

"""The installed ``nova-pyvirt host-report`` on an embedded QEMU driver.

The command runs as a separate process on an embedded root of its own (a
root can be opened by one process at a time); its report is compared with
what this process computes, with the driver's functions, on the shared
embedded connection of ``tests.fixtures.embedded``, which runs the same
QEMU.
"""

import os
import shutil
import subprocess
import sys

import fixtures
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host_facts
from nova_pyvirt.report import resources
from nova_pyvirt.report import traits
from tests.fixtures import embedded

BIN_DIR = os.path.dirname(sys.executable)
QEMU = 'qemu-system-x86_64'
TIMEOUT = 300


class TestHostReport(base.BaseTestCase):

    def setUp(self):
        super(TestHostReport, self).setUp()
        if shutil.which(QEMU) is None:
            self.skipTest('%s is not installed (Debian package '
                          'qemu-system-x86); the embedded QEMU driver '
                          'cannot probe it' % QEMU)
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.instances = os.path.join(self.tmp, 'instances')
        os.mkdir(self.instances)
        self.config_file = os.path.join(self.tmp, 'nova.conf')
        with open(self.config_file, 'w') as handle:
            handle.write('[DEFAULT]\ninstances_path = %s\n'
                         '[pyvirt]\nvirt_type = qemu\n' % self.instances)
        # Only the installed copy is importable outside the source tree.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ('PYTHONPATH', 'PYTHONHOME')}

    def _run(self, uri, *args):
        # subprocess.run kills the command if it outlives the timeout.
        return subprocess.run(
            [os.path.join(BIN_DIR, 'nova-pyvirt'), 'host-report',
             '--config-file', self.config_file, '--connection-uri', uri,
             '--virt-type', 'qemu'] + list(args),
            cwd=self.tmp, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=TIMEOUT)

    def _own_root(self):
        root = os.path.join(self.tmp, 'root')
        os.mkdir(root)
        if os.path.isdir(embedded.PROBE_CACHE):
            # Skips QEMU's capability probe, as the shared root does.
            shutil.copytree(embedded.PROBE_CACHE, os.path.join(root, 'cache'))
        return connection.embedded_uri(root)

    def test_json_report_matches_the_driver(self):
        conn = embedded.get()
        proc = self._run(self._own_root(), '--format', 'json')
        self.assertEqual(0, proc.returncode,
                         'stdout:\n%s\nstderr:\n%s' % (proc.stdout,
                                                       proc.stderr))
        report = jsonutils.loads(proc.stdout)

        self.assertIn(['x86_64', 'qemu', 'hvm'],
                      report['supported_instances'])
        facts = host_facts.from_connection(conn)
        self.assertEqual(
            [list(e) for e in resources.supported_instances(
                facts.capabilities)],
            report['supported_instances'])

        reported = report['traits']
        for trait in ('COMPUTE_STORAGE_BUS_VIRTIO', 'HW_ARCH_X86_64',
                      'COMPUTE_FIRMWARE_BIOS'):
            self.assertIn(trait, reported)
        self.assertEqual(sorted(traits.host_traits(facts, 'qemu')),
                         reported)

        x86 = report['machine_types']['x86_64']
        self.assertRegex(x86['machines']['pc'], r'^pc-i440fx-\d')
        self.assertEqual(x86['machines']['pc'], x86['default'])

        info = conn.getInfo()
        self.assertEqual(info[2], report['inventory']['VCPU']['total'])
        self.assertEqual(info[1], report['inventory']['MEMORY_MB']['total'])
        self.assertIn('DISK_GB', report['inventory'])
        self.assertEqual('none', report['cpu']['mode'])
        self.assertEqual([], report['warnings'])

    def test_root_in_use_is_one_line_error(self):
        # This process holds the shared root: libvirt locks it.
        uri = embedded.uri()
        embedded.get()
        proc = self._run(uri)
        self.assertEqual(1, proc.returncode, proc.stderr)
        self.assertEqual('', proc.stdout)
        errors = [line for line in proc.stderr.splitlines()
                  if line.startswith('nova-pyvirt host-report:')]
        self.assertEqual(1, len(errors), proc.stderr)
        self.assertIn(uri, errors[0])
        self.assertNotIn('Traceback', proc.stderr)
