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

"""Snapshots that fail: no temporary copy stays, the guest runs on.

The root disk is a real qcow2 file and ``qemu-img convert`` really runs
unless a test breaks it; the guest is a real :class:`Guest` over a
:class:`~tests.unit.virt_fakes.FakeDomain`, which records pause and
resume.
"""

import os

import fixtures
from oslo_concurrency import processutils
from oslotest import base

from nova.compute import task_states
from nova import exception

from nova_pyvirt.design import request
from nova_pyvirt.hypervisor import guest as guest_mod
from nova_pyvirt.storage import instance_disks
from nova_pyvirt.storage import instance_files
from nova_pyvirt.storage import snapshots
from tests import design_support
from tests.unit.storage import fakes
from tests.unit import virt_fakes

UUID = design_support.UUID


class UploadFailed(Exception):
    pass


class RootSnapshotRollbackTest(base.BaseTestCase):
    """snapshots.root_disk_snapshot."""

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.files = instance_files.InstanceFiles(tmp, UUID)
        self.files.create()
        self.root = request.LocalDisk('disk', fakes.make_qcow2(
            self.files.file('disk'), 1024 * 1024))
        self.domain = virt_fakes.FakeDomain(UUID, active=True)
        self.guest = guest_mod.Guest(self.domain)
        self.snapshot_dir = self.files.file(snapshots.SNAPSHOT_DIR)

    def snapshot(self):
        return snapshots.root_disk_snapshot(self.guest, self.root,
                                            self.files)

    def break_convert(self):
        def convert(*cmd, **kw):
            with open(cmd[-1], 'wb') as handle:
                handle.write(b'partial')
            raise processutils.ProcessExecutionError(
                cmd=' '.join(cmd), exit_code=1,
                stderr='No space left on device')
        self.useFixture(fixtures.MockPatchObject(
            snapshots.processutils, 'execute', convert))

    def test_upload_fails(self):
        with self.snapshot() as image:
            self.assertTrue(os.path.exists(image.path))
        self.assertFalse(os.path.exists(self.snapshot_dir))

        def use_and_fail():
            with self.snapshot() as image:
                # The guest runs again before the upload starts.
                self.assertFalse(self.domain.paused)
                self.path = image.path
                raise UploadFailed('glance went away')

        self.assertRaises(UploadFailed, use_and_fail)

        self.assertFalse(os.path.exists(self.path))
        self.assertFalse(os.path.exists(self.snapshot_dir))
        self.assertEqual(['disk'], os.listdir(self.files.path))
        self.assertEqual(['suspend', 'resume'] * 2, self.domain.calls)

    def test_copy_fails(self):
        self.break_convert()

        def take():
            with self.snapshot():
                self.fail('the snapshot was handed out')

        error = self.assertRaises(processutils.ProcessExecutionError, take)

        self.assertIn('No space left on device', error.stderr)
        self.assertFalse(os.path.exists(
            os.path.join(self.snapshot_dir, 'root.qcow2')))
        self.assertEqual(['suspend', 'resume'], self.domain.calls)
        self.assertFalse(self.domain.paused)
        self.assertTrue(os.path.exists(self.root.path))

    def test_paused_guest_stays_paused(self):
        self.domain.paused = True
        self.break_convert()

        self.assertRaises(processutils.ProcessExecutionError,
                          self.snapshot().__enter__)

        self.assertEqual([], self.domain.calls)
        self.assertTrue(self.domain.paused)

    def test_stopped_guest_is_read_without_sharing_locks(self):
        self.domain.active = False
        commands = []
        real_execute = processutils.execute

        def execute(*cmd, **kw):
            commands.append(cmd)
            return real_execute(*cmd, **kw)
        self.useFixture(fixtures.MockPatchObject(
            snapshots.processutils, 'execute', execute))

        with self.snapshot():
            pass

        self.assertNotIn('--force-share', commands[0])
        self.assertEqual([], self.domain.calls)


class DriverSnapshotRollbackTest(base.BaseTestCase):
    """PyVirtDriver.snapshot when the upload fails."""

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(virt_fakes.DriverFixture())
        self.instance = self.fx.instance()
        self.files = self.fx.driver._files(self.instance)
        self.files.create()
        disks = instance_disks.DiskSet(self.files, [request.LocalDisk(
            'disk', fakes.make_qcow2(self.files.file('disk'), 1024 * 1024))])
        disks.save()
        self.before = sorted(os.listdir(self.files.path))
        self.domain = self.fx.host.add(self.instance.uuid, active=True)
        self.states = []

    def snapshot(self):
        self.fx.driver.snapshot(self.fx.context, self.instance, 'image-1',
                                self.update_task_state)

    def update_task_state(self, task_state, expected_state=None):
        self.states.append(task_state)

    def test_success(self):
        self.snapshot()
        (image_id, metadata, data), = self.fx.images.uploads
        self.assertEqual('qcow2', metadata['disk_format'])
        self.assertEqual(self.before, sorted(os.listdir(self.files.path)))

    def test_upload_fails(self):
        error = exception.ImageNotAuthorized(image_id='image-1')
        self.fx.images.update_error = error

        raised = self.assertRaises(exception.ImageNotAuthorized,
                                   self.snapshot)

        self.assertIs(error, raised)
        self.assertEqual(self.before, sorted(os.listdir(self.files.path)))
        self.assertEqual(['suspend', 'resume'], self.domain.calls)
        self.assertTrue(self.domain.active)
        self.assertFalse(self.domain.paused)
        self.assertEqual([task_states.IMAGE_PENDING_UPLOAD,
                          task_states.IMAGE_UPLOADING], self.states)

    def test_missing_guest_fails_before_copying(self):
        self.domain.defined = False

        self.assertRaises(exception.InstanceNotFound, self.snapshot)

        self.assertEqual(self.before, sorted(os.listdir(self.files.path)))
        self.assertEqual([], self.fx.images.uploads)
