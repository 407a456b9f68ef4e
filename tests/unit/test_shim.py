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

"""nova finds the driver through the installed ``nova.virt.pyvirt`` shim.

These tests need nova-pyvirt installed as a release is (``pip install .``,
which tools/setup.sh and tox do): the shim only exists inside nova's
installed package directory, never in this source tree's import path.
"""

import importlib.metadata
import os
import sysconfig

from nova.virt import driver
from nova.virt import virtapi
from oslotest import base

import nova_pyvirt.conf
import nova_pyvirt.driver

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

_NOT_INSTALLED = ('nova.virt.pyvirt is not importable: install nova-pyvirt '
                  'into this environment (pip install ., tools/setup.sh or '
                  'tox) before running the tests')


class TestShim(base.BaseTestCase):

    def _import_shim(self):
        try:
            import nova.virt.pyvirt as shim
        except ImportError as exc:
            self.fail('%s: %s' % (_NOT_INSTALLED, exc))
        return shim

    def test_shim_is_inside_installed_nova(self):
        shim = self._import_shim()
        nova_virt_dir = os.path.dirname(os.path.abspath(driver.__file__))
        shim_file = os.path.abspath(shim.__file__)
        self.assertEqual(os.path.join(nova_virt_dir, 'pyvirt', '__init__.py'),
                         shim_file)
        self.assertNotEqual(
            os.path.join(REPO, 'nova', 'virt', 'pyvirt', '__init__.py'),
            shim_file)

    def test_shim_reexports_driver_only(self):
        shim = self._import_shim()
        self.assertEqual(['PyVirtDriver'], shim.__all__)
        self.assertIs(nova_pyvirt.driver.PyVirtDriver, shim.PyVirtDriver)

    def test_load_compute_driver(self):
        self._import_shim()
        api = virtapi.VirtAPI()
        drv = driver.load_compute_driver(api, 'pyvirt.PyVirtDriver')
        self.assertIsInstance(drv, nova_pyvirt.driver.PyVirtDriver)
        self.assertIsInstance(drv, driver.ComputeDriver)
        self.assertIs(api, drv.virtapi)

    def test_installed_distribution_owns_no_nova_package_files(self):
        # Only the installed metadata: a pip build in the source tree leaves
        # nova_pyvirt.egg-info there, which importlib would find first.
        purelib = sysconfig.get_paths()['purelib']
        dists = [d for d in importlib.metadata.distributions(path=[purelib])
                 if d.metadata['Name'] == 'nova-pyvirt']
        self.assertEqual(1, len(dists), _NOT_INSTALLED)
        files = {str(f) for f in dists[0].files}
        self.assertIn('nova/virt/pyvirt/__init__.py', files)
        self.assertNotIn('nova/__init__.py', files)
        self.assertNotIn('nova/virt/__init__.py', files)
        # nova's own package files are still nova's.
        nova_files = {str(f) for f in
                      importlib.metadata.distribution('nova').files}
        self.assertIn('nova/__init__.py', nova_files)
        self.assertIn('nova/virt/__init__.py', nova_files)

    def test_installed_config_entry_point(self):
        eps = importlib.metadata.entry_points(
            group='oslo.config.opts', name='nova_pyvirt')
        self.assertEqual(1, len(eps), _NOT_INSTALLED)
        self.assertIs(nova_pyvirt.conf.list_opts, list(eps)[0].load())
