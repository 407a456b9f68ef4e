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
from nova.network import model as network_model
from oslotest import base

from nova_pyvirt.cmd import main
from nova_pyvirt.design import validation
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

    def assertOneLineError(self, status, out, err, *expected):
        self.assertEqual(2, status, err)
        self.assertEqual('', out)
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertTrue(err.startswith('nova-pyvirt render-xml: error: '),
                        err)
        for text in expected:
            self.assertIn(text, err)

    def test_flavor_sizes_libvirt_would_refuse(self):
        # The three commands: each names the field and the limit.
        vcpu_max = xml.parse(corpus.read(DOMCAPS)).vcpu_max
        cases = [
            ('vcpus=0,ram=128,disk=1',
             ['--flavor vcpus=0: Flavor vcpus=0', 'at least 1 vCPU']),
            ('vcpus=2,ram=-5,disk=1',
             ['--flavor ram=-5: Flavor memory_mb=-5',
              '1 to %d MiB' % validation.MAX_MEMORY_MIB]),
            ('vcpus=99999,ram=128,disk=1',
             ['--flavor vcpus=99999: Flavor vcpus=99999',
              '1 to %d vCPUs' % vcpu_max]),
        ]
        for flavor, expected in cases:
            status, out, err = self.run_cli('--flavor', flavor)
            self.assertOneLineError(status, out, err, *expected)

    def test_refusals_name_the_argument(self):
        cases = [
            (['--flavor', 'vcpus=2,hw:cpu_policy=dedicated'],
             ['--flavor hw:cpu_policy:', "hw:cpu_policy='dedicated'"]),
            (['--flavor', 'vcpus=2,hw:mem_page_size=large'],
             ['--flavor hw:mem_page_size:']),
            (['--image-property', 'hw_numa_nodes=2'],
             ['--image-property hw_numa_nodes:']),
            (['--port', 'tap:%s:01:00:5e:00:00:01' % PORT1],
             ['--port: Port %s: address=' % PORT1, 'unicast']),
        ]
        for args, expected in cases:
            status, out, err = self.run_cli(*args)
            self.assertOneLineError(status, out, err, *expected)

    def test_usage_errors_are_one_line(self):
        err = self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                                   io.StringIO())).new_value
        exc = self.assertRaises(SystemExit, main.main,
                                ['render-xml', '--virt-type', 'xen'])
        self.assertEqual(2, exc.code)
        self.assertEqual(1, len(err.getvalue().splitlines()),
                         err.getvalue())
        self.assertIn('argument --virt-type', err.getvalue())


PORT1 = '3f0c6a52-8d0e-4b7b-9d7c-2a1e5c4b9f10'
PORT2 = '7a1d2e3f-4b5c-4d6e-8f70-8192a3b4c5d6'


class RenderPortsTest(base.BaseTestCase):
    """``--port`` and ``--network-info``: the guest's <interface>s."""

    def setUp(self):
        super().setUp()
        self.useFixture(support.ConfFixture())

    run_cli = RenderXMLTest.run_cli

    def test_ovs_ports_direct_and_hybrid(self):
        status, out, err = self.run_cli(
            '--port', 'ovs:%s:FA:16:3E:12:34:56:mtu=1450' % PORT1,
            '--port', 'ovs:%s:fa:16:3e:00:00:02:hybrid' % PORT2,
            '--image-property', 'hw_vif_model=e1000')
        self.assertEqual(0, status, err)
        direct, hybrid = xml.parse(out).interfaces
        self.assertEqual('fa:16:3e:12:34:56', direct.mac_address)
        self.assertEqual('br-int', direct.source_bridge)
        self.assertEqual('openvswitch', direct.virtualport_type)
        self.assertEqual(PORT1, direct.virtualport_interfaceid)
        self.assertEqual(('tap' + PORT1)[:14], direct.target_dev)
        self.assertEqual(1450, direct.mtu)
        self.assertEqual('e1000', direct.model)
        self.assertEqual(('qbr' + PORT2)[:14], hybrid.source_bridge)
        self.assertIsNone(hybrid.virtualport_type)

    def test_tap_port(self):
        status, out, err = self.run_cli(
            '--port', 'tap:%s:fa:16:3e:00:00:03' % PORT1)
        self.assertEqual(0, status, err)
        [nic] = xml.parse(out).interfaces
        self.assertEqual('ethernet', nic.type)
        self.assertFalse(nic.target_managed)

    def test_network_info_file_then_ports(self):
        vif = support.vif(hybrid=True, id=PORT2, ovs_interfaceid=PORT2,
                          address='fa:16:3e:00:00:09')
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'nw_info.json')
        with open(path, 'w') as handle:
            handle.write(network_model.NetworkInfo([vif]).json())
        status, out, err = self.run_cli(
            '--network-info', path,
            '--port', 'ovs:%s:fa:16:3e:00:00:01' % PORT1)
        self.assertEqual(0, status, err)
        first, second = xml.parse(out).interfaces
        self.assertEqual('fa:16:3e:00:00:09', first.mac_address)
        self.assertEqual(('qbr' + PORT2)[:14], first.source_bridge)
        self.assertEqual(1450, first.mtu)
        self.assertEqual(PORT1, second.virtualport_interfaceid)

    def test_bad_ports_name_the_value(self):
        cases = [
            (['--port', 'ovs:%s' % PORT1], 'TYPE:PORT_ID:MAC'),
            (['--port', 'ovs:not-a-uuid:fa:16:3e:00:00:01'], 'not-a-uuid'),
            (['--port', 'ovs:%s:fa:16:3e:00:00:zz' % PORT1],
             'fa:16:3e:00:00:zz'),
            (['--port', 'ovs:%s:fa:16:3e:00:00:01:fast' % PORT1], 'fast'),
            (['--port', 'vhostuser:%s:fa:16:3e:00:00:01' % PORT1],
             'vhostuser'),
            (['--network-info', '/nonexistent/nw.json'], 'nw.json'),
        ]
        for args, expected in cases:
            status, out, err = self.run_cli(*args)
            self.assertEqual(2, status, args)
            self.assertEqual('', out)
            self.assertIn(expected, err)

    def test_help_documents_the_port_option(self):
        out = self.useFixture(fixtures.MonkeyPatch('sys.stdout',
                                                   io.StringIO())).new_value
        self.assertRaises(SystemExit, main.main, ['render-xml', '--help'])
        self.assertIn('--port TYPE:PORT_ID:MAC[:hybrid]', out.getvalue())
        self.assertIn('--network-info FILE', out.getvalue())
