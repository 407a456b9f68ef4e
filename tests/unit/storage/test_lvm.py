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

"""The LVM backend's commands, names, checks and layout arithmetic.

lvm2 is replaced by :class:`FakeLvm`, which keeps volumes in a dict and
answers ``vgs``/``lvs``/``pvs`` as lvm2's JSON reports do; the real lvm2
runs in ``tests/functional/storage/test_lvm.py``. The commands are run by
the driver's privsep entrypoints, answered in the test process
(:class:`tests.fixtures.privsep.InProcessDaemons`): each fake command
records the privsep context it ran under.
"""

import os
import types

import fixtures
from nova import exception
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.design import request
from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.privsep import _process
from nova_pyvirt.storage import backends
from nova_pyvirt.storage import errors
from nova_pyvirt.storage import imagecache
from nova_pyvirt.storage import lvm
from tests.fixtures import privsep as privsep_fixture

MiB = 1024 * 1024
GiB = 1024 * MiB
EXTENT = 4 * MiB
PE_START = MiB
UUID = '6f1b3a7e-0c1d-4d8e-9a55-3e1f0c2b7d90'
METADATA_ONLY = ['--config', 'global { activation = 0 }']


def conf(volume_clear='zero', volume_clear_size=0, **pyvirt):
    """The options backend_for reads: nova's (nova's defaults), [pyvirt]'s."""
    return types.SimpleNamespace(
        preallocate_images='none',
        libvirt=types.SimpleNamespace(volume_clear=volume_clear,
                                      volume_clear_size=volume_clear_size),
        pyvirt=types.SimpleNamespace(**pyvirt))


def report(kind, rows):
    return jsonutils.dumps({'report': [{kind: rows}]})


def failure(cmd, stderr):
    return processutils.ProcessExecutionError(
        stdout='', stderr=stderr, exit_code=5, cmd=' '.join(cmd))


class FakeLvm(object):
    """lvm2, losetup, qemu-img and friends, as far as the backend uses them.

    ``volumes`` maps names to ``[(first_pe, last_pe), ...]`` segments on
    ``/dev/pv0``; ``fail`` maps a command name to the stderr it fails with.
    ``contexts`` holds the privsep context each command ran under
    (``daemons.current()``).
    """

    def __init__(self, vg='vg0', daemons=None):
        self.vg = vg
        self.daemons = daemons
        self.volumes = {}
        self.loops = []
        self.calls = []
        self.envs = []
        self.contexts = []
        self.fail = {}
        self.next_pe = 0

    def __call__(self, *cmd, **kwargs):
        cmd = list(cmd)
        self.calls.append(cmd)
        self.envs.append(kwargs.get('env_variables'))
        self.contexts.append(self.daemons.current() if self.daemons
                             else None)
        tool = os.path.basename(cmd[0])
        if tool in self.fail:
            raise failure(cmd, self.fail[tool])
        handler = getattr(self, '_' + tool.replace('-', '_').replace(
            '.', '_'), None)
        return (handler(cmd) if handler else ''), ''

    def commands(self):
        return [os.path.basename(c[0]) for c in self.calls]

    def call(self, tool, subcommand=None):
        return next(c for c in self.calls if os.path.basename(c[0]) == tool
                    and (subcommand is None or c[1] == subcommand))

    def is_block_device(self, path):
        """The fake host's block devices: the PV, volumes, loop devices."""
        return path == '/dev/pv0' or path in [
            x['name'] for x in self.loops] or path in [
            '/dev/%s/%s' % (self.vg, name) for name in self.volumes]

    def _qemu_img(self, cmd):
        if cmd[1] == 'info':
            return jsonutils.dumps({'format': cmd[cmd.index('-f') + 1],
                                    'virtual-size': 16 * MiB})
        return ''

    def _vgs(self, cmd):
        if cmd[-1] != self.vg:
            raise failure(cmd, '  Volume group "%s" not found' % cmd[-1])
        if '--reportformat' in cmd:
            used = sum(e - s + 1 for segs in self.volumes.values()
                       for s, e in segs)
            return report('vg', [{'vg_size': str(64 * EXTENT),
                                  'vg_free': str((64 - used) * EXTENT)}])
        return '  %s\n' % self.vg

    def _lvs(self, cmd):
        target = cmd[-1]
        rows = []
        for name, segs in sorted(self.volumes.items()):
            if target not in (self.vg, '%s/%s' % (self.vg, name)):
                continue
            size = sum(e - s + 1 for s, e in segs) * EXTENT
            le = 0
            for start, end in segs:
                rows.append({'lv_name': name, 'lv_size': str(size),
                             'segtype': 'linear',
                             'seg_start_pe': str(le),
                             'seg_pe_ranges': '/dev/pv0:%d-%d' % (start,
                                                                  end),
                             'vg_extent_size': str(EXTENT)})
                le += end - start + 1
        if target != self.vg and not rows:
            raise failure(cmd, 'Failed to find logical volume "%s"' % target)
        return report('lv', rows)

    def _pvs(self, cmd):
        return report('pv', [{'pv_name': '/dev/pv0',
                              'pe_start': str(PE_START)}])

    def _lvcreate(self, cmd):
        name = cmd[cmd.index('-n') + 1]
        size = int(cmd[cmd.index('-L') + 1].rstrip('b'))
        count = -(-size // EXTENT)
        self.volumes[name] = [(self.next_pe, self.next_pe + count - 1)]
        self.next_pe += count

    def _lvextend(self, cmd):
        name = cmd[-1].split('/')[1]
        size = int(cmd[cmd.index('-L') + 1].rstrip('b'))
        count = -(-size // EXTENT)
        start, end = self.volumes[name][-1]
        have = sum(e - s + 1 for s, e in self.volumes[name])
        self.volumes[name][-1] = (start, end + count - have)

    def _lvremove(self, cmd):
        del self.volumes[cmd[-1].split('/')[1]]

    def _losetup(self, cmd):
        if '--list' in cmd:
            return jsonutils.dumps({'loopdevices': self.loops})
        if '--detach' in cmd:
            self.loops = [x for x in self.loops if x['name'] != cmd[-1]]
            return ''
        name = '/dev/loop%d' % (10 + len(self.loops))
        self.loops.append({
            'name': name, 'back-file': cmd[-1],
            'offset': int(cmd[cmd.index('--offset') + 1]),
            'sizelimit': int(cmd[cmd.index('--sizelimit') + 1])})
        return name + '\n'


class LvmUnitBase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.daemons = self.useFixture(privsep_fixture.InProcessDaemons())
        self.lvm = FakeLvm(daemons=self.daemons)
        self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', self.lvm))
        for module in ('nova_pyvirt.storage.fileops',
                       'nova_pyvirt.privsep._process'):
            self.useFixture(fixtures.MonkeyPatch(
                module + '.find_tool', lambda name: '/usr/sbin/' + name))
        self.useFixture(fixtures.MockPatchObject(
            _process, 'is_block_device', self.lvm.is_block_device))
        self.useFixture(fixtures.MockPatchObject(
            _process, 'loop_devices', lambda: list(self.lvm.loops)))
        # The cached image is a real file: the daemon checks what it reads.
        cache = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(cache, 'abc')
        open(path, 'wb').close()
        self.base = imagecache.CachedImage(path, 'qcow2', 16 * MiB)

    def path(self, name):
        return os.path.join('/instances', UUID, name)

    def backend(self, **kwargs):
        return lvm.LvmBackend('vg0', **kwargs)


class TestNames(base.BaseTestCase):

    def test_volume_name_like_nova(self):
        self.assertEqual('%s_disk' % UUID,
                         lvm.volume_name('/instances/%s/disk' % UUID))
        self.assertEqual('%s_disk.eph0' % UUID,
                         lvm.volume_name('/i/%s/disk.eph0' % UUID))

    def test_invalid_names(self):
        for path in ('disk', '/i/-x/disk', '/i/snapshot1/disk',
                     '/i/a/b_rimage', '/i/%s/disk' % ('x' * 130),
                     '/i/a b/disk'):
            self.assertRaises(ValueError, lvm.volume_name, path)

    def test_valid_volume_name(self):
        self.assertTrue(lvm.valid_volume_name('a+b_c.d-e'))
        for name in ('', '.', '..', '-a', 'pvmove0', 'a/b', 'a_tmeta'):
            self.assertFalse(lvm.valid_volume_name(name), name)


class TestConfiguration(LvmUnitBase):

    def test_volume_group_required(self):
        for group in (None, ''):
            exc = self.assertRaises(
                pyvirt_exception.InvalidHostConfiguration,
                lvm.LvmBackend, group)
            self.assertIn('[pyvirt] images_volume_group', str(exc))
        self.assertEqual([], self.lvm.calls)

    def test_missing_volume_group(self):
        exc = self.assertRaises(pyvirt_exception.InvalidHostConfiguration,
                                lvm.LvmBackend, 'nope')
        self.assertIn('[pyvirt] images_volume_group = nope', str(exc))
        self.assertIn('Volume group "nope" not found', str(exc))

    def test_lvm2_not_installed(self):
        def missing(name):
            raise FileNotFoundError(2, '%s is not installed' % name)
        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.privsep._process.find_tool', missing))
        exc = self.assertRaises(pyvirt_exception.InvalidHostConfiguration,
                                lvm.LvmBackend, 'vg0')
        self.assertIn('images_volume_group', str(exc))
        self.assertIn('vgs is not installed', str(exc))

    def test_invalid_volume_group_name_runs_nothing(self):
        exc = self.assertRaises(pyvirt_exception.InvalidHostConfiguration,
                                lvm.LvmBackend, 'vg0 --config x')
        self.assertIn('invalid volume group name', str(exc))
        self.assertEqual([], self.lvm.calls)

    def test_backend_for(self):
        backend = backends.backend_for(conf(images_type='lvm',
                                            images_volume_group='vg0'))
        self.assertIsInstance(backend, lvm.LvmBackend)
        self.assertIs(type(backend.activation), lvm.DeviceActivation)
        # nova's [libvirt] volume_clear and its default.
        self.assertEqual('zero', backend.volume_clear)
        self.assertEqual(0, backend.volume_clear_size)

    def test_backend_for_without_volume_group(self):
        exc = self.assertRaises(
            pyvirt_exception.InvalidHostConfiguration, backends.backend_for,
            conf(images_type='lvm', images_volume_group=None))
        self.assertIn('images_volume_group', str(exc))

    def test_nova_conf(self):
        from tests import design_support
        fx = self.useFixture(design_support.ConfFixture())
        fx.set(images_type='lvm', images_volume_group='vg0')
        backend = backends.backend_for(fx.conf)
        self.assertEqual('vg0', backend.volume_group)
        self.assertEqual('zero', backend.volume_clear)
        fx.set(group='libvirt', volume_clear='shred', volume_clear_size=4)
        backend = backends.backend_for(fx.conf)
        self.assertEqual(('shred', 4),
                         (backend.volume_clear, backend.volume_clear_size))

    def test_volume_clear(self):
        for value in lvm.VOLUME_CLEAR_CHOICES:
            backend = lvm.LvmBackend.from_conf(
                conf(images_volume_group='vg0', volume_clear=value))
            self.assertEqual(value, backend.volume_clear)
        exc = self.assertRaises(
            pyvirt_exception.InvalidHostConfiguration,
            lvm.LvmBackend.from_conf,
            conf(images_volume_group='vg0', volume_clear='wipe'))
        self.assertIn('[libvirt] volume_clear = wipe', str(exc))
        exc = self.assertRaises(
            pyvirt_exception.InvalidHostConfiguration,
            lvm.LvmBackend.from_conf,
            conf(images_volume_group='vg0', volume_clear_size=-1))
        self.assertIn('[libvirt] volume_clear_size = -1', str(exc))


class TestDeviceActivation(LvmUnitBase):

    def test_root(self):
        disk = self.backend().create_root(self.base, self.path('disk'), GiB)

        lv = '%s_disk' % UUID
        self.assertEqual(request.LocalDisk(
            name='disk', path='/dev/vg0/%s' % lv, format='raw',
            source_type='block'), disk)
        self.assertEqual(['/usr/sbin/lvcreate', '--yes', '-L', '%db' % GiB,
                          '-n', lv, 'vg0'], self.lvm.call('lvcreate'))
        self.assertEqual(['/usr/sbin/qemu-img', 'convert', '-n', '-t',
                          'none', '-f', 'qcow2', '-O', 'raw', self.base.path,
                          '/dev/vg0/%s' % lv],
                         self.lvm.call('qemu-img', 'convert'))
        # The normal path: no metadata-only options, no loop devices, the
        # service's own environment.
        for cmd in self.lvm.calls:
            self.assertNotIn('--config', cmd)
        self.assertNotIn('losetup', self.lvm.commands())
        self.assertEqual({None}, set(self.lvm.envs))
        # Every command ran in the driver's privsep daemon.
        self.assertEqual({'pyvirt_sys_admin'}, set(self.lvm.contexts))
        self.assertEqual(['vgs', 'lvs', 'lvcreate', 'write_image'],
                         self.daemons.names())

    def test_root_sizes(self):
        backend = self.backend()
        backend.create_root(self.base, self.path('disk'), 0)
        self.assertIn('%db' % (16 * MiB), self.lvm.call('lvcreate'))
        self.assertRaises(exception.FlavorDiskSmallerThanImage,
                          backend.create_root, self.base,
                          self.path('disk.b'), 8 * MiB)

    def test_failed_copy_removes_volume(self):
        self.lvm.fail['qemu-img'] = 'qemu-img: Could not open /cache/abc'
        exc = self.assertRaises(errors.DiskCreationFailed,
                                self.backend().create_root, self.base,
                                self.path('disk'), GiB)
        self.assertIn('Could not open', str(exc))
        self.assertEqual({}, self.lvm.volumes)
        self.assertEqual(['/usr/sbin/lvremove', '--force',
                          'vg0/%s_disk' % UUID], self.lvm.call('lvremove'))

    def test_failed_lvcreate_removes_nothing(self):
        self.lvm.fail['lvcreate'] = 'insufficient free space'
        exc = self.assertRaises(errors.DiskCreationFailed,
                                self.backend().create_root, self.base,
                                self.path('disk'), GiB)
        self.assertIn('insufficient free space', str(exc))
        self.assertNotIn('lvremove', self.lvm.commands())

    def test_existing_volume_untouched(self):
        self.lvm.volumes['%s_disk' % UUID] = [(0, 3)]
        self.assertRaises(errors.DiskExists, self.backend().create_root,
                          self.base, self.path('disk'), GiB)
        self.assertNotIn('lvcreate', self.lvm.commands())
        self.assertNotIn('lvremove', self.lvm.commands())
        self.assertIn('%s_disk' % UUID, self.lvm.volumes)

    def test_failed_removal_after_failure_is_logged(self):
        self.lvm.fail['mkswap'] = 'mkswap: error'
        self.lvm.fail['lvremove'] = 'Logical volume in use'
        log = self.useFixture(fixtures.FakeLogger())
        self.assertRaises(errors.DiskCreationFailed,
                          self.backend().create_swap, self.path('disk.swap'),
                          MiB)
        self.assertIn('Could not remove the volume', log.output)

    def test_blank_and_swap(self):
        backend = self.backend()
        eph = backend.create_blank(self.path('disk.eph0'), GiB, 'disk.eph0')
        swap = backend.create_swap(self.path('disk.swap'), 64 * MiB)
        self.assertEqual('/dev/vg0/%s_disk.eph0' % UUID, eph.path)
        self.assertEqual(('disk.swap', 'block', 'raw'),
                         (swap.name, swap.source_type, swap.format))
        mkfs = self.lvm.call('mkfs.ext4')
        self.assertEqual(eph.path, mkfs[-1])
        self.assertIn('ephemeral0', mkfs)
        self.assertEqual(['/usr/sbin/mkswap', swap.path],
                         self.lvm.call('mkswap'))

    def test_bad_label(self):
        self.assertRaises(ValueError, self.backend().create_blank,
                          self.path('disk.eph0'), GiB, 'disk.eph0',
                          label='a label that is far too long')
        self.assertRaises(ValueError, self.backend().create_blank,
                          self.path('disk.eph0'), GiB, 'disk.eph0',
                          filesystem='xfs')
        self.assertNotIn('lvcreate', self.lvm.commands())

    def test_unformatted_blank(self):
        self.backend().create_blank(self.path('disk.eph0'), GiB,
                                    'disk.eph0', filesystem=None)
        self.assertNotIn('mkfs.ext4', self.lvm.commands())

    def test_resize(self):
        backend = self.backend()
        backend.create_root(self.base, self.path('disk'), 16 * MiB)
        disk = backend.resize(self.path('disk'), 32 * MiB)
        self.assertEqual(['/usr/sbin/lvextend', '-L', '%db' % (32 * MiB),
                          'vg0/%s_disk' % UUID], self.lvm.call('lvextend'))
        self.assertEqual('disk', disk.name)
        self.assertEqual(32 * MiB, backend.volumes()['%s_disk' % UUID])
        self.assertRaises(exception.ResizeError, backend.resize,
                          self.path('disk'), 16 * MiB)
        self.assertRaises(exception.DiskNotFound, backend.resize,
                          self.path('disk.eph0'), GiB)

    def test_delete(self):
        backend = self.backend()
        backend.create_root(self.base, self.path('disk'), 16 * MiB)
        backend.create_swap(self.path('disk.swap'), MiB)
        backend.delete(self.path('disk'))
        backend.delete('/dev/vg0/%s_disk.swap' % UUID)
        backend.delete(self.path('disk'))
        self.assertEqual({}, self.lvm.volumes)
        self.assertEqual(2, self.lvm.commands().count('lvremove'))
        self.assertNotIn('dd', self.lvm.commands())

    def test_delete_instance(self):
        backend = self.backend()
        for name in ('disk', 'disk.eph0', 'disk.swap'):
            backend.create_swap(self.path(name), MiB)
        other = '/instances/0d7c3c1e-7c1e-4e2b-8f0e-5b8c2f0e9a11/disk'
        backend.create_swap(other, MiB)
        self.lvm.fail['dd'] = 'must not run'

        removed = backend.delete_instance(UUID)

        self.assertEqual(['%s_%s' % (UUID, n) for n in (
            'disk', 'disk.eph0', 'disk.swap')], removed)
        self.assertEqual([lvm.volume_name(other)], list(self.lvm.volumes))

    def test_delete_instance_tries_every_volume(self):
        backend = self.backend()
        backend.create_swap(self.path('disk'), MiB)
        backend.create_swap(self.path('disk.swap'), MiB)
        self.lvm.fail['lvremove'] = 'Logical volume in use'
        exc = self.assertRaises(exception.VolumesNotRemoved,
                                backend.delete_instance, UUID)
        self.assertEqual(2, self.lvm.commands().count('lvremove'))
        self.assertIn('in use', str(exc))

    def test_volume_clear_zero(self):
        backend = self.backend(volume_clear='zero')
        backend.create_swap(self.path('disk.swap'), 8 * MiB)
        backend.delete_instance(UUID)
        dd = self.lvm.call('dd')
        self.assertEqual(['/usr/sbin/dd', 'if=/dev/zero',
                          'of=/dev/vg0/%s_disk.swap' % UUID,
                          'bs=%d' % MiB, 'count=%d' % (8 * MiB),
                          'iflag=count_bytes', 'oflag=direct',
                          'conv=fdatasync'], dd)
        commands = self.lvm.commands()
        self.assertLess(commands.index('dd'), commands.index('lvremove'))

    def test_volume_clear_shred(self):
        backend = self.backend(volume_clear='shred')
        backend.create_swap(self.path('disk.swap'), 8 * MiB)
        backend.delete_instance(UUID)
        self.assertEqual(['/usr/sbin/shred', '-n3', '-s%d' % (8 * MiB),
                          '/dev/vg0/%s_disk.swap' % UUID],
                         self.lvm.call('shred'))
        commands = self.lvm.commands()
        self.assertLess(commands.index('shred'), commands.index('lvremove'))
        self.assertNotIn('dd', commands)

    def test_volume_clear_size(self):
        # The first volume_clear_size MiB of each volume, never more than
        # the volume: the 8 MiB one is cleared for 6 MiB, the 1 MiB one
        # (one 4 MiB extent) whole.
        backend = self.backend(volume_clear='zero', volume_clear_size=6)
        backend.create_swap(self.path('disk.swap'), 8 * MiB)
        backend.create_swap(self.path('disk'), MiB)
        backend.delete_instance(UUID)
        counts = {c[2]: c[4] for c in self.lvm.calls
                  if os.path.basename(c[0]) == 'dd'}
        self.assertEqual(
            {'of=/dev/vg0/%s_disk.swap' % UUID: 'count=%d' % (6 * MiB),
             'of=/dev/vg0/%s_disk' % UUID: 'count=%d' % EXTENT}, counts)

    def test_volume_clear_none(self):
        backend = self.backend(volume_clear='none')
        backend.create_swap(self.path('disk.swap'), 8 * MiB)
        backend.delete_instance(UUID)
        self.assertNotIn('dd', self.lvm.commands())
        self.assertNotIn('shred', self.lvm.commands())
        self.assertIn('lvremove', self.lvm.commands())

    def test_capacity(self):
        backend = self.backend()
        backend.create_swap(self.path('disk.swap'), 8 * MiB)
        self.assertEqual((64 * EXTENT, 62 * EXTENT), backend.capacity())


class TestExtent(LvmUnitBase):

    def test_offset_from_physical_extents(self):
        backend = self.backend()
        self.lvm.volumes['a'] = [(0, 2)]
        self.lvm.volumes['b'] = [(3, 5)]
        # seg_start_pe is 0 for both: it counts from the start of the
        # volume, not of the PV.
        self.assertEqual(lvm.Extent('/dev/pv0', PE_START + 3 * EXTENT,
                                    3 * EXTENT), backend.extent('b'))
        self.assertEqual(lvm.Extent('/dev/pv0', PE_START, 3 * EXTENT),
                         backend.extent('/dev/vg0/a'))

    def test_contiguous_segments_merge(self):
        self.lvm.volumes['a'] = [(4, 5), (6, 9)]
        self.assertEqual(lvm.Extent('/dev/pv0', PE_START + 4 * EXTENT,
                                    6 * EXTENT), self.backend().extent('a'))

    def test_fragmented_volume_refused(self):
        self.lvm.volumes['a'] = [(0, 2), (10, 10)]
        exc = self.assertRaises(ValueError, self.backend().extent, 'a')
        self.assertIn('/dev/pv0:0-2 /dev/pv0:10-10', str(exc))

    def test_non_linear_refused(self):
        backend = self.backend()
        original = self.lvm._lvs

        def striped(cmd):
            data = jsonutils.loads(original(cmd))
            for row in data['report'][0]['lv']:
                row['seg_pe_ranges'] = '/dev/pv0:0-1 /dev/pv1:0-1'
            return jsonutils.dumps(data)

        self.lvm._lvs = striped
        self.lvm.volumes['a'] = [(0, 1)]
        self.assertRaises(ValueError, backend.extent, 'a')


class TestMetadataOnlyActivation(LvmUnitBase):

    def backend(self, **kwargs):
        return lvm.LvmBackend('vg0', activation=lvm.MetadataOnlyActivation(),
                              **kwargs)

    def test_root_through_a_loop_device(self):
        self.lvm.volumes['other'] = [(0, 1)]
        self.lvm.next_pe = 2
        disk = self.backend().create_root(self.base, self.path('disk'),
                                          16 * MiB)

        lv = '%s_disk' % UUID
        offset = PE_START + 2 * EXTENT
        self.assertEqual(['/usr/sbin/lvcreate'] + METADATA_ONLY + [
            '--yes', '--activate', 'n', '--zero', 'n', '--wipesignatures',
            'n', '--contiguous', 'y', '-L', '%db' % (16 * MiB), '-n', lv,
            'vg0'], self.lvm.call('lvcreate'))
        self.assertEqual(['/usr/sbin/losetup', '--find', '--show',
                          '--direct-io=on', '--offset', str(offset),
                          '--sizelimit', str(16 * MiB), '/dev/pv0'],
                         [c for c in self.lvm.calls
                          if '--find' in c][0])
        self.assertEqual('/dev/loop10', disk.path)
        self.assertEqual('/dev/loop10',
                         self.lvm.call('qemu-img', 'convert')[-1])
        for cmd, env in zip(self.lvm.calls, self.lvm.envs):
            if os.path.basename(cmd[0]) in ('vgs', 'lvs', 'pvs', 'lvcreate'):
                self.assertEqual(METADATA_ONLY, cmd[1:3])
                self.assertEqual('1', env['DM_DISABLE_UDEV'])
                self.assertIn('PATH', env)

    def test_loop_device_reused(self):
        backend = self.backend()
        backend.create_swap(self.path('disk.swap'), 8 * MiB)
        lv = '%s_disk.swap' % UUID
        self.assertEqual('/dev/loop10', backend.activation.attach(backend,
                                                                  lv))
        self.assertEqual(1, len(self.lvm.loops))

    def test_failure_detaches_and_removes(self):
        self.lvm.fail['qemu-img'] = 'boom'
        self.assertRaises(errors.DiskCreationFailed,
                          self.backend().create_root, self.base,
                          self.path('disk'), 16 * MiB)
        self.assertEqual([], self.lvm.loops)
        self.assertEqual({}, self.lvm.volumes)
        # The loop device goes before the volume it covers.
        detach = next(i for i, c in enumerate(self.lvm.calls)
                      if '--detach' in c)
        self.assertLess(detach, self.lvm.commands().index('lvremove'))

    def test_resize_reattaches(self):
        backend = self.backend()
        backend.create_root(self.base, self.path('disk'), 16 * MiB)
        disk = backend.resize(self.path('disk'), 32 * MiB)
        self.assertIn('--alloc', self.lvm.call('lvextend'))
        self.assertEqual([32 * MiB], [x['sizelimit']
                                      for x in self.lvm.loops])
        self.assertEqual(self.lvm.loops[0]['name'], disk.path)

    def test_delete_detaches(self):
        backend = self.backend()
        backend.create_swap(self.path('disk.swap'), 8 * MiB)
        backend.delete_instance(UUID)
        self.assertEqual([], self.lvm.loops)
        self.assertEqual({}, self.lvm.volumes)
