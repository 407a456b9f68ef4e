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

"""The ``nova-pyvirt render-xml`` command, on saved host documents."""

import io
import os

import fixtures
from oslotest import base

from nova_pyvirt.cmd import main
from nova_pyvirt import xml
from tests import corpus
from tests import design_support as support

CAPS = os.path.join(corpus.ROOT, 'capabilities', 'caps-test2.xml')
DOMCAPS = os.path.join(corpus.ROOT, 'domaincaps', 'qemu_8.0.0.x86_64.xml')


class RenderXMLTest(base.BaseTestCase):

    def setUp(self):
        super(RenderXMLTest, self).setUp()
        self.useFixture(support.ConfFixture())

    def run_cli(self, *args):
        out = self.useFixture(fixtures.MonkeyPatch('sys.stdout',
                                                   io.StringIO())).new_value
        err = self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                                   io.StringIO())).new_value
        status = main.main(['render-xml', '--capabilities', CAPS,
                            '--domain-capabilities', DOMCAPS] + list(args))
        return status, out.getvalue(), err.getvalue()

    def test_kvm_defaults(self):
        status, out, err = self.run_cli(
            '--flavor', 'vcpus=2,ram=2048,disk=20', '--virt-type', 'kvm')
        self.assertEqual(0, status, err)
        dom = xml.parse(out)
        self.assertEqual('host-model', dom.cpu.mode)
        self.assertEqual(2048 * 1024, dom.memory_kib)
        self.assertEqual(2, dom.vcpu)
        self.assertEqual('delay', dom.clock.timer('pit').tickpolicy)
        self.assertEqual('catchup', dom.clock.timer('rtc').tickpolicy)
        self.assertFalse(dom.clock.timer('hpet').present)
        self.assertIn('machine type pc-1.2', err)

    def test_windows(self):
        status, out, err = self.run_cli('--virt-type', 'kvm',
                                        '--image-property', 'os_type=windows')
        self.assertEqual(0, status, err)
        dom = xml.parse(out)
        self.assertEqual('localtime', dom.clock.offset)
        self.assertIsNotNone(dom.clock.timer('hypervclock'))

    def test_extra_specs_and_ephemeral(self):
        status, out, err = self.run_cli(
            '--flavor', 'vcpus=4,ram=1024,disk=5,ephemeral=1,'
            'hw:cpu_sockets=2,quota:disk_total_iops_sec=300')
        self.assertEqual(0, status, err)
        dom = xml.parse(out)
        self.assertEqual(2, dom.cpu.topology_sockets)
        self.assertEqual(['vda', 'vdb'], [d.target_dev for d in dom.disks])
        self.assertEqual(300, dom.disks[1].iotune.total_iops_sec)

    def test_bad_inputs_name_the_value(self):
        cases = [
            (['--image-property', 'hw_disk_bus=floppyx'],
             "hw_disk_bus='floppyx'"),
            (['--image-property', 'hw_cpu_cores=-1'], 'hw_cpu_cores=-1'),
            (['--image-property', 'hw_frobnicate=1'], 'hw_frobnicate'),
            (['--flavor', 'vcpus=two'], "vcpus='two'"),
            (['--image-property', 'hw_machine_type=q99'], 'q99'),
        ]
        for args, expected in cases:
            status, out, err = self.run_cli(*args)
            self.assertEqual(2, status, args)
            self.assertEqual('', out)
            self.assertIn(expected, err)
            self.assertIn('error', err)
