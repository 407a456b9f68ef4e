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

"""Cold migration when a step fails: the source copy is never lost.

:class:`FakeTransport` plays the other host: its "remote" paths live under
a directory of their own, and a copy can be made to break after some
files.  The files are real; what the tests check is which of them exist
afterwards, where, and with what content.
"""

import os
import shutil
import types

import fixtures
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslotest import base

from nova import exception
from nova import objects

from nova_pyvirt.design import request
from nova_pyvirt.migration import cold
from nova_pyvirt.storage import instance_disks
from nova_pyvirt.storage import instance_files
from tests import design_support
from tests.unit import virt_fakes

UUID = design_support.UUID
VOL_BOOT = 'b0000000-0000-4000-8000-000000000001'


class CopyFailed(Exception):
    pass


class FakeTransport(object):
    """The destination host, as a directory of this one.

    ``fail_copy_at``: the copy of that many files (1 = the first) writes
    half of the file, then raises :class:`CopyFailed`.
    """

    def __init__(self, root, shared=False):
        self.root = root
        self.shared = shared
        self.calls = []
        self.copied = 0
        self.fail_copy_at = None
        self.create_error = None
        self.remove_error = None

    def remote(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def is_shared_storage(self, host, path):
        return self.shared

    def create_dir(self, host, path):
        self.calls.append(('create_dir', path))
        if self.create_error is not None:
            raise self.create_error
        os.makedirs(self.remote(path))

    def remove_dir(self, host, path):
        self.calls.append(('remove_dir', path))
        if self.remove_error is not None:
            raise self.remove_error
        shutil.rmtree(self.remote(path))

    def copy_to(self, src_path, host, dest_path, on_progress=None):
        self.calls.append(('copy_to', os.path.basename(src_path)))
        self.copied += 1
        with open(src_path, 'rb') as src:
            data = src.read()
        with open(self.remote(dest_path), 'wb') as dst:
            if self.copied == self.fail_copy_at:
                dst.write(data[:len(data) // 2])
                raise CopyFailed('connection reset after %d bytes'
                                 % (len(data) // 2))
            dst.write(data)
        if on_progress is not None:
            on_progress(len(data), len(data))


def snapshot_dir(path):
    """``{name: content}`` of the files in ``path``."""
    result = {}
    for name in os.listdir(path):
        with open(os.path.join(path, name), 'rb') as handle:
            result[name] = handle.read()
    return result


class SendRollbackTest(base.BaseTestCase):
    """ColdMigration.send on the source host."""

    def setUp(self):
        super().setUp()
        objects.register_all()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.files = instance_files.InstanceFiles(
            os.path.join(tmp, 'instances'), UUID)
        self.files.create()
        self.disks = instance_disks.DiskSet(self.files, [
            request.LocalDisk('disk', self.files.file('disk')),
            request.LocalDisk('disk.eph0', self.files.file('disk.eph0')),
            request.LocalDisk('disk.swap', self.files.file('disk.swap'),
                              format='raw')])
        for index, disk in enumerate(self.disks.local_disks):
            with open(disk.path, 'wb') as handle:
                handle.write(b'%d' % index * 4096)
        with open(self.files.console_log, 'wb') as handle:
            handle.write(b'boot log')
        self.disks.save()
        self.before = snapshot_dir(self.files.path)
        self.transport = FakeTransport(os.path.join(tmp, 'dest'))
        conf = self.useFixture(design_support.ConfFixture()).conf
        self.migration = cold.ColdMigration(conf, disks=None)
        self.migration.transport = lambda: self.transport
        self.instance = design_support.instance()

    def send(self):
        return self.migration.send(self.instance, 'dest-host', self.files,
                                   self.disks)

    def assertSourceRestored(self):
        self.assertEqual(self.before, snapshot_dir(self.files.path))
        self.assertFalse(os.path.exists(cold.resize_dir(self.files)))

    def test_success_keeps_the_source_copy(self):
        info = jsonutils.loads(self.send())
        self.assertFalse(info['shared_storage'])
        self.assertEqual(['disk', 'disk.eph0', 'disk.swap', 'disk.info'],
                         info['files'])
        source = cold.resize_dir(self.files)
        self.assertEqual(self.before, snapshot_dir(source))
        remote = snapshot_dir(self.transport.remote(self.files.path))
        self.assertEqual(set(info['files']), set(remote))

    def test_copy_fails_midway(self):
        self.transport.fail_copy_at = 2

        self.assertRaises(CopyFailed, self.send)

        self.assertSourceRestored()
        self.assertIn(('remove_dir', self.files.path), self.transport.calls)
        self.assertFalse(os.path.exists(
            self.transport.remote(self.files.path)))
        # Nothing after the broken file was tried.
        self.assertEqual(2, self.transport.copied)

    def test_remote_directory_cannot_be_made(self):
        self.transport.create_error = CopyFailed('permission denied')

        self.assertRaises(CopyFailed, self.send)

        self.assertSourceRestored()
        self.assertNotIn('remove_dir',
                         [call[0] for call in self.transport.calls])

    def test_remote_cleanup_fails_too(self):
        self.transport.fail_copy_at = 1
        self.transport.remove_error = OSError('host unreachable')

        # The copy's error reaches nova, not the clean-up's.
        self.assertRaises(CopyFailed, self.send)

        self.assertSourceRestored()

    def test_missing_disk_file_fails_before_copying(self):
        os.unlink(self.files.file('disk.swap'))
        self.before.pop('disk.swap')

        self.assertRaises(FileNotFoundError, self.send)

        self.assertSourceRestored()
        self.assertEqual(0, self.transport.copied)
        self.assertFalse(os.path.exists(
            self.transport.remote(self.files.path)))

    def test_shared_storage_copy_fails_midway(self):
        self.transport.shared = True
        real_execute = processutils.execute
        copies = []

        def execute(*cmd, **kw):
            if cmd[0] == 'cp':
                copies.append(cmd[-1])
                if len(copies) == 2:
                    with open(cmd[-1], 'wb') as handle:
                        handle.write(b'partial')
                    raise processutils.ProcessExecutionError(
                        exit_code=1, cmd=' '.join(cmd),
                        stderr='No space left on device')
            return real_execute(*cmd, **kw)

        self.useFixture(fixtures.MockPatchObject(
            cold.fileops.processutils, 'execute', execute))

        error = self.assertRaises(processutils.ProcessExecutionError,
                                  self.send)

        self.assertIn('No space left on device', error.stderr)
        self.assertSourceRestored()
        self.assertEqual([], self.transport.calls)


class ConfirmRevertTest(base.BaseTestCase):
    """confirm forgets only the source copy; revert puts it back."""

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.files = instance_files.InstanceFiles(tmp, UUID)
        self.source = cold.resize_dir(self.files)
        os.makedirs(self.source)
        with open(os.path.join(self.source, 'disk'), 'w') as handle:
            handle.write('source')
        os.makedirs(self.files.path)
        with open(self.files.file('disk'), 'w') as handle:
            handle.write('destination')
        self.migration = cold.ColdMigration(None, None)

    def test_confirm_keeps_the_instance_directory(self):
        self.migration.confirm(self.files)
        self.assertFalse(os.path.exists(self.source))
        self.assertEqual({'disk': b'destination'},
                         snapshot_dir(self.files.path))

    def test_revert_on_shared_storage_restores_the_source(self):
        self.migration.revert(self.files)
        self.assertFalse(os.path.exists(self.source))
        self.assertEqual({'disk': b'source'}, snapshot_dir(self.files.path))

    def test_revert_twice_keeps_the_restored_copy(self):
        self.migration.revert(self.files)
        self.migration.revert(self.files)
        self.assertEqual({'disk': b'source'}, snapshot_dir(self.files.path))


class DriverColdMigrationRollbackTest(base.BaseTestCase):
    """The driver's resize steps, on one host with shared storage."""

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(virt_fakes.DriverFixture())
        self.driver = self.fx.driver
        self.transport = FakeTransport(os.path.join(self.fx.tmp, 'dest'),
                                       shared=True)
        self.driver._migration.transport = lambda: self.transport
        self.instance = self.fx.instance(swap=1)
        self.bdi = virt_fakes.VolumeBackend.block_device_info(VOL_BOOT)
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=[], block_device_info=self.bdi)
        self.files = self.driver._files(self.instance)
        self.source = cold.resize_dir(self.files)
        self.before = snapshot_dir(self.files.path)
        self.domain = self.fx.host.defined[0]
        self.migration = types.SimpleNamespace(source_compute='this-host')

    def migrate(self, flavor):
        return self.driver.migrate_disk_and_power_off(
            self.fx.context, self.instance, 'this-host', flavor, [],
            block_device_info=self.bdi)

    def finish(self, power_on=True):
        self.driver.finish_migration(
            self.fx.context, self.migration, self.instance, '{}', [],
            self.instance.image_meta, True, {},
            block_device_info=self.bdi, power_on=power_on)

    def revert(self):
        self.driver.finish_revert_migration(
            self.fx.context, self.instance, [], self.migration,
            block_device_info=self.bdi)

    def test_refused_flavor_touches_nothing(self):
        small = design_support.flavor(name='small', root_gb=0,
                                      ephemeral_gb=0)
        self.instance.flavor.ephemeral_gb = 1

        error = self.assertRaises(exception.InstanceFaultRollback,
                                  self.migrate, small)

        self.assertIsInstance(error.inner_exception, exception.ResizeError)
        self.assertTrue(self.domain.active)
        self.assertEqual({VOL_BOOT}, self.fx.volumes.connected)
        self.assertEqual(self.before, snapshot_dir(self.files.path))
        self.assertFalse(os.path.exists(self.source))

    def break_the_copy(self):
        def broken_cp(*cmd, **kw):
            raise processutils.ProcessExecutionError(
                exit_code=1, cmd=' '.join(cmd), stderr='I/O error')
        self.useFixture(fixtures.MockPatchObject(
            cold.fileops, 'execute', broken_cp))

    def test_copy_fails_and_the_guest_runs_again_here(self):
        self.break_the_copy()

        error = self.assertRaises(exception.InstanceFaultRollback,
                                  self.migrate, self.instance.flavor)

        # nova records the cause as the fault and sets the instance back
        # to ACTIVE: the guest runs, on its own disks, volumes connected.
        self.assertIsInstance(error.inner_exception,
                              processutils.ProcessExecutionError)
        self.assertIn('I/O error', error.inner_exception.stderr)
        self.assertEqual(self.before, snapshot_dir(self.files.path))
        self.assertFalse(os.path.exists(self.source))
        guest = self.fx.host.domains[self.instance.uuid]
        self.assertTrue(guest.defined)
        self.assertTrue(guest.active)
        self.assertEqual({VOL_BOOT}, self.fx.volumes.connected)

    def test_copy_fails_and_a_stopped_guest_stays_stopped(self):
        self.driver.power_off(self.instance)
        self.break_the_copy()

        error = self.assertRaises(exception.InstanceFaultRollback,
                                  self.migrate, self.instance.flavor)

        self.assertIsInstance(error.inner_exception,
                              processutils.ProcessExecutionError)
        self.assertEqual(self.before, snapshot_dir(self.files.path))
        guest = self.fx.host.domains[self.instance.uuid]
        self.assertTrue(guest.defined)
        self.assertFalse(guest.active)
        # As before the resize: a stopped instance keeps its volumes.
        self.assertEqual({VOL_BOOT}, self.fx.volumes.connected)

    def test_copy_fails_and_the_restart_fails_too(self):
        self.break_the_copy()
        self.fx.host.start_error = virt_fakes.libvirt_error('no memory')

        # Not a rollback: nova must not say ACTIVE of a guest that is off.
        error = self.assertRaises(processutils.ProcessExecutionError,
                                  self.migrate, self.instance.flavor)

        self.assertIn('I/O error', error.stderr)
        self.assertEqual(self.before, snapshot_dir(self.files.path))
        self.assertFalse(os.path.exists(self.source))
        self.assertTrue(self.fx.host.domains[self.instance.uuid].defined)

    def test_prepare_fails_on_the_destination(self):
        self.migrate(self.instance.flavor)
        error = processutils.ProcessExecutionError(stderr='qemu-img broke')

        def broken_info(path, fmt):
            raise error
        self.useFixture(fixtures.MockPatchObject(
            cold.fileops, 'qemu_img_info', broken_info))
        # A qcow2 disk makes prepare_disks read its backing file.
        disks = instance_disks.DiskSet.load(self.files)
        disks.local_disks[0].format = 'qcow2'
        disks.save()
        copied = snapshot_dir(self.files.path)

        raised = self.assertRaises(processutils.ProcessExecutionError,
                                   self.finish)

        self.assertIs(error, raised)
        self.assertEqual(copied, snapshot_dir(self.files.path))
        self.assertEqual(self.before, snapshot_dir(self.source))
        self.assertEqual(1, len(self.fx.host.defined))

    def test_launch_fails_on_the_destination(self):
        self.migrate(self.instance.flavor)
        error = virt_fakes.libvirt_error('cannot open /dev/kvm')
        self.fx.host.start_error = error

        raised = self.assertRaises(type(error), self.finish)

        self.assertIs(error, raised)
        # The destination's domain and disks stay for a revert or a retry.
        self.assertTrue(self.fx.host.defined[-1].defined)
        self.assertEqual(self.before, snapshot_dir(self.files.path))
        self.assertEqual(self.before, snapshot_dir(self.source))

    def test_revert_whose_launch_fails_keeps_the_source_copy(self):
        self.migrate(self.instance.flavor)
        self.finish()
        with open(self.files.file('disk.swap'), 'ab') as handle:
            handle.write(b'written on the destination')
        self.fx.host.start_error = virt_fakes.libvirt_error('no memory')

        self.assertRaises(virt_fakes.libvirt.libvirtError, self.revert)

        self.assertEqual(self.before, snapshot_dir(self.files.path))
        self.assertFalse(os.path.exists(self.source))
        self.assertTrue(self.fx.host.defined[-1].defined)

    def test_confirm_forgets_the_source_only(self):
        self.migrate(self.instance.flavor)
        self.instance.host = 'other-host'
        source_domain = self.fx.host.domains[self.instance.uuid]

        self.driver.confirm_migration(self.fx.context, self.migration,
                                      self.instance, [])

        self.assertFalse(os.path.exists(self.source))
        self.assertEqual(self.before, snapshot_dir(self.files.path))
        self.assertFalse(source_domain.defined)

    def test_confirm_keeps_a_running_guest_on_this_host(self):
        self.migrate(self.instance.flavor)
        self.finish()
        running = self.fx.host.defined[-1]

        self.driver.confirm_migration(self.fx.context, self.migration,
                                      self.instance, [])

        self.assertTrue(running.defined)
        self.assertTrue(running.active)
        self.assertFalse(os.path.exists(self.source))
        self.assertEqual(self.before, snapshot_dir(self.files.path))
