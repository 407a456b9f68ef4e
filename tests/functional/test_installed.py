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

"""The installed distribution, used the way nova-compute and operators do.

Each test runs a separate process outside the source tree, so only the
copy of nova-pyvirt installed in this environment (``pip install .``) can be
imported, exactly as on a compute host.
"""

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import tempfile

from oslotest import base

BIN_DIR = os.path.dirname(sys.executable)

_LOAD_DRIVER = """
from nova.virt import driver, virtapi
import nova_pyvirt
import nova.virt.pyvirt
drv = driver.load_compute_driver(virtapi.VirtAPI(), 'pyvirt.PyVirtDriver')
print(type(drv).__module__ + '.' + type(drv).__name__)
print(nova_pyvirt.__file__)
print(nova.virt.pyvirt.__file__)
"""


class TestInstalled(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.cwd = tempfile.mkdtemp(prefix='nova-pyvirt-func-')
        self.addCleanup(os.rmdir, self.cwd)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ('PYTHONPATH', 'PYTHONHOME')}

    def _run(self, argv):
        proc = subprocess.run(
            argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=300)
        self.assertEqual(0, proc.returncode,
                         'stdout:\n%s\nstderr:\n%s' % (proc.stdout,
                                                       proc.stderr))
        return proc.stdout

    def test_console_script_version(self):
        script = os.path.join(BIN_DIR, 'nova-pyvirt')
        self.assertTrue(os.access(script, os.X_OK), script)
        out = self._run([script, 'version'])
        purelib = sysconfig.get_paths()['purelib']
        versions = [d.version for d in
                    importlib.metadata.distributions(path=[purelib])
                    if d.metadata['Name'] == 'nova-pyvirt']
        self.assertEqual(1, len(versions))
        self.assertEqual('nova-pyvirt %s\n' % versions[0], out)

    def test_console_script_help_lists_commands(self):
        out = self._run([os.path.join(BIN_DIR, 'nova-pyvirt'), '--help'])
        self.assertIn('version', out)

    def test_nova_loads_installed_driver(self):
        out = self._run([sys.executable, '-c', _LOAD_DRIVER]).splitlines()
        self.assertEqual('nova_pyvirt.driver.PyVirtDriver', out[0])
        purelib = sysconfig.get_paths()['purelib']
        self.assertEqual(os.path.join(purelib, 'nova_pyvirt', '__init__.py'),
                         out[1])
        self.assertEqual(
            os.path.join(purelib, 'nova', 'virt', 'pyvirt', '__init__.py'),
            out[2])

    def test_config_generator_namespace(self):
        out = self._run([os.path.join(BIN_DIR, 'oslo-config-generator'),
                         '--namespace', 'nova_pyvirt'])
        self.assertIn('[pyvirt]', out.splitlines())
        self.assertIn('#virt_type = kvm', out.splitlines())
