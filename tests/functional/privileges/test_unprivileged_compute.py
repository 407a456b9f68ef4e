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

"""The driver's root paths from an unprivileged nova-compute process.

:mod:`compute_host` runs as ``nobody`` (no capabilities, no ``disk``
group), reads ``/etc/nova/nova.conf`` and starts its privsep daemons as
nova-compute does: through ``sudo nova-rootwrap /etc/nova/rootwrap.conf``,
with the sudoers lines and rootwrap filters the operator documentation
gives (:class:`tests.fixtures.unprivileged.ComputeUser`).

* LVM: a real volume group on a loop device (device nodes root's), with
  the metadata-only activation (no device-mapper here). The process
  creates an instance's root (from a qcow2 image), ephemeral and swap
  volumes and grows the root one, then removes them with ``volume_clear =
  zero``. The test reads lvm2's view and the physical volume's bytes as
  root: the image's data, the ext4 and swap signatures, then zeros.
* NFS: os-brick's mount of an export, through the driver's ``mount``
  transport. This kernel has no NFS client, so the mount cannot succeed:
  it must fail with the kernel's own refusal ("No such device", an
  unknown file system type), where the same command without privsep
  fails on permissions. No NFS server is needed: the kernel refuses the
  file system type before any packet is sent.

Every process of a run lives in a private mount namespace; none may be
left once the run ends (the privsep daemons exit with their client).
"""

import os

import fixtures
from oslo_serialization import jsonutils
from oslo_utils import uuidutils
from oslotest import base
from testtools import content

from tests.fixtures import lvm as lvm_fixture
from tests.fixtures import unprivileged
from tests.unit.storage import fakes

MiB = 1024 * 1024
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'compute_host.py')
MARKER = b'PYVIRT-DISK-MARKER unprivileged-root\n'
# What a missing privilege or a refused root helper looks like.
PERMISSION_ERRORS = ('permission denied', 'operation not permitted',
                     'only root', 'not installed setuid', 'unauthorized',
                     'sudo', 'rootwrap', 'not allowed', 'must be superuser')
# /proc/PID/status capability sets.
CAP_SYS_ADMIN = 21
CAP_IPC_LOCK = 14


def caps(hex_mask):
    mask = int(hex_mask, 16)
    return {bit for bit in range(64) if mask & (1 << bit)}


class UnprivilegedComputeTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.uuid = uuidutils.generate_uuid()
        # Directories nova-compute's user owns on a compute host: state,
        # locks, NFS mount points, the image cache.
        self.state = os.path.join(unprivileged.shared_tempdir(
            self, 'pyvirt-unprivileged-'), 'state')
        for name in ('', 'locks', 'mnt', '_base'):
            os.mkdir(os.path.join(self.state, name))

    def use_user(self, volume_group='pyvirt-unused'):
        """The unprivileged user, with a nova.conf naming the group."""
        self.user = self.useFixture(unprivileged.ComputeUser(
            self.nova_conf(volume_group)))
        for name in ('', 'locks', 'mnt', '_base'):
            os.chown(os.path.join(self.state, name), self.user.uid,
                     self.user.gid)

    def nova_conf(self, volume_group):
        return '\n'.join([
            '[DEFAULT]',
            'state_path = %s' % self.state,
            'instances_path = %s' % os.path.join(self.state, 'instances'),
            'rootwrap_config = /etc/nova/rootwrap.conf',
            'debug = True',
            'use_stderr = True',
            '[oslo_concurrency]',
            'lock_path = %s' % os.path.join(self.state, 'locks'),
            '[pyvirt]',
            'images_type = lvm',
            'images_volume_group = %s' % volume_group,
            'nfs_transport = mount',
            'nfs_mount_point_base = %s' % os.path.join(self.state, 'mnt'),
            ''])

    def start(self, action, **args):
        run = self.user.start(SCRIPT, action, jsonutils.dumps(args))
        self.addDetail('%s-log' % action, content.Content(
            content.UTF8_TEXT, lambda: [run.errors().encode()]))
        return run

    def result(self, run):
        result = run.result()
        # The process is the unprivileged user, in no group, with no
        # capability, and read nova.conf as nova-compute does (privsep
        # hands the file on to its daemons).
        self.assertEqual((self.user.uid, self.user.uid),
                         (result['uid'], result['euid']))
        self.assertEqual([], result['groups'])
        self.assertEqual({'CapPrm': '0000000000000000',
                          'CapEff': '0000000000000000'}, result['self'])
        self.assertEqual(['/etc/nova/nova.conf'], result['config_files'])
        return result

    def finish(self, run):
        self.assertEqual(0, run.finish(), 'compute_host.py failed')
        self.assertEqual([], self.user.leftovers,
                         'processes left in the namespace')

    def image(self):
        """A qcow2 image with MARKER, in a cache directory the user owns."""
        raw = fakes.make_raw(os.path.join(self.tmp, 'src.raw'), 16 * MiB,
                             MARKER)
        path = os.path.join(self.state, '_base', 'image')
        fakes.qemu_img('convert', '-f', 'raw', '-O', 'qcow2', raw, path)
        os.chown(path, self.user.uid, self.user.gid)
        os.chmod(path, 0o644)
        return path

    def offset(self, lv):
        ranges = self.vgfx.volumes()[lv]['ranges']
        self.assertEqual(1, len(ranges), ranges)
        first_pe = int(ranges[0].rpartition(':')[2].split('-')[0])
        return self.vgfx.pe_start() + first_pe * self.vgfx.extent_size()

    def test_lvm_volumes_created_and_deleted(self):
        self.vgfx = self.useFixture(lvm_fixture.VolumeGroupFixture(
            size=128 * MiB, directory=self.tmp))
        self.use_user(self.vgfx.vg)
        # Without privsep the user cannot even read the physical volume.
        info = os.stat(self.vgfx.pv)
        self.assertEqual(0, info.st_mode & 0o007)
        self.assertNotEqual(self.user.gid, info.st_gid)

        run = self.start(
            'lvm', instances=os.path.join(self.state, 'instances'),
            uuid=self.uuid, image=self.image(), virtual_size=16 * MiB)
        created = self.result(run)

        lv = '%s_disk' % self.uuid
        sizes = {name: v['size'] for name, v in self.vgfx.volumes().items()}
        self.assertEqual({lv: 48 * MiB, lv + '.eph0': 8 * MiB,
                          lv + '.swap': 8 * MiB}, sizes)
        self.assertEqual(sizes, created['volumes'])
        self.assertEqual([['disk', 'block', 'raw'],
                          ['disk.eph0', 'block', 'raw'],
                          ['disk.swap', 'block', 'raw']],
                         [[d[0], d[2], d[3]] for d in created['disks']])
        # The image's data, the file system and the swap signature are
        # on the physical volume, where lvm2 says the volumes are.
        root = self.offset(lv)
        self.assertEqual(MARKER, self.vgfx.read(root, len(MARKER)))
        superblock = self.vgfx.read(self.offset(lv + '.eph0') + 1024, 1024)
        self.assertEqual(b'\x53\xef', superblock[56:58])
        swap = self.vgfx.read(self.offset(lv + '.swap'), 4096)
        self.assertEqual(b'SWAPSPACE2', swap[-10:])
        # The loop devices the metadata-only activation attached.
        self.assertEqual(sorted(d[1] for d in created['disks']),
                         self.vgfx.loops())

        # The driver's daemon: root, with its two capabilities, and
        # started for this process.
        self.assertEqual(1, len(created['daemons']), created['daemons'])
        daemon = created['daemons'][0]
        self.assertEqual(['0', '0', '0', '0'], daemon['Uid'])
        self.assertEqual({CAP_SYS_ADMIN, CAP_IPC_LOCK},
                         caps(daemon['CapPrm']))
        self.assertEqual({CAP_SYS_ADMIN, CAP_IPC_LOCK},
                         caps(daemon['CapEff']))

        run.proceed()
        deleted = self.result(run)
        self.finish(run)

        self.assertEqual(sorted(sizes), deleted['removed'])
        self.assertEqual({}, deleted['volumes'])
        self.assertEqual({}, self.vgfx.volumes())
        self.assertEqual([], self.vgfx.loops())
        # volume_clear = zero: dd ran before lvremove.
        self.assertEqual(b'\0' * 48 * MiB, self.vgfx.read(root, 48 * MiB))

    def test_nfs_mount_reaches_the_kernel(self):
        with open('/proc/filesystems') as f:
            if any(line.split()[-1] in ('nfs', 'nfs4') for line in f):
                self.skipTest('this kernel has an NFS client: the mount '
                              'would need a server')
        self.use_user()
        export = '127.0.0.1:/pyvirt-%s' % self.uuid

        run = self.start(
            'nfs', uuid=self.uuid, export=export,
            volume_id=uuidutils.generate_uuid(), name='volume-1',
            workdir=self.user.workdir)
        result = self.result(run)
        self.finish(run)

        self.assertFalse(result['connected'])
        error = result['error']
        self.assertIn('mounting NFS export %s on %s failed' % (
            export, result['mountpoint']), error)
        # The kernel's refusal, from mount.nfs (nfs-common) or from
        # util-linux's mount without it.
        self.assertTrue('No such device' in error or
                        "unknown filesystem type 'nfs'" in error, error)
        for marker in PERMISSION_ERRORS:
            self.assertNotIn(marker, error.lower())
        # os-brick tried NFS 4.2, 4.1, then the defaults, all as root.
        self.assertEqual(3, error.count('Exit code: 32'), error)
        # The failed mount point is gone again.
        self.assertFalse(result['mountpoint_left'])
        self.assertEqual([], os.listdir(os.path.join(self.state, 'mnt')))
        # os-brick's daemon ran it, as root.
        self.assertEqual(1, len(result['daemons']), result['daemons'])
        self.assertEqual(['0', '0', '0', '0'], result['daemons'][0]['Uid'])
        # Without privsep, the same command does not reach the kernel:
        # mount.nfs refuses a user mount that fstab does not allow.
        control = result['unprivileged_error'] or ''
        self.assertIn('fstab', control)
        self.assertNotIn('No such device', control)
