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

"""A block migration with read-only files: the config drive on a CD-ROM.

QEMU's block copy refuses read-only disks, so the disks given to
``migrateToURI3`` leave them out, and the source sends those files to the
destination before the guest moves; when that fails, the guest stays and
nova rolls back. Storage is real (files under a temporary instances
path); libvirt's domains are :class:`virt_fakes.FakeDomain`, and the
destination's libvirtd (which the real upload talks to, see
``tests/functional/libvirt/test_peer_upload.py``) is a recorder.
"""

import contextlib
import os
from unittest import mock

import libvirt
from oslotest import base

from nova_pyvirt.migration import live
from tests.unit.migration import test_live_rollback as rollback
from tests.unit import virt_fakes

SWAP = """<disk type='file' device='disk'>
      <source file='%(dir)s/disk.swap'/>
      <target dev='vdb' bus='virtio'/>
    </disk>"""
DRIVE = """<disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='%(dir)s/disk.config'/>
      <target dev='hda' bus='ide'/>
      <readonly/>
    </disk>"""
SHARED = """<disk type='file' device='disk'>
      <source file='%(dir)s/disk.shared'/>
      <target dev='vdz' bus='virtio'/>
      <shareable/>
    </disk>"""
ELSEWHERE = """<disk type='file' device='disk'>
      <source file='/elsewhere/data.img'/>
      <target dev='vdy' bus='virtio'/>
    </disk>"""


class _Destination(object):
    """The destination's libvirtd, as far as uploads go: what arrived."""

    def __init__(self, calls, error=None):
        self.calls = calls
        self.error = error

    def upload(self, path, directory):
        self.calls.append(('upload', path, directory))
        if self.error is not None:
            raise self.error


class SelectionTest(base.BaseTestCase):

    def xml(self):
        domain = virt_fakes.FakeDomain('u')
        domain.devices = [d % {'dir': '/i/u'} for d in
                          (SWAP, DRIVE, SHARED, ELSEWHERE)]
        return domain.XMLDesc()

    def test_block_copy_takes_writable_files_of_the_directory(self):
        self.assertEqual(['vdb'], live.local_targets(self.xml(), '/i/u'))

    def test_read_only_files_are_sent_instead(self):
        # A shareable file is not the guest's alone: neither copied nor
        # sent.
        self.assertEqual(['/i/u/disk.config'],
                         live.uncopied_files(self.xml(), '/i/u'))


class ConfigDriveLiveMigrationTest(virt_fakes.VolumeBootedTestCase):
    """The source's side, with a guest that has an iso9660 config drive."""

    def setUp(self):
        super().setUp()
        self.post = mock.Mock()
        self.recover = mock.Mock()
        self.calls = []
        self.destination = _Destination(self.calls)

        @contextlib.contextmanager
        def opened(uri):
            self.calls.append(('opened', uri))
            yield self.destination
        self.useFixture(base.fixtures.MockPatchObject(
            live.peer_mod, 'opened', opened))

    def _migrate(self, data):
        self.driver.live_migration(self.fx.context, self.instance, 'host2',
                                   self.post, self.recover, None, data)

    def _spawn_with_drive(self, swap=True):
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=[], block_device_info=self.bdi)
        domain = self.fx.host.domains[self.instance.uuid]
        domain.devices = [d % {'dir': self.directory}
                          for d in ((SWAP, DRIVE) if swap else (DRIVE,))]
        with open(os.path.join(self.directory, 'disk.config'), 'wb') as f:
            f.write(b'CD001 config-2')
        original = domain.migrateToURI3

        def migrate(uri, params, flags):
            self.calls.append(('migrateToURI3', params, flags))
            return original(uri, params, flags)
        domain.migrateToURI3 = migrate
        return domain

    def test_drive_is_sent_before_the_guest_moves_and_not_block_copied(self):
        self._spawn_with_drive()
        data = rollback._migrate_data()
        self._migrate(data)
        self.recover.assert_not_called()
        self.post.assert_called_once()
        (_o, uri), upload, (_m, params, flags) = self.calls
        self.assertEqual('qemu+tls://127.0.0.3/system', uri)
        self.assertEqual(('upload', os.path.join(self.directory,
                                                 'disk.config'),
                          self.directory), upload)
        self.assertEqual(['vdb'],
                         params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS])
        self.assertTrue(flags & libvirt.VIR_MIGRATE_NON_SHARED_INC)

    def test_only_the_drive_local_means_no_block_copy(self):
        # Boot from volume, no swap: the drive is the only local file.
        # An empty disk list would make libvirt copy every writable disk,
        # the volume included.
        self._spawn_with_drive(swap=False)
        self._migrate(rollback._migrate_data())
        self.post.assert_called_once()
        (_o, _uri), (upload, path, _d), (_m, params, flags) = self.calls
        self.assertEqual('upload', upload)
        self.assertEqual('disk.config', os.path.basename(path))
        self.assertNotIn(libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS, params)
        self.assertFalse(flags & libvirt.VIR_MIGRATE_NON_SHARED_INC)

    def test_failed_send_keeps_the_guest_and_rolls_back(self):
        domain = self._spawn_with_drive()
        self.destination.error = virt_fakes.libvirt_error(
            'cannot write disk.config: No space left on device')
        data = rollback._migrate_data()
        self._migrate(data)
        self.recover.assert_called_once_with(self.fx.context, self.instance,
                                             'host2', data)
        self.post.assert_not_called()
        self.assertNotIn('migrateToURI3', [c[0] for c in self.calls])
        self.assertTrue(domain.active)
        self.assertTrue(os.path.exists(os.path.join(self.directory,
                                                    'disk.config')))

    def test_shared_instance_path_sends_nothing(self):
        self._spawn_with_drive()
        data = rollback._migrate_data()
        data.block_migration = False
        data.is_shared_instance_path = True
        data.is_shared_block_storage = True
        self._migrate(data)
        self.post.assert_called_once()
        self.assertEqual(['migrateToURI3'], [c[0] for c in self.calls])
