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

"""The driver's privsep entrypoints: their checks and command lines.

The entrypoints run through :class:`tests.fixtures.privsep.
InProcessDaemons` (arguments, results and errors cross privsep's wire
format); the commands they run are recorded by a fake
``processutils.execute``, and the host's block devices and loop devices
are the test's. What lvm2 and friends do for real is in the functional
tests (``tests/functional/storage/test_lvm.py`` as root,
``tests/functional/privileges`` from an unprivileged process).
"""

import os
import subprocess
import sys

import fixtures
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt import privsep
from nova_pyvirt.privsep import _process
from nova_pyvirt.privsep import block_device
from nova_pyvirt.privsep import mounts
from nova_pyvirt.privsep import volume_group
from tests.fixtures import privsep as privsep_fixture

VG = 'vg0'
LV = '6f1b3a7e-0c1d-4d8e-9a55-3e1f0c2b7d90_disk'
DEVICE = '/dev/%s/%s' % (VG, LV)


class EntrypointTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.daemons = self.useFixture(privsep_fixture.InProcessDaemons())
        self.calls = []
        self.outputs = {}
        self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', self.execute))
        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.privsep._process.find_tool',
            lambda name: '/usr/sbin/' + name))
        self.blocks = {'/dev/pv0', DEVICE, '/dev/loop3'}
        self.loops = [{'name': '/dev/loop3', 'back-file': '/dev/pv0',
                       'offset': 0, 'sizelimit': 0},
                      {'name': '/dev/loop4', 'back-file': '/srv/file.img',
                       'offset': 0, 'sizelimit': 0}]
        self.useFixture(fixtures.MockPatchObject(
            _process, 'is_block_device', lambda p: p in self.blocks))
        self.useFixture(fixtures.MockPatchObject(
            _process, 'loop_devices', lambda: list(self.loops)))

    def execute(self, *argv, **kwargs):
        self.calls.append((list(argv), kwargs, self.daemons.current()))
        return self.outputs.get(os.path.basename(argv[0]), ''), ''

    def argvs(self):
        return [argv for argv, _kw, _ctx in self.calls]


class TestVolumeGroup(EntrypointTestCase):

    def test_lvcreate(self):
        volume_group.lvcreate(VG, LV, 1024 ** 3)
        volume_group.lvcreate(VG, LV, 4096, metadata_only=True)
        self.assertEqual(
            [['/usr/sbin/lvcreate', '--yes', '-L', '1073741824b', '-n', LV,
              VG],
             ['/usr/sbin/lvcreate', '--config', 'global { activation = 0 }',
              '--yes', '--activate', 'n', '--zero', 'n', '--wipesignatures',
              'n', '--contiguous', 'y', '-L', '4096b', '-n', LV, VG]],
            self.argvs())
        device_mode, metadata_only = [kw for _a, kw, _c in self.calls]
        self.assertIsNone(device_mode['env_variables'])
        self.assertEqual('1', metadata_only['env_variables'][
            'DM_DISABLE_UDEV'])
        # Run in the driver's daemon, without new privileges.
        for _argv, kwargs, context in self.calls:
            self.assertEqual('pyvirt_sys_admin', context)
            self.assertIs(_process.no_new_privs, kwargs['preexec_fn'])

    def test_names_and_sizes_checked_before_anything_runs(self):
        for vg, lv, size in [
                ('vg0 --config x', LV, 1), ('-vg', LV, 1), ('..', LV, 1),
                (VG, 'snapshot0', 1), (VG, 'a_tmeta', 1), (VG, 'a/b', 1),
                (VG, '', 1), (VG, 'x' * 128, 1), (VG, LV, 0),
                (VG, LV, -4096), (VG, LV, '4096'), (VG, LV, True),
                (VG, LV, 1.5), (None, LV, 1), (VG, ['a'], 1)]:
            self.assertRaises(ValueError, volume_group.lvcreate, vg, lv,
                              size)
            self.assertRaises(ValueError, volume_group.lvextend, vg, lv,
                              size)
        self.assertRaises(ValueError, volume_group.lvremove, VG, '-rf')
        self.assertEqual([], self.calls)

    def test_lvextend_and_lvremove(self):
        volume_group.lvextend(VG, LV, 8192, metadata_only=True)
        volume_group.lvremove(VG, LV)
        self.assertEqual(
            [['/usr/sbin/lvextend', '--config', 'global { activation = 0 }',
              '--alloc', 'contiguous', '-L', '8192b', '%s/%s' % (VG, LV)],
             ['/usr/sbin/lvremove', '--force', '%s/%s' % (VG, LV)]],
            self.argvs())

    def test_reports(self):
        self.outputs['lvs'] = jsonutils.dumps({'report': [{'lv': [
            {'lv_name': LV, 'lv_size': '4096'}]}]})
        rows = volume_group.lvs(VG, ['lv_name', 'lv_size'], lv=LV)
        # A tuple of dicts: what privsep's wire format makes of a list.
        self.assertEqual(({'lv_name': LV, 'lv_size': '4096'},), rows)
        self.assertEqual(
            ['/usr/sbin/lvs', '--reportformat', 'json', '--units', 'b',
             '--nosuffix', '-o', 'lv_name,lv_size', '%s/%s' % (VG, LV)],
            self.argvs()[0])
        self.outputs['pvs'] = '{"report": [{"pv": []}]}'
        self.assertEqual((), volume_group.pvs('/dev/pv0', ['pe_start']))
        for fields in ('lv_name', [], ['lv_name', '-x'], ['a,b'],
                       ['lv_name;'], [1]):
            self.assertRaises(ValueError, volume_group.vgs, VG, fields)
        self.assertRaises(ValueError, volume_group.pvs, '/etc/passwd',
                          ['pe_start'])
        self.assertRaises(ValueError, volume_group.pvs, '/dev/../pv0',
                          ['pe_start'])
        self.assertEqual(2, len(self.calls))

    def test_attach_range(self):
        self.outputs['losetup'] = '/dev/loop7\n'
        self.assertEqual('/dev/loop7', volume_group.attach_range(
            '/dev/pv0', 1048576, 4194304))
        self.assertEqual(
            ['/usr/sbin/losetup', '--find', '--show', '--direct-io=on',
             '--offset', '1048576', '--sizelimit', '4194304', '/dev/pv0'],
            self.argvs()[0])
        for pv, offset, size in [('/dev/pv1', 0, 512), ('/dev/pv0', 1, 512),
                                 ('/dev/pv0', 0, 511), ('/dev/pv0', -512,
                                                        512),
                                 ('/dev/pv0', 0, 0)]:
            self.assertRaises(ValueError, volume_group.attach_range, pv,
                              offset, size)
        self.outputs['losetup'] = 'something else\n'
        self.assertRaises(ValueError, volume_group.attach_range, '/dev/pv0',
                          0, 512)

    def test_detach_only_loops_over_block_devices(self):
        volume_group.detach_loop('/dev/loop3')
        self.assertEqual([['/usr/sbin/losetup', '--detach', '/dev/loop3']],
                         self.argvs())
        # Over a file, not attached, not a loop device.
        for device in ('/dev/loop4', '/dev/loop9', '/dev/sda', 'loop3'):
            exc = self.assertRaises(ValueError, volume_group.detach_loop,
                                    device)
            self.assertIn(device, str(exc))
        self.assertEqual(1, len(self.calls))


class TestBlockDevice(EntrypointTestCase):

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.image = os.path.join(tmp, 'image')
        open(self.image, 'w').close()
        self.info = {'format': 'qcow2', 'virtual-size': 4096}
        self.outputs['qemu-img'] = jsonutils.dumps(self.info)

    def test_write_image(self):
        block_device.write_image(self.image, 'qcow2', DEVICE)
        info, convert = self.calls
        self.assertEqual(['/usr/sbin/qemu-img', 'info', '--output=json',
                          '--force-share', '-f', 'qcow2', self.image],
                         info[0])
        self.assertEqual(block_device.QEMU_IMG_LIMITS, info[1]['prlimit'])
        self.assertEqual(['/usr/sbin/qemu-img', 'convert', '-n', '-t',
                          'none', '-f', 'qcow2', '-O', 'raw', self.image,
                          DEVICE], convert[0])

    def test_images_that_point_elsewhere_are_refused(self):
        for extra, message in [
                ({'backing-filename': '/etc/shadow'}, 'backing file'),
                ({'full-backing-filename': '/x'}, 'backing file'),
                ({'format-specific': {'type': 'qcow2', 'data': {
                    'data-file': '/dev/sda'}}}, 'external data file')]:
            self.outputs['qemu-img'] = jsonutils.dumps(dict(self.info,
                                                            **extra))
            exc = self.assertRaises(ValueError, block_device.write_image,
                                    self.image, 'qcow2', DEVICE)
            self.assertIn(message, str(exc))
        self.assertNotIn('convert', [a[1] for a in self.argvs()])

    def test_sources_checked(self):
        link = self.image + '.link'
        os.symlink(self.image, link)
        for source, fmt in [(link, 'qcow2'), (self.image, 'vmdk'),
                            (os.path.dirname(self.image), 'raw'),
                            (self.image + '.missing', 'raw'),
                            ('relative/image', 'raw'),
                            (self.image + '/../image', 'raw')]:
            self.assertRaises(ValueError, block_device.write_image,
                              source, fmt, DEVICE)
        self.assertEqual([], self.calls)

    def test_only_volume_devices_are_written(self):
        self.blocks.update({'/dev/sda', '/dev/vg0'})
        for device in ('/dev/sda', '/dev/vg0/../sda', '/dev/vg0/a/b',
                       '/dev/vg0/snapshot1', '/dev/loop4', '/dev/loop9',
                       '/dev/vg0/other', '/etc/shadow', 'dev/vg0/x'):
            for call in (lambda d: block_device.format_swap(d),
                         lambda d: block_device.format_ext4(d, 'eph'),
                         lambda d: block_device.zero(d, 512),
                         lambda d: block_device.shred(d, 512),
                         lambda d: block_device.write_image(
                             self.image, 'raw', d)):
                self.assertRaises(ValueError, call, device)
        self.assertEqual([], self.calls)

    def test_format_and_zero(self):
        block_device.format_ext4('/dev/loop3', 'ephemeral0')
        block_device.format_swap(DEVICE)
        block_device.zero(DEVICE, 8 * 1024 * 1024)
        block_device.shred(DEVICE, 4 * 1024 * 1024)
        self.assertEqual(
            [['/usr/sbin/mkfs.ext4', '-F', '-q', '-L', 'ephemeral0', '-E',
              'lazy_itable_init=1,lazy_journal_init=1', '/dev/loop3'],
             ['/usr/sbin/mkswap', DEVICE],
             ['/usr/sbin/dd', 'if=/dev/zero', 'of=%s' % DEVICE,
              'bs=1048576', 'count=8388608', 'iflag=count_bytes',
              'oflag=direct', 'conv=fdatasync'],
             ['/usr/sbin/shred', '-n3', '-s4194304', DEVICE]], self.argvs())
        for label in ('', 'x' * 17, 'a b', '-O^has_journal', None):
            self.assertRaises(ValueError, block_device.format_ext4, DEVICE,
                              label)
        self.assertRaises(ValueError, block_device.zero, DEVICE, 0)
        self.assertRaises(ValueError, block_device.shred, DEVICE, -1)
        self.assertEqual(4, len(self.calls))


class TestMounts(EntrypointTestCase):

    def setUp(self):
        super().setUp()
        self.table = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                  'mounts')
        with open(self.table, 'w') as f:
            f.write('/dev/vda / ext4 rw 0 0\n'
                    'srv:/a /mnt/nfs\\040a nfs4 rw 0 0\n'
                    'srv:/b /mnt/b nfs rw 0 0\n'
                    'srv:/c /mnt/c nfs rw 0 0\n'
                    'tmpfs /mnt/c tmpfs rw 0 0\n')
        self.useFixture(fixtures.MockPatchObject(mounts, 'MOUNTS_FILE',
                                                 self.table))

    def test_umount_nfs(self):
        mounts.umount_nfs('/mnt/nfs a')
        mounts.umount_nfs('/mnt/b')
        self.assertEqual([['/usr/sbin/umount', '/mnt/nfs a'],
                          ['/usr/sbin/umount', '/mnt/b']], self.argvs())

    def test_only_nfs_mounts(self):
        # Nothing mounted, another file system, NFS under another mount,
        # paths that are not plain.
        for path in ('/mnt', '/', '/mnt/c', '/mnt/b/', 'mnt/b',
                     '/mnt/x/../b'):
            self.assertRaises(ValueError, mounts.umount_nfs, path)
        self.assertEqual([], self.calls)


class TestProcess(base.BaseTestCase):

    def test_programs_from_system_directories_only(self):
        self.useFixture(fixtures.EnvironmentVariable('PATH', '/tmp/evil'))
        self.assertEqual('/usr/bin/env', _process.find_tool('env'))
        exc = self.assertRaises(FileNotFoundError, _process.find_tool,
                                'no-such-program-pyvirt')
        self.assertIn('no-such-program-pyvirt is not installed', str(exc))

    def test_no_new_privs_in_the_child(self):
        # Real processes: the flag is the child's, not the caller's.
        out = subprocess.run(
            ['grep', 'NoNewPrivs', '/proc/self/status'],
            preexec_fn=_process.no_new_privs, capture_output=True,
            text=True, check=True).stdout
        self.assertEqual('NoNewPrivs:\t1', out.strip())
        with open('/proc/self/status') as f:
            self.assertIn('NoNewPrivs:\t0', f.read())

    def test_loop_devices_from_sysfs(self):
        root = self.useFixture(fixtures.TempDir()).path
        for name, back, offset in (('loop0', '/dev/pv0', 512),
                                   ('loop1', None, 0)):
            os.makedirs(os.path.join(root, name))
            if back is None:
                continue
            loop = os.path.join(root, name, 'loop')
            os.makedirs(loop)
            for field, value in (('backing_file', back + '\n'),
                                 ('offset', '%d\n' % offset),
                                 ('sizelimit', '1024\n')):
                with open(os.path.join(loop, field), 'w') as f:
                    f.write(value)
        os.makedirs(os.path.join(root, 'vda'))
        self.assertEqual([{'name': '/dev/loop0', 'back-file': '/dev/pv0',
                           'offset': 512, 'sizelimit': 1024}],
                         _process.loop_devices(root))


class TestContext(base.BaseTestCase):

    def test_context(self):
        from oslo_privsep import capabilities as caps
        ctx = privsep.sys_admin_pctxt
        self.assertEqual('pyvirt_sys_admin', ctx.cfg_section)
        self.assertEqual('nova_pyvirt.privsep.sys_admin_pctxt', ctx.pypath)
        # The daemon's default (its [pyvirt_sys_admin] capabilities): the
        # functional tests read what a started daemon kept.
        self.assertEqual((caps.CAP_SYS_ADMIN, caps.CAP_IPC_LOCK),
                         privsep.CAPABILITIES)

    def test_entrypoints_live_in_this_package(self):
        # oslo.privsep refuses entrypoints outside the context's prefix.
        def elsewhere():
            pass
        elsewhere.__module__ = 'nova_pyvirt.storage.lvm'
        self.assertRaises(AssertionError,
                          privsep.sys_admin_pctxt.entrypoint, elsewhere)

    def test_daemon_imports_only_the_package(self):
        # What privsep-helper imports to find the context, in a fresh
        # interpreter: nothing of nova.
        code = ('import sys; import nova_pyvirt.privsep.volume_group, '
                'nova_pyvirt.privsep.block_device, '
                'nova_pyvirt.privsep.mounts; '
                'print(sorted(m for m in sys.modules if m == "nova" or '
                'm.startswith(("nova.", "nova_pyvirt."))))')
        repo = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))))
        out = subprocess.run([sys.executable, '-c', code], cwd=repo,
                             capture_output=True, text=True, check=True)
        self.assertEqual(
            "['nova_pyvirt.privsep', 'nova_pyvirt.privsep._process', "
            "'nova_pyvirt.privsep.block_device', "
            "'nova_pyvirt.privsep.mounts', "
            "'nova_pyvirt.privsep.volume_group']", out.stdout.strip())
