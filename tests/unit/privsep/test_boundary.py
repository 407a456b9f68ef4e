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

"""Root is reached through privsep entrypoints only.

Read from the source tree: no ``run_as_root``, no ``sudo``, no root-only
program run outside ``nova_pyvirt/privsep``, and every public function of
the entrypoint modules is an entrypoint. The rootwrap filter the operator
documentation gives admits the daemon's command as nova-compute builds
it, and the daemon's options are in the sample configuration.
"""

import ast
import importlib
import inspect
import os
import re
import sys
import types

import fixtures
from oslo_privsep import priv_context
from oslo_rootwrap import wrapper
from oslotest import base

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt import privsep

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PACKAGE = os.path.join(REPO, 'nova_pyvirt')
PRIVSEP = os.path.join(PACKAGE, 'privsep')
FILTERS = os.path.join(REPO, 'etc', 'nova-pyvirt', 'rootwrap.d')

# Programs that only do their work as root (on the host's devices, mounts
# and volume groups). qemu-img, mkfs.ext4 and mkswap also run unprivileged
# on the instance's own files, so they are not listed.
ROOT_PROGRAMS = {'lvcreate', 'lvextend', 'lvremove', 'lvreduce',
                 'lvchange', 'lvs', 'vgs', 'pvs', 'vgcreate', 'vgremove',
                 'vgchange', 'pvcreate', 'pvremove', 'lvm', 'losetup',
                 'mount', 'umount', 'dd', 'shred', 'blockdev', 'dmsetup',
                 'sudo', 'nova-rootwrap', 'iscsiadm', 'tee', 'chown',
                 'chmod'}

# Command-line tools that are not nova-compute's code and run as root by
# design, with the reason.
ROOT_TOOLS = {
    os.path.join(PACKAGE, 'cmd', 'demo_network.py'):
        'the demo needs root to make network and mount namespaces of its '
        'own for its private network; it mounts a sysfs inside them',
}

# Functions of the entrypoint modules that run in the caller and need no
# privilege.
NOT_ENTRYPOINTS = {'metadata_only_env', 'check_volume_device',
                   'mounted_type', 'valid_volume_name', 'loop_devices'}


def _sources(top):
    for root, _dirs, files in os.walk(top):
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.join(root, name)


class TestSource(base.BaseTestCase):

    def test_no_run_as_root_and_no_sudo(self):
        found = []
        for path in _sources(PACKAGE):
            with open(path) as f:
                for number, line in enumerate(f, 1):
                    if re.search(r'run_as_root|sudo', line):
                        found.append('%s:%d: %s' % (
                            os.path.relpath(path, REPO), number,
                            line.strip()))
        self.assertEqual([], found)

    def test_root_programs_run_in_privsep_only(self):
        # Any call given a root program's name (alone, or as the first
        # element of an argv list) outside nova_pyvirt/privsep.
        found = []
        for path in _sources(PACKAGE):
            if path.startswith(PRIVSEP + os.sep) or path in ROOT_TOOLS:
                continue
            with open(path) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                for arg in node.args:
                    if isinstance(arg, (ast.List, ast.Tuple)) and arg.elts:
                        arg = arg.elts[0]
                    if (isinstance(arg, ast.Constant) and
                            isinstance(arg.value, str) and
                            os.path.basename(arg.value) in ROOT_PROGRAMS):
                        found.append('%s:%d: %s' % (
                            os.path.relpath(path, REPO), node.lineno,
                            arg.value))
        self.assertEqual([], found)

    def test_the_check_finds_a_root_program(self):
        # The check above would see what the driver used to do.
        tree = ast.parse("processutils.execute('umount', mountpoint)\n"
                         "fileops.execute(_tool('lvcreate'), '-L', size)\n")
        names = [a.value for n in ast.walk(tree)
                 if isinstance(n, ast.Call) for a in n.args
                 if isinstance(a, ast.Constant) and a.value in ROOT_PROGRAMS]
        self.assertEqual(['umount', 'lvcreate'], names)

    def test_public_functions_are_entrypoints(self):
        plain, entrypoints = [], []
        for path in _sources(PRIVSEP):
            name = os.path.basename(path)[:-3]
            if name.startswith('_'):
                continue
            module = importlib.import_module('nova_pyvirt.privsep.' + name)
            for attr, value in sorted(vars(module).items()):
                qualified = '%s.%s' % (name, attr)
                if privsep.sys_admin_pctxt.is_entrypoint(value):
                    entrypoints.append(qualified)
                elif (inspect.isfunction(value) and
                        value.__module__ == module.__name__ and
                        not attr.startswith('_') and
                        attr not in NOT_ENTRYPOINTS):
                    plain.append(qualified)
        self.assertEqual([], plain)
        self.assertEqual(
            ['block_device.format_ext4', 'block_device.format_swap',
             'block_device.shred', 'block_device.write_image',
             'block_device.zero',
             'mounts.umount_nfs', 'volume_group.attach_range',
             'volume_group.detach_loop', 'volume_group.lvcreate',
             'volume_group.lvextend', 'volume_group.lvremove',
             'volume_group.lvs', 'volume_group.pvs', 'volume_group.vgs'],
            sorted(entrypoints))


class TestRootwrapFilter(base.BaseTestCase):

    def helper_command(self, context, config_files):
        """The argv nova-compute hands rootwrap to start ``context``.

        As oslo.privsep builds it from nova-compute's configuration (its
        files, no ``helper_command``) and nova's root helper.
        """
        class Conf(object):
            config_file = config_files
            config_dir = None

            def __getitem__(self, section):
                return types.SimpleNamespace(helper_command=None)

        self.useFixture(fixtures.MonkeyPatch(
            'oslo_privsep.priv_context.cfg.CONF', Conf()))
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_privsep.priv_context._HELPER_COMMAND_PREFIX',
            ['sudo', 'nova-rootwrap', '/etc/nova/rootwrap.conf']))
        argv = context.helper_command('/tmp/tmpa1b2c3/privsep.sock')
        self.assertEqual(['sudo', 'nova-rootwrap',
                          '/etc/nova/rootwrap.conf'], argv[:3])
        return argv[3:]

    def test_filter_admits_the_daemon(self):
        command = self.helper_command(privsep.sys_admin_pctxt,
                                      ['/etc/nova/nova.conf'])
        self.assertEqual(
            ['privsep-helper', '--config-file', '/etc/nova/nova.conf',
             '--privsep_context', 'nova_pyvirt.privsep.sys_admin_pctxt',
             '--privsep_sock_path', '/tmp/tmpa1b2c3/privsep.sock'], command)
        filters = wrapper.load_filters([FILTERS])
        matched = wrapper.match_filter(filters, command,
                                       exec_dirs=[os.path.dirname(
                                           _privsep_helper())])
        # The driver's line, not oslo.rootwrap's own catch-all for
        # privsep-helper (which admits any arguments).
        self.assertEqual('privsep-rootwrap-pyvirt', matched.name)

    def test_filter_is_narrow(self):
        filters = [f for f in wrapper.load_filters([FILTERS])
                   if f.name == 'privsep-rootwrap-pyvirt']
        base_cmd = ['privsep-helper', '--config-file', '/etc/nova/nova.conf',
                    '--privsep_context',
                    'nova_pyvirt.privsep.sys_admin_pctxt',
                    '--privsep_sock_path', '/tmp/x/privsep.sock']
        self.assertTrue(filters[0].match(base_cmd))
        for index, value in ((2, '/home/nova/nova.conf'),
                             (2, '/etc/../tmp/nova.conf'),
                             (4, 'nova.privsep.sys_admin_pctxt'),
                             (4, 'os_brick.privileged.default'),
                             (6, '/var/run/privsep.sock')):
            cmd = list(base_cmd)
            cmd[index] = value
            self.assertFalse(filters[0].match(cmd), cmd)


def _privsep_helper():
    return os.path.join(os.path.dirname(sys.executable), 'privsep-helper')


class TestOptions(base.BaseTestCase):

    def test_listed_for_the_sample_config(self):
        groups = dict((getattr(group, 'name', group), opts)
                      for group, opts in pyvirt_conf.list_opts())
        self.assertEqual({'pyvirt', 'pyvirt_sys_admin'}, set(groups))
        opts = {o.name: o for o in groups['pyvirt_sys_admin']}
        self.assertIn('helper_command', opts)
        self.assertEqual('CAP_SYS_ADMIN,CAP_IPC_LOCK',
                         opts['capabilities'].sample_default)
        # A copy: listing does not change what oslo.privsep registered.
        self.assertEqual([], priv_context.OPTS[2].default)
