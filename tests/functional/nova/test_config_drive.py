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

"""When a server gets a config drive, through nova's API, on real QEMU.

The request (``config_drive: true``), ``[DEFAULT] force_config_drive`` and
an image with ``img_config_drive=mandatory`` each give the server a drive:
``disk.config`` in its instance directory, a read-only cdrom in its
domain, which the test guest mounts and reads (it prints the uuid it found
in ``meta_data.json``). Without any of them there is neither. A failing
``genisoimage`` (first on ``PATH``) fails the build with the command's
error in nova-compute's log, and leaves no domain, no instance directory
and no drive.
"""

import os
import stat

import fixtures

from nova_pyvirt.storage import config_drive
from tests.fixtures import nova_harness
from tests.functional.nova import base
from tests import guest_console

# The guest's report on its config drive (tools/guest_image/README.md).
DRIVE_LINE = 'PYVIRT-CONFIG-DRIVE '


class ConfigDriveTest(base.PyVirtTestBase):

    def setUp(self):
        super().setUp()
        self.flavor_id = self._create_guest_flavor()

    def boot(self, image=None, status='ACTIVE', **fields):
        body = self._build_server(
            name='pyvirt-drive', image_uuid=image or self.images['root'],
            flavor_id=self.flavor_id, networks='none')
        body.update(fields)
        server = self.api.post_server({'server': body})
        return self._wait_for_status(server, status)

    def drive_path(self, server):
        return os.path.join(self.instances_path, server['id'],
                            config_drive.NAME)

    def cdroms(self, server):
        return [(disk.find('source').get('file'),
                 disk.find('readonly') is not None)
                for disk in self._domain_xml(server).iterfind(
                    'devices/disk[@device="cdrom"]')]

    def assertHasDrive(self, server):
        path = self.drive_path(server)
        self.assertTrue(os.path.isfile(path))
        self.assertEqual([(path, True)], self.cdroms(server))
        # The guest mounted it and read its own uuid from it.
        report = self.drive_report(server)
        self.assertEqual(server['id'], guest_console.fields(report)['uuid'],
                         report)

    def drive_report(self, server):
        """What the guest printed about its config drive."""
        console = self._wait_for_console(server, DRIVE_LINE)
        return guest_console.config_reports(console)['CONFIG-DRIVE']

    def assertNoDrive(self, server):
        self.assertFalse(os.path.exists(self.drive_path(server)))
        self.assertEqual([], self.cdroms(server))
        self.assertEqual('none', self.drive_report(server))

    def delete(self, server):
        self._delete_server(server)
        self.assertNoDomain(server)
        self.assertFalse(os.path.exists(os.path.join(self.instances_path,
                                                     server['id'])))

    def test_requested_drive(self):
        server = self.boot(config_drive=True)
        self.assertHasDrive(server)
        self.delete(server)

    def test_forced_drive(self):
        self.flags(force_config_drive=True)
        server = self.boot()
        self.assertHasDrive(server)
        self.delete(server)

    def test_image_makes_the_drive_mandatory(self):
        image = nova_harness.register_root_image(
            self.glance, nova_harness.guest_image_dir(), self.images,
            'pyvirt-guest-drive', {'img_config_drive': 'mandatory'})
        server = self.boot(image=image)
        self.assertHasDrive(server)
        self.delete(server)

    def test_no_drive_unless_asked(self):
        server = self.boot()
        self.assertNoDrive(server)
        self.delete(server)

    def test_failing_genisoimage_leaves_nothing(self):
        bin_dir = self.useFixture(fixtures.TempDir()).path
        tool = os.path.join(bin_dir, 'genisoimage')
        with open(tool, 'w') as handle:
            handle.write('#!/bin/sh\necho "genisoimage: out of inodes" >&2\n'
                         'exit 7\n')
        os.chmod(tool, stat.S_IRWXU)
        self.useFixture(fixtures.EnvironmentVariable(
            'PATH', bin_dir + os.pathsep + os.environ['PATH']))
        server = self.boot(config_drive=True, status='ERROR')
        # Another host may have a working genisoimage: nova reschedules,
        # as with nova's libvirt driver, and with no host left its fault
        # says so; the driver's error is in nova-compute's log.
        self.assertIn('Exhausted all hosts', server['fault']['message'])
        self.assertIn(
            'Could not build the config drive of instance %s (iso9660, '
            'with genisoimage from [DEFAULT] mkisofs_cmd): exit status 7: '
            'genisoimage: out of inodes' % server['id'],
            self.stdlog.logger.output)
        self.assertNoDomain(server)
        self.assertFalse(os.path.exists(os.path.join(self.instances_path,
                                                     server['id'])))
        self._delete_server(server)
