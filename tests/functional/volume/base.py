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

"""What the iSCSI and NFS volume tests share.

A test case sets ``self.fx`` (a :class:`tests.fixtures.driver.DriverFixture`)
in ``setUp``; these helpers boot the test guest with volumes and read what
the guest and the domain say about them.
"""

import os

from oslotest import base

from tests.fixtures import driver as driver_fixture
from tests.guest_console import disk_reports

READY = 'PYVIRT-GUEST: ready'


def block_device_info(connection_info, mount_device='/dev/vdb'):
    """nova's block device information for one virtio volume at boot."""
    return {'root_device_name': '/dev/vda', 'ephemerals': [], 'swap': None,
            'block_device_mapping': [{
                'connection_info': connection_info,
                'mount_device': mount_device, 'boot_index': None,
                'disk_bus': 'virtio', 'device_type': 'disk',
                'delete_on_termination': False}]}


class VolumeTestCase(base.BaseTestCase):

    def image(self, cmdline_extra=''):
        """The test guest's image, its kernel command line extended."""
        props = dict(self.fx.root_image['properties'])
        if cmdline_extra:
            props['os_command_line'] += ' ' + cmdline_extra
        return self.fx.images.add(
            os.path.join(driver_fixture.GUEST_IMAGE, 'disk-marker.qcow2'),
            'qcow2', properties=props)

    def wait_disk(self, instance, name, event=None, timeout=120):
        """The console report of disk ``name`` (with ``event``)."""
        def report():
            for found in disk_reports(self.fx.console(instance)):
                if found[0] == name and found[3] == event:
                    return found
        self.fx.wait_console(instance, 'name=%s ' % name, timeout=timeout)
        found = report()
        if found is None:
            self.fx.wait_console(instance, READY, timeout=timeout)
            found = report()
        self.assertIsNotNone(found, self.fx.console(instance))
        return found

    def volume_disks(self, instance, live=True):
        """The disks with a serial (volumes) of the domain's definition."""
        guest = self.fx.driver._guest(instance)
        definition = guest.definition() if live else guest.inactive()
        return [d for d in definition.disks if d.serial]
