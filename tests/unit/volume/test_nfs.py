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

"""The NFS volume driver: disk sources, and mounts at os-brick's boundary.

The ``qemu`` transport runs nothing on the host; its XML is checked here and
against a real NFS server and guest in the functional tests. The ``mount``
transport cannot run on the project's machines (no kernel NFS client), so
it is tested at the boundary where os-brick and the driver leave Python:
the argv of each command (``processutils.execute``) and the mount table,
both replaced by :class:`FakeHost`, and the privsep daemon each command
ran in (os-brick's and the driver's, answered in the test process by
:class:`tests.fixtures.privsep.InProcessDaemons`).
"""

import hashlib
import os
import types
from unittest import mock

import fixtures
import libvirt
from nova import exception
from oslo_concurrency import processutils
from oslotest import base

from nova_pyvirt.design import disks as design_disks
from nova_pyvirt.design import request
from nova_pyvirt.privsep import mounts as privsep_mounts
from nova_pyvirt import volume
from nova_pyvirt.volume import nfs
from nova_pyvirt import xml
from tests import design_support
from tests.fixtures import privsep as privsep_fixture

EXPORT = '192.0.2.10:/srv/cinder'
VOLUME_ID = '5a1f0c57-47a4-4b8e-9c42-6d6c6f1a9d01'
INSTANCE = types.SimpleNamespace(uuid='11111111-2222-4333-8444-555555555555')
OTHER = types.SimpleNamespace(uuid='99999999-2222-4333-8444-555555555555')
BRICK = 'privsep_osbrick'
PYVIRT = 'pyvirt_sys_admin'


def connection_info(name='volume-%s' % VOLUME_ID, export=EXPORT,
                    volume_id=VOLUME_ID, **data):
    values = {'export': export, 'name': name, 'options': None,
              'format': 'raw'}
    values.update(data)
    return {'driver_volume_type': 'nfs', 'serial': volume_id,
            'data': values}


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


class FakeDomain(object):

    def __init__(self, uuid, files, error=None):
        self.uuid = uuid
        self.files = files
        self.error = error

    def UUIDString(self):
        return self.uuid

    def XMLDesc(self, flags):
        if self.error is not None:
            raise self.error
        disks = ''.join("<disk type='file' device='disk'><source file='%s'/>"
                        "<target dev='vd%s'/></disk>" % (path, chr(98 + i))
                        for i, path in enumerate(self.files))
        return ("<domain type='qemu'><name>i-%s</name><uuid>%s</uuid>"
                "<devices>%s</devices></domain>" % (self.uuid, self.uuid,
                                                    disks))


class FakeHost(object):
    """libvirt domains, the mount table and the commands of a host.

    Every ``processutils.execute`` call is recorded as ``(argv, kwargs,
    privsep context it ran in)``. ``mount -t nfs`` and ``umount`` change
    the mount table, which os-brick, the driver and its privsep entrypoint
    read from the file ``mounts``; ``failures`` maps a command name to the
    stderr it fails with.
    """

    def __init__(self, tmp, daemons):
        self.daemons = daemons
        self.domains = []
        self.list_error = None
        self.commands = []
        self.failures = {}
        self.mounts = os.path.join(tmp, 'mounts')
        self.table = {}
        self._write()

    def list_domains(self, only_running=False):
        if self.list_error is not None:
            raise self.list_error
        return list(self.domains)

    def _write(self):
        with open(self.mounts, 'w') as handle:
            handle.write('/dev/vda / ext4 rw 0 0\n')
            for mountpoint, source in sorted(self.table.items()):
                handle.write('%s %s nfs4 rw 0 0\n' % (
                    source, mountpoint.replace(' ', '\\040')))

    def read_mounts(self, _client=None):
        return {mp: src for mp, src in self.table.items()}

    def execute(self, *argv, **kwargs):
        self.commands.append((list(argv), kwargs, self.daemons.current()))
        name = argv[0]
        if name in self.failures:
            raise processutils.ProcessExecutionError(
                stderr=self.failures[name], exit_code=32,
                cmd=' '.join(argv))
        if name == 'mkdir':
            os.makedirs(argv[-1], exist_ok=True)
        elif name == 'mount':
            self.table[argv[-1]] = argv[-2]
            self._write()
        elif name == 'umount':
            self.table.pop(argv[-1], None)
            self._write()
        return '', ''

    def argvs(self, name=None):
        return [argv for argv, _kw, _ctx in self.commands
                if name is None or argv[0] == name]

    def ran(self, name=None):
        """``[(argv, privsep context)]`` of the commands run."""
        return [(argv, ctx) for argv, _kw, ctx in self.commands
                if name is None or argv[0] == name]


class NFSDriverTestCase(base.BaseTestCase):

    transport = 'qemu'

    def setUp(self):
        super(NFSDriverTestCase, self).setUp()
        self.conf = self.useFixture(design_support.ConfFixture())
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.base_dir = os.path.join(self.tmp, 'mnt')
        self.conf.set(nfs_transport=self.transport,
                      nfs_mount_point_base=self.base_dir)
        self.daemons = self.useFixture(privsep_fixture.InProcessDaemons())
        self.host = FakeHost(self.tmp, self.daemons)
        self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', side_effect=self.host.execute))
        # Commands by name, as os-brick runs them.
        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.privsep._process.find_tool', lambda name: name))
        self.useFixture(fixtures.MockPatch(
            'os_brick.remotefs.remotefs.RemoteFsClient._read_mounts',
            self.host.read_mounts))
        self.useFixture(fixtures.MockPatchObject(
            nfs, 'MOUNTS_FILE', self.host.mounts))
        self.useFixture(fixtures.MockPatchObject(
            privsep_mounts, 'MOUNTS_FILE', self.host.mounts))
        # Mount records are per process; each test starts with none.
        self.useFixture(fixtures.MockPatchObject(
            nfs, '_CONNECTED', nfs.collections.defaultdict(set)))
        self.driver = nfs.NFSVolumeDriver(self.conf.conf, self.host)

    def assertXML(self, expected, obj):
        self.assertEqual(xml.canonical(xml.parse_element(expected)),
                         xml.canonical(obj))


class RegistryAndParsingTest(NFSDriverTestCase):

    def test_registered_for_nfs(self):
        self.assertIs(nfs.NFSVolumeDriver, volume._DRIVERS['nfs'])

    def test_split_export(self):
        for export, expected in [
                ('192.0.2.10:/srv/cinder', ('192.0.2.10', '/srv/cinder')),
                ('nfs.example.org:/srv/cinder/',
                 ('nfs.example.org', '/srv/cinder')),
                ('[2001:db8::10]:/srv', ('2001:db8::10', '/srv')),
                ('host:/', ('host', '/')),
                ('host://a//b/../c', ('host', '/a/c'))]:
            self.assertEqual(expected, nfs.split_export(export), export)

    def test_split_export_rejects(self):
        for export in (None, '', 'host', 'host:', 'host:srv', ':/srv',
                       '2001:db8::10:/srv', '[2001:db8::10]/srv'):
            self.assertRaises(ValueError, nfs.split_export, export)

    def test_bad_export_names_volume_and_export(self):
        info = connection_info(export='192.0.2.10/srv/cinder')
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.disk_source, info, INSTANCE)
        self.assertIn(VOLUME_ID, str(exc))
        self.assertIn('192.0.2.10/srv/cinder', str(exc))
        self.assertIn('host:/path', str(exc))

    def test_bad_file_names(self):
        for name in ('', None, '../etc/passwd', 'a/b', '..', '.'):
            exc = self.assertRaises(exception.InvalidVolume,
                                    self.driver.connect,
                                    connection_info(name=name), INSTANCE)
            self.assertIn(VOLUME_ID, str(exc))
            self.assertIn(EXPORT, str(exc))

    def test_unknown_format(self):
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.disk_source,
                                connection_info(format='vmdk'), INSTANCE)
        self.assertIn("'vmdk'", str(exc))
        self.assertIn(EXPORT, str(exc))

    def test_volume_named_by_file_without_id(self):
        info = connection_info(volume_id=None, export='bad')
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.connect, info, INSTANCE)
        self.assertIn('NFS volume volume-%s (export bad' % VOLUME_ID,
                      str(exc))

    def test_is_mounted_reads_the_mount_table(self):
        table = os.path.join(self.tmp, 'table')
        with open(table, 'w') as handle:
            handle.write('srv:/a /mnt/with\\040space nfs rw 0 0\n'
                         'srv:/b /mnt/plain/ nfs rw 0 0\n')
        self.assertTrue(nfs.is_mounted('/mnt/with space', table))
        self.assertTrue(nfs.is_mounted('/mnt/plain', table))
        self.assertFalse(nfs.is_mounted('/mnt', table))


class QemuTransportTest(NFSDriverTestCase):

    transport = 'qemu'

    def test_disk_source_raw(self):
        disk = self.driver.disk_source(connection_info(), INSTANCE)
        self.assertXML(
            "<disk type='network'><driver type='raw'/>"
            "<source protocol='nfs' name='/srv/cinder/volume-%s'>"
            "<host name='192.0.2.10'/>"
            "<identity user='root' group='root'/></source></disk>"
            % VOLUME_ID, disk)

    def test_disk_source_qcow2_ipv6(self):
        info = connection_info(name='volume-1.snap-2', format='qcow2',
                               export='[2001:db8::10]:/exports/c/')
        disk = self.driver.disk_source(info, INSTANCE)
        self.assertXML(
            "<disk type='network'><driver type='qcow2'/>"
            "<source protocol='nfs' name='/exports/c/volume-1.snap-2'>"
            "<host name='2001:db8::10'/>"
            "<identity user='root' group='root'/></source></disk>", disk)

    def test_format_defaults_to_raw(self):
        disk = self.driver.disk_source(connection_info(format=None),
                                       INSTANCE)
        self.assertEqual('raw', disk.driver_type)

    def test_guest_disk(self):
        """What guest design makes of it (the XML libvirt gets)."""
        source = self.driver.disk_source(connection_info(), INSTANCE)
        spec = request.VolumeDisk(VOLUME_ID, source)
        disk = design_disks.volume_disk(spec, 'virtio', 'vdb')
        self.assertXML(
            "<disk type='network' device='disk'>"
            "<driver name='qemu' type='raw' cache='none'/>"
            "<source protocol='nfs' name='/srv/cinder/volume-%s'>"
            "<host name='192.0.2.10'/>"
            "<identity user='root' group='root'/></source>"
            "<target dev='vdb' bus='virtio'/>"
            "<serial>%s</serial></disk>" % (VOLUME_ID, VOLUME_ID), disk)

    def test_connect_and_disconnect_touch_nothing(self):
        info = connection_info(options='-o vers=4.1')
        with mock.patch.object(nfs.remotefs, 'RemoteFsClient') as client:
            self.driver.connect(info, INSTANCE)
            self.driver.disconnect(info, INSTANCE)
            self.driver.disconnect(info, INSTANCE)
        client.assert_not_called()
        self.assertEqual([], self.host.commands)
        self.assertNotIn('device_path', info['data'])

    def test_extend_reports_the_requested_size(self):
        self.assertEqual(2 << 30, self.driver.extend(connection_info(),
                                                     INSTANCE, 2 << 30))
        self.assertEqual([], self.host.commands)


class MountTransportTest(NFSDriverTestCase):

    transport = 'mount'

    def setUp(self):
        super(MountTransportTest, self).setUp()
        self.mountpoint = os.path.join(self.base_dir, md5(EXPORT))

    def file_of(self, name):
        return os.path.join(self.mountpoint, name)

    def test_connect_mounts_with_os_brick(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        # os-brick tries NFS 4.2 first; the fake mount succeeds at once.
        # The mount point is made as nova-compute's user, the mount in
        # os-brick's privsep daemon.
        self.assertEqual(
            [(['mkdir', '-p', self.mountpoint], None),
             (['mount', '-t', 'nfs', '-o', 'vers=4,minorversion=2', EXPORT,
               self.mountpoint], BRICK)],
            self.host.ran())
        self.assertEqual([BRICK], [c[0] for c in self.daemons.calls])
        self.assertEqual(self.file_of('volume-' + VOLUME_ID),
                         info['data']['device_path'])
        self.assertXML(
            "<disk type='file'><driver type='raw'/>"
            "<source file='%s'/></disk>" % self.file_of('volume-' +
                                                        VOLUME_ID),
            self.driver.disk_source(info, INSTANCE))

    def test_mount_options_from_conf_and_share(self):
        self.conf.set(nfs_mount_options='vers=3,proto=tcp')
        self.driver.connect(connection_info(options='-o nolock'), INSTANCE)
        self.assertEqual(
            [['mount', '-t', 'nfs', '-o', 'vers=3,proto=tcp', '-o',
              'nolock', EXPORT, self.mountpoint]], self.host.argvs('mount'))

    def test_mounted_export_is_not_mounted_again(self):
        self.driver.connect(connection_info(), INSTANCE)
        self.driver.connect(connection_info(name='volume-2'), OTHER)
        self.assertEqual(1, len(self.host.argvs('mount')))

    def test_qcow2_file_disk(self):
        info = connection_info(format='qcow2')
        self.driver.connect(info, INSTANCE)
        disk = self.driver.disk_source(info, INSTANCE)
        self.assertEqual(('file', 'qcow2'), (disk.type, disk.driver_type))

    def test_mount_failure_names_volume_export_and_cause(self):
        self.host.failures['mount'] = 'mount.nfs: No such device'
        exc = self.assertRaises(exception.VolumeAttachFailed,
                                self.driver.connect, connection_info(),
                                INSTANCE)
        message = str(exc)
        self.assertIn(VOLUME_ID, message)
        self.assertIn(EXPORT, message)
        self.assertIn(self.mountpoint, message)
        self.assertIn('No such device', message)
        # os-brick tried NFS 4.2, 4.1, then the defaults.
        self.assertEqual(['vers=4,minorversion=2', 'vers=4,minorversion=1'],
                         [argv[4] for argv in self.host.argvs('mount')[:2]])
        self.assertEqual(3, len(self.host.argvs('mount')))
        self.assertEqual({}, dict(nfs._CONNECTED))
        self.assertFalse(os.path.exists(self.mountpoint))

    def test_disconnect_last_volume_unmounts(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual([(['umount', self.mountpoint], PYVIRT)],
                         self.host.ran('umount'))
        self.assertEqual(['umount_nfs'], self.daemons.names(PYVIRT))
        self.assertFalse(os.path.exists(self.mountpoint))
        # Again: nothing mounted, nothing to do.
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual(1, len(self.host.argvs('umount')))

    def test_export_stays_mounted_while_another_volume_uses_it(self):
        first, second = connection_info(), connection_info(name='volume-2')
        self.driver.connect(first, INSTANCE)
        self.driver.connect(second, OTHER)
        self.driver.disconnect(first, INSTANCE)
        self.assertEqual([], self.host.argvs('umount'))
        self.driver.disconnect(second, OTHER)
        self.assertEqual(1, len(self.host.argvs('umount')))

    def test_same_volume_on_two_instances(self):
        # A multiattach volume: one file, two attachments.
        self.driver.connect(connection_info(), INSTANCE)
        self.driver.connect(connection_info(), OTHER)
        self.driver.disconnect(connection_info(), INSTANCE)
        self.assertEqual([], self.host.argvs('umount'))
        self.driver.disconnect(connection_info(), OTHER)
        self.assertEqual(1, len(self.host.argvs('umount')))

    def test_reconnect_counts_once(self):
        # Hard reboot connects the volumes of a guest again.
        self.driver.connect(connection_info(), INSTANCE)
        self.driver.connect(connection_info(), INSTANCE)
        self.driver.disconnect(connection_info(), INSTANCE)
        self.assertEqual(1, len(self.host.argvs('umount')))

    def test_guests_found_through_libvirt_keep_the_mount(self):
        """After a restart the process has no records: libvirt tells."""
        self.host.table[self.mountpoint] = EXPORT
        self.host._write()
        self.host.domains = [FakeDomain(OTHER.uuid,
                                        [self.file_of('volume-2')])]
        self.driver.disconnect(connection_info(), INSTANCE)
        self.assertEqual([], self.host.argvs('umount'))
        self.host.domains = [FakeDomain(OTHER.uuid, ['/elsewhere/disk'])]
        self.driver.disconnect(connection_info(), INSTANCE)
        self.assertEqual(1, len(self.host.argvs('umount')))

    def test_own_disk_still_in_the_domain_does_not_keep_the_mount(self):
        # nova may disconnect before the domain is undefined.
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        self.host.domains = [FakeDomain(INSTANCE.uuid, [
            info['data']['device_path']])]
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual(1, len(self.host.argvs('umount')))

    def test_another_volume_of_the_same_guest_keeps_the_mount(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        self.host.domains = [FakeDomain(INSTANCE.uuid, [
            info['data']['device_path'], self.file_of('volume-2')])]
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual([], self.host.argvs('umount'))

    def test_domain_gone_while_listing_is_skipped(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        gone = libvirt.libvirtError('no domain')
        gone.err = (libvirt.VIR_ERR_NO_DOMAIN,) + (None,) * 8
        self.host.domains = [FakeDomain(OTHER.uuid, [], error=gone)]
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual(1, len(self.host.argvs('umount')))

    def test_libvirt_unavailable_keeps_the_mount(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        self.host.list_error = exception.HypervisorUnavailable()
        logger = self.useFixture(fixtures.FakeLogger())
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual([], self.host.argvs('umount'))
        self.assertIn('keeping export %s mounted' % EXPORT, logger.output)
        self.assertIn(VOLUME_ID, logger.output)

    def test_busy_umount_is_logged_not_raised(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        self.host.failures['umount'] = 'umount: target is busy.'
        logger = self.useFixture(fixtures.FakeLogger())
        self.driver.disconnect(info, INSTANCE)
        self.assertIn('target is busy', logger.output)
        self.assertIn(VOLUME_ID, logger.output)
        self.assertTrue(os.path.isdir(self.mountpoint))
        # The next disconnect tries again.
        del self.host.failures['umount']
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual(2, len(self.host.argvs('umount')))
        self.assertFalse(os.path.exists(self.mountpoint))

    def test_mounted_base_path_hashes_like_nova(self):
        from nova import utils as nova_utils
        self.assertEqual(nova_utils.get_hash_str(EXPORT),
                         os.path.basename(self.mountpoint))

    def test_no_command_runs_through_a_root_helper(self):
        # Whatever nova's root helper is, root comes from privsep only.
        for disable_rootwrap in (False, True):
            self.conf.set(group='workarounds',
                          disable_rootwrap=disable_rootwrap)
            info = connection_info()
            self.driver.connect(info, INSTANCE)
            self.driver.disconnect(info, INSTANCE)
        self.assertEqual(6, len(self.host.commands))
        for argv, kwargs, _ctx in self.host.commands:
            self.assertFalse(kwargs.get('run_as_root'), argv)
            self.assertNotIn('root_helper', kwargs)

    def test_only_nfs_mounts_are_unmounted(self):
        # The mount table changed under the driver: an ext4 file system
        # sits on the mount point. The daemon refuses; the error is logged.
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        with open(self.host.mounts, 'a') as handle:
            handle.write('/dev/vdb %s ext4 rw 0 0\n' % self.mountpoint)
        logger = self.useFixture(fixtures.FakeLogger())
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual([], self.host.argvs('umount'))
        self.assertIn('is not an NFS mount (ext4)', logger.output)
        self.assertEqual(['umount_nfs'], self.daemons.names(PYVIRT))

    def test_extend_reports_the_requested_size(self):
        self.assertEqual(3 << 30, self.driver.extend(connection_info(),
                                                     INSTANCE, 3 << 30))
        self.assertEqual([], self.host.commands)
