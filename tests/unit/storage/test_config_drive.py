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

"""The config drive: when an instance gets one, what is on it, failures.

Drives are built for real with nova's builder and ``genisoimage`` and read
back with ``isoinfo`` (both from Debian's ``genisoimage``); the content is
compared with what nova's metadata API serves for the same instance.
"""

import base64
import os
import shutil
import stat

import fixtures
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslo_utils import timeutils
from oslotest import base

from nova.api.metadata import base as instance_metadata
from nova import context as nova_context
from nova.network import model as network_model
from nova import objects

from nova_pyvirt import exception
from nova_pyvirt.storage import config_drive
from nova_pyvirt.storage import instance_disks
from nova_pyvirt.storage import instance_files
from tests import design_support
from tests.unit import virt_fakes

KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvZ0kP1 user@laptop'
USER_DATA = b'#!/bin/sh\necho marker > /run/marker\n'
HAVE_TOOLS = bool(shutil.which('genisoimage') and shutil.which('isoinfo'))
NO_TOOLS = 'genisoimage/isoinfo (Debian package genisoimage) not installed'
HAVE_VFAT_TOOLS = bool(shutil.which('mkfs.vfat') and shutil.which('mcopy'))
NO_VFAT_TOOLS = ('mkfs.vfat/mcopy (Debian packages dosfstools, mtools) not '
                 'installed')


def metadata_instance(**kw):
    """An instance with everything nova's metadata code reads."""
    ctx = nova_context.get_admin_context()
    values = dict(
        uuid=design_support.UUID, id=7, user_id='user-1',
        project_id='project-1', display_name='vm1', hostname='vm1',
        key_name='mykey', key_data=KEY, host='host1', launch_index=0,
        reservation_id='r-0000001',
        image_ref='c0ffee00-0000-4000-8000-000000000001', kernel_id=None,
        ramdisk_id=None, vcpus=1, root_device_name='/dev/vda',
        metadata={'role': 'web'}, device_metadata=None, numa_topology=None,
        default_ephemeral_device=None, default_swap_device=None,
        system_metadata={}, availability_zone='nova', config_drive='True',
        launched_at=None, os_type=None,
        user_data=base64.b64encode(USER_DATA).decode(),
        flavor=design_support.flavor(vcpus=1, memory_mb=128, root_gb=0),
        ec2_ids=objects.EC2Ids(instance_id='i-00000007',
                               ami_id='ami-00000001', kernel_id=None,
                               ramdisk_id=None))
    values.update(kw)
    instance = objects.Instance(context=ctx, **values)
    instance.keypairs = objects.KeyPairList(objects=[objects.KeyPair(
        name='mykey', type='ssh', public_key=KEY)])
    instance.info_cache = objects.InstanceInfoCache(
        context=ctx, instance_uuid=instance.uuid,
        network_info=network_model.NetworkInfo([]))
    return instance


def network_info():
    vif = design_support.vif(datapath_type='netdev')
    subnet = network_model.Subnet(
        cidr='192.168.1.0/24', gateway=network_model.IP('192.168.1.1'),
        ips=[network_model.FixedIP(address='192.168.1.50')])
    vif['network']['subnets'] = [subnet]
    return network_model.NetworkInfo([vif])


def read_iso(path, name):
    out, _err = processutils.execute('isoinfo', '-i', path, '-R', '-x', name)
    return out


def read_vfat(path, name):
    out, _err = processutils.execute('mtype', '-i', path, '::' + name)
    return out


class DriveFixture(fixtures.Fixture):
    """nova's CONF, an instance directory and no Neutron to ask."""

    def _setUp(self):
        self.conf = self.useFixture(design_support.ConfFixture())
        tmp = self.useFixture(fixtures.TempDir()).path
        self.files = instance_files.InstanceFiles(tmp, design_support.UUID)
        self.files.create()
        self.tmp = tmp
        self.useFixture(NoServices())


class NoServices(fixtures.Fixture):
    """What nova's metadata code asks Neutron and the database."""

    def _setUp(self):
        self.useFixture(fixtures.MockPatch(
            'nova.network.security_group_api.get_instance_security_groups',
            return_value=[{'name': 'default'}]))
        self.useFixture(fixtures.MockPatch(
            'nova.objects.BlockDeviceMappingList.get_by_instance_uuid',
            return_value=objects.BlockDeviceMappingList(objects=[])))


class RequiredTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(DriveFixture())

    def test_requested(self):
        self.assertTrue(config_drive.required(metadata_instance()))

    def test_not_requested(self):
        instance = metadata_instance(config_drive='')
        self.assertFalse(config_drive.required(instance))
        self.assertIsNone(config_drive.create(instance, self.fx.files, [],
                                              None, network_info()))
        self.assertEqual([], os.listdir(self.fx.files.path))

    def test_forced_for_new_instances_only(self):
        self.fx.conf.set(group=None, force_config_drive=True)
        self.assertTrue(config_drive.required(
            metadata_instance(config_drive='')))
        self.assertFalse(config_drive.required(metadata_instance(
            config_drive='', launched_at=timeutils.utcnow())))

    def test_image_makes_it_mandatory(self):
        instance = metadata_instance(
            config_drive='',
            system_metadata={'image_img_config_drive': 'mandatory'})
        self.assertTrue(config_drive.required(instance))

    def test_injected_files_without_drive_are_refused(self):
        instance = metadata_instance(config_drive='')
        exc = self.assertRaises(
            exception.FileInjectionNotSupported,
            config_drive.check_injection, instance,
            [('/etc/motd', b'hello')])
        self.assertIn('1 file(s) to inject', str(exc))
        self.assertIn('force_config_drive', str(exc))
        config_drive.check_injection(instance, [])
        config_drive.check_injection(metadata_instance(),
                                     [('/etc/motd', b'hello')])

    def test_format_chooses_the_device(self):
        self.assertEqual('cdrom', config_drive.disk('/d', 'iso9660').device)
        self.assertEqual('disk', config_drive.disk('/d', 'vfat').device)


class Iso9660Test(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        if not HAVE_TOOLS:
            self.skipTest(NO_TOOLS)
        self.fx = self.useFixture(DriveFixture())
        self.instance = metadata_instance()

    def build(self, files=(), password=None):
        return config_drive.create(self.instance, self.fx.files,
                                   list(files), password, network_info())

    def test_content_is_what_the_metadata_api_serves(self):
        drive = self.build(files=[('/etc/motd', b'hello')],
                           password='s3cret')
        self.assertEqual(self.fx.files.file('disk.config'), drive.path)
        self.assertEqual(('cdrom', 'raw'), (drive.device, drive.format))
        label = processutils.execute('isoinfo', '-d', '-i', drive.path)[0]
        self.assertIn('Volume id: config-2', label)

        served = instance_metadata.InstanceMetadata(
            self.instance, content=[('/etc/motd', b'hello')],
            extra_md={'admin_pass': 's3cret'}, network_info=network_info())
        for name in ('meta_data.json', 'network_data.json'):
            path = '/openstack/latest/' + name
            on_drive = jsonutils.loads(read_iso(drive.path, path))
            expected = jsonutils.loads(served.lookup(path))
            # Fresh random bytes each time the document is made.
            on_drive.pop('random_seed', None)
            expected.pop('random_seed', None)
            self.assertEqual(expected, on_drive, name)

        meta = jsonutils.loads(read_iso(drive.path,
                                        '/openstack/latest/meta_data.json'))
        self.assertEqual(self.instance.uuid, meta['uuid'])
        # nova names the guest in [api] dhcp_domain.
        self.assertEqual('vm1.' + self.fx.conf.conf.api.dhcp_domain,
                         meta['hostname'])
        self.assertEqual({'mykey': KEY}, meta['public_keys'])
        self.assertEqual('s3cret', meta['admin_pass'])
        self.assertEqual(['/etc/motd'], [f['path'] for f in meta['files']])
        network = jsonutils.loads(read_iso(
            drive.path, '/openstack/latest/network_data.json'))
        self.assertEqual([design_support.MAC],
                         [link['ethernet_mac_address']
                          for link in network['links']])
        self.assertEqual(['192.168.1.50'],
                         [n['ip_address'] for n in network['networks']])
        self.assertEqual(USER_DATA.decode(), read_iso(
            drive.path, '/openstack/latest/user_data'))
        self.assertIn('instance-id', read_iso(
            drive.path, '/ec2/latest/meta-data.json'))

    def failing_command(self, status, message):
        path = os.path.join(self.fx.tmp, 'fake-mkisofs')
        with open(path, 'w') as handle:
            handle.write('#!/bin/sh\necho "%s" >&2\nexit %d\n' % (
                message, status))
        os.chmod(path, stat.S_IRWXU)
        return path

    def test_failing_command_is_named_and_leaves_no_drive(self):
        command = self.failing_command(3, 'no space left on the device')
        self.fx.conf.set(group=None, mkisofs_cmd=command)
        exc = self.assertRaises(exception.ConfigDriveBuildFailed, self.build)
        self.assertIn(command, str(exc))
        self.assertIn('[DEFAULT] mkisofs_cmd', str(exc))
        self.assertIn('exit status 3: no space left on the device', str(exc))
        self.assertEqual([], os.listdir(self.fx.files.path))

    def test_missing_command_is_named(self):
        command = os.path.join(self.fx.tmp, 'no-such-genisoimage')
        self.fx.conf.set(group=None, mkisofs_cmd=command)
        exc = self.assertRaises(exception.ConfigDriveBuildFailed, self.build)
        self.assertIn(command, str(exc))
        self.assertIn('No such file or directory', str(exc))
        self.assertEqual([], os.listdir(self.fx.files.path))


class VfatTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        if not HAVE_VFAT_TOOLS:
            self.skipTest(NO_VFAT_TOOLS)
        self.fx = self.useFixture(DriveFixture())
        self.fx.conf.set(group=None, config_drive_format='vfat')
        self.instance = metadata_instance()

    def test_same_files_on_a_vfat_disk(self):
        drive = config_drive.create(self.instance, self.fx.files, [], None,
                                    network_info())
        self.assertEqual(('disk', 'raw'), (drive.device, drive.format))
        label = processutils.execute('mlabel', '-s', '-i', drive.path,
                                     '::')[0]
        self.assertIn('CONFIG-2', label.upper())
        served = instance_metadata.InstanceMetadata(
            self.instance, network_info=network_info())
        for name in ('meta_data.json', 'network_data.json'):
            path = '/openstack/latest/' + name
            on_drive = jsonutils.loads(read_vfat(drive.path, path))
            expected = jsonutils.loads(served.lookup(path))
            on_drive.pop('random_seed', None)
            expected.pop('random_seed', None)
            self.assertEqual(expected, on_drive, name)
        self.assertEqual(USER_DATA.decode(), read_vfat(
            drive.path, '/openstack/latest/user_data'))

    def test_failure_names_the_tools_and_leaves_no_drive(self):
        self.useFixture(fixtures.MockPatch(
            'nova.privsep.fs.unprivileged_mkfs',
            side_effect=processutils.ProcessExecutionError(
                exit_code=1, stderr='mkfs.vfat: no space')))
        exc = self.assertRaises(
            exception.ConfigDriveBuildFailed, config_drive.create,
            self.instance, self.fx.files, [], None, network_info())
        self.assertIn('with mkfs.vfat and mcopy from [DEFAULT] '
                      'config_drive_format = vfat', str(exc))
        self.assertIn('mkfs.vfat: no space', str(exc))
        self.assertEqual([], os.listdir(self.fx.files.path))


class SpawnWithDriveTest(base.BaseTestCase):
    """The driver keeps the drive with the instance's disks, or nothing."""

    def setUp(self):
        super().setUp()
        if not HAVE_TOOLS:
            self.skipTest(NO_TOOLS)
        self.fx = self.useFixture(virt_fakes.DriverFixture())
        self.useFixture(NoServices())
        self.instance = metadata_instance(
            host=self.fx.driver._host_name,
            flavor=design_support.flavor(vcpus=1, memory_mb=128, root_gb=0,
                                         swap=1))
        self.directory = self.fx.instance_dir(self.instance)

    def spawn(self, injected_files=()):
        # A boot volume: no image to fetch; the swap disk is a real file.
        self.fx.driver.spawn(
            self.fx.context, self.instance, self.instance.image_meta,
            list(injected_files), 'pw', {}, network_info=[],
            block_device_info=virt_fakes.VolumeBackend.block_device_info(
                'a0000000-0000-4000-8000-000000000001'))

    def test_drive_is_a_recorded_local_disk(self):
        self.spawn()
        self.assertIn('disk.config', os.listdir(self.directory))
        request = self.fx.requests[0]
        self.assertEqual(['disk.swap', 'disk.config'],
                         [d.name for d in request.local_disks])
        # A hard reboot reads the same disks back.
        files = self.fx.driver._files(self.instance)
        loaded = instance_disks.DiskSet.load(files)
        self.assertEqual(request.local_disks, loaded.local_disks)

    def test_failed_drive_leaves_nothing(self):
        self.fx.conf.set(group=None, mkisofs_cmd=os.path.join(
            self.directory, 'missing-tool'))
        self.assertRaises(exception.ConfigDriveBuildFailed, self.spawn)
        self.assertFalse(os.path.exists(self.directory))
        self.assertEqual(set(), self.fx.volumes.connected)
        self.assertEqual([], self.fx.host.defined)

    def test_files_without_drive_refused_before_anything_is_made(self):
        self.instance.config_drive = ''
        self.assertRaises(exception.FileInjectionNotSupported, self.spawn,
                          [('/etc/motd', b'x')])
        self.assertFalse(os.path.exists(self.directory))
