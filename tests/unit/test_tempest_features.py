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

"""``nova-pyvirt tempest-features``: what tempest is told."""

import contextlib
import io

from nova.virt import driver as nova_driver
from oslotest import base

from nova_pyvirt.cmd import main
from nova_pyvirt.cmd import tempest_features


class TestTempestFeatures(base.BaseTestCase):

    def test_pyvirt_driver(self):
        self.assertEqual([
            ('console_output', True),
            ('pause', True),
            ('suspend', True),
            ('snapshot', True),
            ('shelve', True),
            ('resize', True),
            ('interface_attach', True),
            ('rescue', False),
            ('stable_rescue', False),
            ('change_password', False),
            ('swap_volume', False),
            ('volume_multiattach', False),
            # Live migration is implemented, and whether it runs is the
            # deployment's (two hosts): tempest's own default stays.
            ('spice_console', False),
            ('serial_console', False),
            ('attach_encrypted_volume', False),
        ], tempest_features.features())

    def test_follows_the_driver_class(self):
        class Driver(nova_driver.ComputeDriver):
            capabilities = dict(nova_driver.ComputeDriver.capabilities,
                                supports_attach_interface=False)

            def pause(self, instance):
                pass

            def unpause(self, instance):
                pass

            def suspend(self, context, instance):
                pass

            # resume missing: no suspend.

            def attach_interface(self, *args):
                pass

            def detach_interface(self, *args):
                pass

            def get_spice_console(self, context, instance):
                pass

        result = dict(tempest_features.features(Driver))
        self.assertIs(True, result['pause'])
        self.assertIs(False, result['suspend'])
        self.assertIs(False, result['snapshot'])
        # The methods alone are not enough: nova checks the capability.
        self.assertIs(False, result['interface_attach'])
        # Supported, and up to the deployment (a spice proxy): left out.
        self.assertNotIn('spice_console', result)
        self.assertIs(False, result['vnc_console'])

    def test_command(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main.main(['tempest-features'])
        self.assertEqual(0, status)
        lines = out.getvalue().splitlines()
        self.assertIn('pause True', lines)
        self.assertIn('rescue False', lines)
        self.assertNotIn('live_migration False', lines)
        self.assertEqual(len(tempest_features.features()), len(lines))
