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

"""bench/migration_bench.py still imports and its helpers still work.

No sshd and no timing here: the bench itself does that.
"""

import importlib.util
import os
import subprocess

import fixtures
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.migration import transport

_BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                      '..', 'bench', 'migration_bench.py')
MiB = 1024 * 1024


def _load_bench():
    spec = importlib.util.spec_from_file_location('migration_bench', _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MigrationBenchSmokeTest(base.BaseTestCase):

    @classmethod
    def setUpClass(cls):
        super(MigrationBenchSmokeTest, cls).setUpClass()
        cls.bench = _load_bench()

    def test_arguments(self):
        args = self.bench.parse_args([])
        self.assertEqual((7, 10, 256), (args.rounds, args.virtual_gib,
                                        args.written_mib))
        args = self.bench.parse_args(['--quick'])
        self.assertEqual((1, 1, 32), (args.rounds, args.virtual_gib,
                                      args.written_mib))

    def test_overlay_has_random_data_and_a_backing_file(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        base_path, overlay = self.bench.make_overlay(tmp, 64 * MiB, 2 * MiB)
        info = jsonutils.loads(subprocess.run(
            ['qemu-img', 'info', '--output=json', overlay], check=True,
            stdout=subprocess.PIPE).stdout)
        self.assertEqual('qcow2', info['format'])
        self.assertEqual(base_path, info['backing-filename'])
        self.assertEqual(64 * MiB, info['virtual-size'])
        self.assertGreaterEqual(os.stat(overlay).st_blocks * 512, 2 * MiB)

    def test_scp_gets_the_transports_ssh_options(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        bench = self.bench.Bench(tmp)
        bench.ssh = transport.SshSettings(
            user='root', port=2222, identity_file='/k/id',
            known_hosts_file='/k/known')
        argv = bench.scp_argv('/a/raw', '/b/raw')
        self.assertEqual(['scp', '-q'], argv[:2])
        self.assertEqual(['-P', '2222'], argv[argv.index('-P'):][:2])
        self.assertIn('User=root', argv)
        self.assertIn('IdentityFile="/k/id"', argv)
        self.assertIn('UserKnownHostsFile="/k/known"', argv)
        self.assertIn('BatchMode=yes', argv)
        self.assertEqual(['--', '/a/raw', '127.0.0.2:/b/raw'], argv[-3:])
