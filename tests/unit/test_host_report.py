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

"""``nova-pyvirt host-report`` on libvirt's test driver.

``test:///default`` runs in this process, with no daemon: an i686 host
with i686 guests (os types hvm and xen) of domain type ``test``, and no
domain capabilities, so no device traits.
"""

import io
import os

import fixtures
import libvirt
import os_traits
from oslo_serialization import jsonutils
from oslo_utils import units
from oslotest import base

from nova_pyvirt.cmd import host_report as cmd
from nova_pyvirt.cmd import main
from nova_pyvirt.hypervisor import host as host_mod
from nova_pyvirt.hypervisor import host_facts
from nova_pyvirt.report import host_summary
from nova_pyvirt.report import traits
from tests import design_support as support

URI = 'test:///default'
HEADINGS = ('Host', 'Supported instances', 'Traits', 'CPU', 'Machine types',
            'Placement inventory')


class HostReportCommandTest(base.BaseTestCase):

    def setUp(self):
        super(HostReportCommandTest, self).setUp()
        self.conf = self.useFixture(support.ConfFixture()).conf
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.instances = os.path.join(self.tmp, 'instances')
        os.mkdir(self.instances)
        self.config_file = self.write_config(
            '[DEFAULT]\ninstances_path = %s\n[pyvirt]\nvirt_type = test\n'
            % self.instances)

    def write_config(self, text, name='nova.conf'):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    def run_cli(self, *args, **kwargs):
        out = self.useFixture(fixtures.MonkeyPatch('sys.stdout',
                                                   io.StringIO())).new_value
        err = self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                                   io.StringIO())).new_value
        config_file = kwargs.get('config_file', self.config_file)
        status = main.main(['host-report', '--config-file', config_file] +
                           list(args))
        return status, out.getvalue(), err.getvalue()

    def report(self, *args):
        status, out, err = self.run_cli('--format', 'json', *args)
        self.assertEqual(0, status, err)
        return jsonutils.loads(out)

    def node_info(self):
        conn = libvirt.open(URI)
        self.addCleanup(conn.close)
        return conn.getInfo()

    def test_registered(self):
        self.assertIn('host-report', [c.name for c in main.commands()])

    def test_supported_instances(self):
        report = self.report()
        self.assertIn(['i686', 'test', 'hvm'], report['supported_instances'])
        self.assertIn(['i686', 'test', 'xen'], report['supported_instances'])
        self.assertEqual(URI, report['uri'])
        self.assertEqual('test', report['virt_type'])
        self.assertEqual('test', report['hypervisor_type'])

    def test_traits(self):
        report = self.report()
        reported = report['traits']
        self.assertEqual(sorted(reported), reported)
        self.assertIn('HW_ARCH_I686', reported)
        # os-traits has no emulation trait for i686 (today).
        self.assertEqual('COMPUTE_ARCH_I686' in os_traits.get_traits(),
                         'COMPUTE_ARCH_I686' in reported)
        self.assertEqual([], [t for t in reported
                              if t.startswith('COMPUTE_STORAGE_BUS_')])
        self.assertEqual([], report['warnings'])

    def test_inventory_matches_libvirt(self):
        info = self.node_info()
        stat = os.statvfs(self.instances)
        report = self.report()
        inventory = report['inventory']
        self.assertEqual({'VCPU', 'MEMORY_MB', 'DISK_GB'}, set(inventory))
        self.assertEqual(info[2], inventory['VCPU']['total'])
        self.assertEqual(info[2], inventory['VCPU']['max_unit'])
        self.assertEqual(info[1], inventory['MEMORY_MB']['total'])
        self.assertEqual(self.conf.reserved_host_memory_mb,
                         inventory['MEMORY_MB']['reserved'])
        self.assertEqual(self.conf.initial_cpu_allocation_ratio,
                         inventory['VCPU']['allocation_ratio'])
        self.assertEqual(stat.f_frsize * stat.f_blocks // units.Gi,
                         inventory['DISK_GB']['total'])
        for rc in inventory.values():
            self.assertEqual(1, rc['min_unit'])
            self.assertEqual(1, rc['step_size'])

    def test_versions(self):
        conn = libvirt.open(URI)
        self.addCleanup(conn.close)
        report = self.report()
        self.assertEqual(conn.getLibVersion(),
                         report['libvirt_version']['number'])
        self.assertEqual(conn.getVersion(),
                         report['hypervisor_version']['number'])
        self.assertEqual(host_summary.dotted_version(conn.getVersion()),
                         report['hypervisor_version']['dotted'])
        self.assertEqual(conn.getHostname(), report['hypervisor_hostname'])

    def test_cpu_and_machine_types(self):
        report = self.report()
        self.assertEqual('none', report['cpu']['mode'])
        self.assertIsNone(report['cpu']['mode_configured'])
        self.assertEqual('i686', report['cpu']['host']['arch'])
        self.assertIsNone(report['cpu']['host_model'])
        # The test driver lists no machine types.
        self.assertEqual({'i686': {'default': None, 'machines': {}}},
                         report['machine_types'])

    def test_text_has_every_section(self):
        status, out, err = self.run_cli()
        self.assertEqual(0, status, err)
        self.assertEqual('', err)
        lines = out.splitlines()
        for heading in HEADINGS:
            self.assertTrue(any(line.startswith(heading) for line in lines),
                            '%s missing in:\n%s' % (heading, out))
        self.assertIn('  HW_ARCH_I686', lines)
        self.assertIn(URI, out)
        self.assertNotIn('Warnings', out)
        self.assertRegex(out, r'(?m)^  VCPU +%d ' % self.node_info()[2])

    def test_custom_cpu_mode_problem_is_a_warning(self):
        config = self.write_config(
            '[DEFAULT]\ninstances_path = %s\n[pyvirt]\nvirt_type = test\n'
            'cpu_mode = custom\ncpu_models = Nehalem\n' % self.instances,
            name='custom.conf')
        status, out, err = self.run_cli(config_file=config)
        self.assertEqual(0, status, err)
        self.assertIn('mode:        custom ([pyvirt] cpu_mode)', out)
        self.assertIn('models:      Nehalem', out)
        self.assertIn('Warnings', out)
        self.assertIn('Nehalem', out.split('Warnings')[1])

    def test_virt_type_the_host_does_not_run(self):
        report = self.report('--virt-type', 'qemu', '--uri', URI)
        self.assertEqual('qemu', report['virt_type'])
        self.assertEqual({}, report['machine_types'])
        self.assertTrue(any("domain type 'qemu'" in w
                            for w in report['warnings']), report['warnings'])

    def test_missing_instances_path_is_not_created(self):
        missing = os.path.join(self.tmp, 'not-yet')
        config = self.write_config(
            '[DEFAULT]\ninstances_path = %s\n[pyvirt]\nvirt_type = test\n'
            % missing,
            name='missing.conf')
        status, out, err = self.run_cli('--format', 'json',
                                        config_file=config)
        self.assertEqual(0, status, err)
        report = jsonutils.loads(out)
        self.assertFalse(os.path.exists(missing))
        self.assertNotIn('DISK_GB', report['inventory'])
        self.assertIsNone(report['usage']['local_gb'])
        self.assertTrue(any(missing in w for w in report['warnings']))

    def assertOneLineError(self, status, out, err, *expected):
        self.assertNotEqual(0, status)
        self.assertEqual('', out)
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertTrue(err.startswith('nova-pyvirt host-report: error: '),
                        err)
        for text in expected:
            self.assertIn(text, err)
        self.assertNotIn('Traceback', err)

    def test_unreachable_uri(self):
        uri = 'test:///%s/no-such-node.xml' % self.tmp
        status, out, err = self.run_cli('--connection-uri', uri)
        self.assertOneLineError(status, out, err, uri)

    def test_unknown_uri_scheme(self):
        status, out, err = self.run_cli('--uri', 'nosuchdriver:///x')
        self.assertOneLineError(status, out, err, 'nosuchdriver:///x')

    def test_bad_virt_type_argument(self):
        status, out, err = self.run_cli('--virt-type', 'xen')
        self.assertOneLineError(status, out, err, '--virt-type', "'xen'")
        self.assertEqual(2, status)

    def test_bad_virt_type_in_config(self):
        config = self.write_config('[pyvirt]\nvirt_type = xen\n',
                                   name='bad.conf')
        status, out, err = self.run_cli(config_file=config)
        self.assertOneLineError(status, out, err, 'virt_type', "'xen'")

    def test_bad_format_argument(self):
        err = self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                                   io.StringIO())).new_value
        exc = self.assertRaises(SystemExit, main.main,
                                ['host-report', '--format', 'xml'])
        self.assertEqual(2, exc.code)
        self.assertOneLineError(exc.code, '', err.getvalue(),
                                'argument --format', "'xml'")

    def test_options_every_guest_would_fail_on_are_a_warning(self):
        config = self.write_config(
            '[DEFAULT]\ninstances_path = %s\n[pyvirt]\nvirt_type = test\n'
            'vnc_keymap = de<\n' % self.instances, name='keymap.conf')
        status, out, err = self.run_cli('--format', 'json',
                                        config_file=config)
        self.assertEqual(0, status, err)
        warnings = jsonutils.loads(out)['warnings']
        self.assertTrue(any('[pyvirt] vnc_keymap = de<' in w
                            for w in warnings), warnings)

    def test_missing_config_file(self):
        missing = os.path.join(self.tmp, 'absent.conf')
        status, out, err = self.run_cli(config_file=missing)
        self.assertOneLineError(status, out, err, missing)

    def test_connection_closed_on_error(self):
        cleanups = []
        real_cleanup = host_mod.Host.cleanup

        def cleanup(host):
            cleanups.append(host.uri)
            real_cleanup(host)

        self.useFixture(fixtures.MockPatchObject(host_mod.Host, 'cleanup',
                                                 cleanup))
        self.useFixture(fixtures.MockPatchObject(
            host_summary, 'gather',
            side_effect=libvirt.libvirtError('lost the connection')))
        status, out, err = self.run_cli()
        self.assertOneLineError(status, out, err, URI, 'lost the connection')
        self.assertEqual([URI], cleanups)

    def test_connection_closed_after_report(self):
        hosts = []
        real_init = host_mod.Host.__init__

        def init(host, *args, **kwargs):
            hosts.append(host)
            real_init(host, *args, **kwargs)

        self.useFixture(fixtures.MockPatchObject(host_mod.Host, '__init__',
                                                 init))
        status, out, err = self.run_cli()
        self.assertEqual(0, status, err)
        self.assertEqual(1, len(hosts))
        self.assertIsNone(hosts[0]._conn)


class GatherTest(base.BaseTestCase):
    """The report holds what the driver's own functions compute."""

    def setUp(self):
        super(GatherTest, self).setUp()
        self.fixture = self.useFixture(support.ConfFixture())
        self.fixture.set(virt_type='test')
        self.fixture.set(group='DEFAULT', instances_path=self.useFixture(
            fixtures.TempDir()).path)
        self.host = host_mod.Host(URI)
        self.host.initialize()
        self.addCleanup(self.host.cleanup)

    def test_traits_are_the_drivers(self):
        report = host_summary.gather(self.host, self.fixture.conf, 'test')
        conn = libvirt.open(URI)
        self.addCleanup(conn.close)
        expected = traits.host_traits(host_facts.from_connection(conn),
                                      'test')
        self.assertEqual(sorted(expected), report['traits'])

    def test_json_serializable(self):
        report = host_summary.gather(self.host, self.fixture.conf, 'test')
        self.assertEqual(report, jsonutils.loads(jsonutils.dumps(report)))


class HelpersTest(base.BaseTestCase):

    def test_dotted_version(self):
        self.assertEqual('7.2.0', host_summary.dotted_version(7002000))
        self.assertEqual('9.0.0', host_summary.dotted_version(9000000))
        self.assertEqual('0.0.2', host_summary.dotted_version(2))

    def test_machine_sort_key(self):
        names = ['pc-q35-2.10', 'pc-i440fx-2.9', 'pc', 'pc-q35-2.9',
                 'pc-i440fx-10.0']
        self.assertEqual(
            ['pc', 'pc-i440fx-2.9', 'pc-i440fx-10.0', 'pc-q35-2.9',
             'pc-q35-2.10'],
            sorted(names, key=host_summary.machine_sort_key))

    def test_virt_types_follow_the_option(self):
        self.assertEqual(['kvm', 'qemu', 'test'], cmd.virt_types())

    def test_machine_types_text(self):
        machines = {'pc': 'pc-i440fx-7.2', 'pc-i440fx-7.2': 'pc-i440fx-7.2',
                    'q35': 'pc-q35-7.2', 'pc-q35-7.2': 'pc-q35-7.2'}
        report = {'machine_types': {
            'i686': {'default': 'pc-i440fx-7.2', 'machines': machines},
            'x86_64': {'default': 'pc-q35-7.2', 'machines': machines}}}
        self.assertEqual([
            'Machine types (no traits exist for them; for information)',
            '  i686: default pc-i440fx-7.2',
            '    aliases: pc -> pc-i440fx-7.2, q35 -> pc-q35-7.2',
            '    machine types (2):',
            '      pc-i440fx-7.2, pc-q35-7.2',
            '  x86_64: default pc-q35-7.2',
            '    aliases: pc -> pc-i440fx-7.2, q35 -> pc-q35-7.2',
            '    machine types (2): as i686',
        ], cmd._machine_types_section(report))
