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

"""The disk.info record survives a move to a host with another layout.

And the disk usage the audit reports stats instance files only when some
may be on another file system.
"""

import os
import shutil
import types
from unittest import mock

import fixtures
from oslo_serialization import jsonutils
from oslotest import base

from nova_pyvirt.design import request
from nova_pyvirt.storage import instance_disks
from nova_pyvirt.storage import instance_files

UUID = '9d3f8a56-1c2b-4e7f-8a9b-0c1d2e3f4a5b'


class DiskInfoTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.here = instance_files.InstanceFiles(os.path.join(tmp, 'a'),
                                                 UUID)
        self.there = instance_files.InstanceFiles(os.path.join(tmp, 'b'),
                                                  UUID)
        os.makedirs(self.here.path)
        os.makedirs(os.path.dirname(self.there.path))

    def test_names_are_recorded_and_resolved_on_another_host(self):
        disks = instance_disks.DiskSet(self.here, [
            request.LocalDisk('disk', self.here.file('disk')),
            request.LocalDisk('disk.eph0', '/dev/vg/%s_disk.eph0' % UUID,
                              format='raw', source_type='block')],
            kernel_path=self.here.file('kernel'))
        disks.save()
        with open(self.here.file(instance_disks.DISK_INFO)) as handle:
            record = jsonutils.loads(handle.read())
        self.assertEqual('disk', record['disks'][0]['path'])
        self.assertEqual('kernel', record['kernel'])

        shutil.copytree(self.here.path, self.there.path)
        moved = instance_disks.DiskSet.load(self.there)
        self.assertEqual(self.there.file('disk'), moved.root.path)
        self.assertEqual('/dev/vg/%s_disk.eph0' % UUID,
                         moved.local_disks[1].path)
        self.assertEqual(self.there.file('kernel'), moved.kernel_path)
        self.assertIsNone(moved.ramdisk_path)

    def test_absolute_records_are_moved_into_this_directory(self):
        os.makedirs(self.there.path)
        with open(self.there.file(instance_disks.DISK_INFO), 'w') as handle:
            jsonutils.dump({'disks': [{'name': 'disk',
                                       'path': self.here.file('disk'),
                                       'format': 'qcow2',
                                       'source_type': 'file',
                                       'device': 'disk', 'bus': None}],
                            'kernel': None, 'ramdisk': None}, handle)
        moved = instance_disks.DiskSet.load(self.there)
        self.assertEqual(self.there.file('disk'), moved.root.path)


class UsageTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.tmp, 'instances')
        conf = types.SimpleNamespace(
            instances_path=self.path,
            image_cache=types.SimpleNamespace(subdirectory_name='_base'),
            pyvirt=types.SimpleNamespace(images_type='qcow2'),
            oslo_concurrency=types.SimpleNamespace(lock_path=None))
        with mock.patch.object(instance_disks.backends, 'backend_for'):
            self.disks = instance_disks.InstanceDisks(conf)
        self.disks.backend = object()     # a file backend: no capacity()
        os.makedirs(os.path.join(self.path, UUID))
        with open(os.path.join(self.path, UUID, 'disk'), 'wb') as f:
            f.write(b'x' * 8192)
        self.scans = self.useFixture(fixtures.MockPatchObject(
            self.disks, 'used_bytes', wraps=self.disks.used_bytes)).mock

    def statvfs(self):
        stat = os.statvfs(self.path)
        total = stat.f_frsize * stat.f_blocks
        return total, total - stat.f_frsize * stat.f_bavail

    def test_files_on_the_measured_file_system_are_not_stat_ed(self):
        total, used = self.disks.usage()
        expected_total, expected_used = self.statvfs()
        self.assertEqual(expected_total, total)
        # Other jobs write to the same file system meanwhile.
        self.assertAlmostEqual(expected_used, used, delta=64 * 1024 ** 2)
        self.assertEqual(expected_total, self.disks.capacity())
        self.scans.assert_not_called()

    def test_symlinked_instance_directory_is_counted(self):
        elsewhere = os.path.join(self.tmp, 'elsewhere')
        os.makedirs(elsewhere)
        os.symlink(elsewhere, os.path.join(self.path, 'linked'))
        self.disks.usage()
        self.scans.assert_called_once_with()

    def test_mount_below_the_instances_path_is_counted(self):
        mounts = ('1 0 8:1 / / rw - ext4 /dev/sda1 rw\n'
                  '2 1 8:2 / %s/with\\040space rw - xfs /dev/sdb rw\n'
                  % self.path)
        with mock.patch('builtins.open', mock.mock_open(read_data=mounts)):
            self.assertTrue(self.disks._elsewhere())
        mounts = '1 0 8:1 / %s rw - ext4 /dev/sda1 rw\n' % self.path
        with mock.patch('builtins.open', mock.mock_open(read_data=mounts)):
            self.assertFalse(self.disks._elsewhere())

    def test_unreadable_mount_table_is_counted(self):
        with mock.patch('builtins.open', side_effect=PermissionError):
            self.assertTrue(self.disks._elsewhere())
