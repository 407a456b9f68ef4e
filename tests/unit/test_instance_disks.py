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

"""The disk.info record survives a move to a host with another layout."""

import os
import shutil

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
