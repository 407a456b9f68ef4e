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

"""The [pyvirt] option group: registration, validation, sample config."""

import os
import tempfile

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_config import generator
from oslotest import base

import nova.conf

import nova_pyvirt.conf as pyvirt_conf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GENERATOR_CONF = os.path.join(
    REPO, 'etc', 'nova-pyvirt', 'nova-pyvirt-config-generator.conf')

# The options this test knows about; others may be added to the group.
EXPECTED_OPTS = {
    'virt_type', 'connection_uri', 'cpu_mode', 'cpu_models',
    'cpu_model_extra_flags', 'hw_machine_type', 'images_type',
    'images_volume_group', 'iscsi_transport', 'nfs_transport',
    'nfs_mount_point_base', 'nfs_mount_options', 'mem_stats_period_seconds',
    'wait_soft_reboot_seconds', 'live_device_detach_timeout',
}

# Options [pyvirt] had that nova has too, and nova's replacing each.
REPLACED_BY_NOVA = {
    'instances_path': ('DEFAULT', 'instances_path'),
    'preallocate_images': ('DEFAULT', 'preallocate_images'),
    'image_cache_subdirectory_name': ('image_cache', 'subdirectory_name'),
    'remove_unused_base_images_after': (
        'image_cache', 'remove_unused_original_minimum_age_seconds'),
    'volume_clear': ('libvirt', 'volume_clear'),
    'remote_filesystem_transport': ('libvirt',
                                    'remote_filesystem_transport'),
}


class TestListOpts(base.BaseTestCase):

    def test_groups(self):
        # [pyvirt], then the oslo.privsep options of the driver's daemon.
        listing = pyvirt_conf.list_opts()
        self.assertEqual(['pyvirt', 'pyvirt_sys_admin'],
                         [getattr(g, 'name', g) for g, _opts in listing])
        group, opts = listing[0]
        names = [o.name for o in opts]
        self.assertEqual(sorted(set(names)), sorted(names))
        self.assertTrue(EXPECTED_OPTS.issubset(names),
                        EXPECTED_OPTS.difference(names))

    def test_every_option_has_help(self):
        for opt in pyvirt_conf.list_opts()[0][1]:
            self.assertTrue(opt.help and opt.help.strip(), opt.name)


class TestNovaConf(base.BaseTestCase):
    """Importing nova_pyvirt.conf registers the group on nova's CONF."""

    def setUp(self):
        super().setUp()
        self.flags = self.useFixture(config_fixture.Config(nova.conf.CONF))

    def test_registered_on_nova_conf(self):
        self.assertIs(nova.conf.CONF, pyvirt_conf.CONF)
        self.assertIn('pyvirt', nova.conf.CONF)
        for name in EXPECTED_OPTS:
            self.assertIn(name, nova.conf.CONF.pyvirt)

    def test_no_option_shadows_novas(self):
        for name, (group, nova_name) in REPLACED_BY_NOVA.items():
            self.assertNotIn(name, nova.conf.CONF.pyvirt)
            self.assertIn((group, nova_name), pyvirt_conf.NOVA_OPTIONS)

    def test_nova_options_are_registered(self):
        # import nova.conf registers them on the same CONF.
        for group, name in pyvirt_conf.NOVA_OPTIONS:
            section = (nova.conf.CONF if group == 'DEFAULT'
                       else nova.conf.CONF[group])
            self.assertIn(name, section, '[%s] %s' % (group, name))

    def test_defaults(self):
        conf = nova.conf.CONF.pyvirt
        self.assertEqual('kvm', conf.virt_type)
        self.assertEqual('', conf.connection_uri)
        self.assertIsNone(conf.cpu_mode)
        self.assertEqual([], conf.cpu_models)
        self.assertEqual([], conf.cpu_model_extra_flags)
        self.assertIsNone(conf.hw_machine_type)
        self.assertEqual('qcow2', conf.images_type)
        self.assertIsNone(conf.images_volume_group)
        self.assertEqual('kernel', conf.iscsi_transport)
        self.assertEqual('mount', conf.nfs_transport)
        self.assertEqual(10, conf.mem_stats_period_seconds)
        self.assertEqual(120, conf.wait_soft_reboot_seconds)
        self.assertEqual(30, conf.live_device_detach_timeout)

    def test_override(self):
        self.flags.config(group='pyvirt', virt_type='qemu',
                          connection_uri='qemu:///embed?root=/tmp/x')
        self.assertEqual('qemu', nova.conf.CONF.pyvirt.virt_type)
        self.assertEqual('qemu:///embed?root=/tmp/x',
                         nova.conf.CONF.pyvirt.connection_uri)

    def test_choices_enforced(self):
        self.assertRaises(ValueError, self.flags.config,
                          group='pyvirt', virt_type='xen')
        self.assertRaises(ValueError, self.flags.config,
                          group='pyvirt', images_type='rbd')
        self.assertRaises(ValueError, self.flags.config,
                          group='pyvirt', cpu_mode='maximum')


class TestConfigFile(base.BaseTestCase):
    """Values parsed from a file, on a private ConfigOpts."""

    def _load(self, text):
        conf = cfg.ConfigOpts()
        pyvirt_conf.register_opts(conf)
        pyvirt_conf.register_opts(conf)  # a second call is harmless
        fd, path = tempfile.mkstemp(suffix='.conf')
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, 'w') as f:
            f.write('[pyvirt]\n' + text)
        conf(['--config-file', path], project='nova-pyvirt',
             default_config_files=[], default_config_dirs=[])
        return conf

    def test_lists(self):
        conf = self._load(
            'cpu_mode = custom\n'
            'cpu_models = Nehalem, Haswell-noTSX\n'
            'cpu_model_extra_flags = +pcid, -vmx, PDPE1GB, sse4.1\n'
            'hw_machine_type = x86_64=q35, aarch64=virt-7.2\n')
        self.assertEqual('custom', conf.pyvirt.cpu_mode)
        self.assertEqual(['Nehalem', 'Haswell-noTSX'], conf.pyvirt.cpu_models)
        # Kept as written; flag names are compared case-insensitively by
        # the code that uses them.
        self.assertEqual(['+pcid', '-vmx', 'PDPE1GB', 'sse4.1'],
                         conf.pyvirt.cpu_model_extra_flags)
        self.assertEqual(['x86_64=q35', 'aarch64=virt-7.2'],
                         conf.pyvirt.hw_machine_type)

    def test_bad_machine_type_rejected(self):
        conf = self._load('hw_machine_type = q35\n')
        self.assertRaises(cfg.ConfigFileValueError,
                          getattr, conf.pyvirt, 'hw_machine_type')

    def test_bad_cpu_flag_rejected(self):
        conf = self._load('cpu_model_extra_flags = +pc id\n')
        self.assertRaises(cfg.ConfigFileValueError,
                          getattr, conf.pyvirt, 'cpu_model_extra_flags')


class TestSampleConfig(base.BaseTestCase):
    """oslo-config-generator, driven by the project's generator config."""

    def test_sample(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        out = os.path.join(tmp, 'nova-pyvirt.conf.sample')
        generator.main(['--config-file', GENERATOR_CONF,
                        '--output-file', out])
        with open(out) as f:
            sample = f.read()
        self.assertIn('\n[pyvirt]\n', sample)
        self.assertIn('#virt_type = kvm\n', sample)
        self.assertIn('#images_type = qcow2\n', sample)
        # The group's help names the nova options the driver honours.
        pyvirt_section = sample.split('\n[pyvirt]\n')[1].split('\n[')[0]
        help_text = ' '.join(line.lstrip('# ') for line in
                             pyvirt_section.splitlines())
        for group, name in pyvirt_conf.NOVA_OPTIONS:
            self.assertIn('[%s] %s' % (group, name), help_text)
        for name in REPLACED_BY_NOVA:
            self.assertNotIn('\n#%s =' % name, pyvirt_section)
        for opt in pyvirt_conf.list_opts()[0][1]:
            self.assertIn('#%s =' % opt.name, sample)
        # The driver's privsep daemon, with its own default capabilities.
        self.assertIn('\n[pyvirt_sys_admin]\n', sample)
        self.assertIn('#capabilities = CAP_SYS_ADMIN,CAP_IPC_LOCK\n', sample)
        self.assertIn('#helper_command = <None>\n', sample)
