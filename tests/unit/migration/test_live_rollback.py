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

"""Live migration's failure paths, on fake libvirt domains.

Every failure must leave nothing on the destination and the guest running
on the source: a preparation that breaks half-way, a migration libvirt
fails, an abort, a rollback nova asks for, and a check that refuses.
Storage is real (instance directories and disk files under a temporary
instances path); libvirt's domains are :class:`virt_fakes.FakeDomain`.
"""

import contextlib
import os
import threading
import time
from unittest import mock

import libvirt
from oslo_serialization import jsonutils
from oslotest import base

from nova import exception
from nova import objects
from nova.objects import migrate_data as migrate_data_obj

from nova_pyvirt.migration import live
from nova_pyvirt.migration import live_checks
from nova_pyvirt.migration import live_monitor
from tests.unit import virt_fakes

VOL_BOOT = virt_fakes.VOL_BOOT
VOL_DATA = virt_fakes.VOL_DATA


def _migrate_data(**kw):
    data = migrate_data_obj.LibvirtLiveMigrateData(
        block_migration=True, target_connect_addr='127.0.0.3',
        is_shared_instance_path=False, is_shared_block_storage=False,
        filename='', disk_over_commit=False, disk_available_mb=10240, **kw)
    data.migration = objects.Migration()
    return data


class _Peer(object):

    def __init__(self, cpu=None, machine=None, free=1 << 40):
        self.cpu, self.machine, self.free = cpu, machine, free

    def compare_cpu(self, *args):
        return self.cpu

    def machine_problem(self, *args):
        return self.machine

    def free_memory(self):
        return self.free


class LiveMigrationRollbackTest(virt_fakes.VolumeBootedTestCase):

    def setUp(self):
        super().setUp()
        self.post = mock.Mock()
        self.recover = mock.Mock()

    def _spawn(self):
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=[], block_device_info=self.bdi)
        return self.host.domains[self.instance.uuid]

    def _disk_info(self):
        return jsonutils.dumps([{'name': 'disk.swap', 'type': 'raw',
                                 'virt_disk_size': 1 << 20, 'disk_size': 0,
                                 'backing_file': '', 'device': 'disk',
                                 'bus': None}])

    def _migrate(self, data=None):
        self.driver.live_migration(self.fx.context, self.instance, 'host2',
                                   self.post, self.recover, None,
                                   data or _migrate_data())

    def _in_thread(self, data=None):
        thread = threading.Thread(target=self._migrate, args=(data,))
        thread.start()
        self.addCleanup(thread.join, 10)
        return thread

    @staticmethod
    def _wait_for_job(domain):
        deadline = time.monotonic() + 10
        while domain.job is None and time.monotonic() < deadline:
            time.sleep(0.01)

    # -- the destination ---------------------------------------------------

    def test_failed_preparation_leaves_nothing(self):
        self.driver._vifs.plug_all = mock.Mock(
            side_effect=exception.VirtualInterfacePlugException('no'))
        self.assertRaises(
            exception.VirtualInterfacePlugException,
            self.driver.pre_live_migration, self.fx.context, self.instance,
            self.bdi, [], self._disk_info(), _migrate_data())
        self.assertFalse(os.path.exists(self.directory))
        self.assertEqual(set(), self.volumes.connected)

    def test_preparation_refuses_an_existing_directory(self):
        os.makedirs(self.directory)
        marker = os.path.join(self.directory, 'keep')
        open(marker, 'w').close()
        self.assertRaises(
            exception.DestinationDiskExists,
            self.driver.pre_live_migration, self.fx.context, self.instance,
            self.bdi, [], self._disk_info(), _migrate_data())
        # Not ours: left as it was.
        self.assertTrue(os.path.exists(marker))

    def test_rollback_at_destination_removes_what_was_prepared(self):
        data = _migrate_data()
        self.driver.pre_live_migration(self.fx.context, self.instance,
                                       self.bdi, [], self._disk_info(), data)
        self.assertTrue(os.path.exists(os.path.join(self.directory,
                                                    'disk.swap')))
        self.assertEqual({VOL_BOOT, VOL_DATA}, self.volumes.connected)
        self.driver.rollback_live_migration_at_destination(
            self.fx.context, self.instance, [], self.bdi,
            destroy_disks=True, migrate_data=data)
        self.assertFalse(os.path.exists(self.directory))
        self.assertEqual(set(), self.volumes.connected)

    def test_rollback_at_destination_never_removes_a_running_guest(self):
        data = _migrate_data()
        self.driver.pre_live_migration(self.fx.context, self.instance,
                                       self.bdi, [], self._disk_info(), data)
        # Post-copy began: the destination's guest is the one that runs.
        self.host.add(self.instance.uuid, active=True)
        self.driver.rollback_live_migration_at_destination(
            self.fx.context, self.instance, [], self.bdi,
            destroy_disks=True, migrate_data=data)
        self.assertTrue(os.path.isdir(self.directory))
        self.assertTrue(self.host.domains[self.instance.uuid].active)

    # -- the source ----------------------------------------------------------

    def test_success_calls_nova_post_method(self):
        domain = self._spawn()
        # The guest's swap disk, which the block migration copies.
        domain.devices = ["<disk type='file' device='disk'><source file="
                          "'%s/disk.swap'/><target dev='vdb'/></disk>" %
                          self.directory]
        data = _migrate_data()
        self._migrate(data)
        self.post.assert_called_once_with(self.fx.context, self.instance,
                                          'host2', True, data)
        self.recover.assert_not_called()
        call = [c for c in domain.calls if c[0] == 'migrateToURI3'][0]
        _name, uri, params, flags = call
        self.assertEqual('qemu+tls://127.0.0.3/system', uri)
        self.assertEqual('tcp://127.0.0.3',
                         params[libvirt.VIR_MIGRATE_PARAM_URI])
        for flag in (libvirt.VIR_MIGRATE_LIVE, libvirt.VIR_MIGRATE_PEER2PEER,
                     libvirt.VIR_MIGRATE_PERSIST_DEST,
                     libvirt.VIR_MIGRATE_UNDEFINE_SOURCE,
                     libvirt.VIR_MIGRATE_NON_SHARED_INC):
            self.assertTrue(flags & flag, flag)
        self.assertEqual(['vdb'],
                         params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS])
        self.assertEqual(0, data.migration.memory_remaining)
        self.assertEqual(100, self.instance.progress)

    def test_migration_faster_than_a_poll_records_the_event_counters(self):
        # migrateToURI3 returns before the monitor's first look at the
        # job: the counters come from libvirt's job-completed event.
        self._spawn()
        data = _migrate_data()
        self._migrate(data)
        self.assertEqual(128 << 20, data.migration.memory_total)
        self.assertEqual(128 << 20, data.migration.memory_processed)
        self.assertEqual(0, data.migration.memory_remaining)

    def test_failed_migration_keeps_the_guest_on_the_source(self):
        domain = self._spawn()
        domain.migrate_error = virt_fakes.libvirt_error('connection lost')
        data = _migrate_data()
        self._migrate(data)
        self.recover.assert_called_once_with(self.fx.context, self.instance,
                                             'host2', data)
        self.post.assert_not_called()
        self.assertTrue(domain.active)
        self.assertTrue(domain.defined)
        self.assertTrue(os.path.isdir(self.directory))
        self.assertEqual({VOL_BOOT, VOL_DATA}, self.volumes.connected)

    def test_abort_cancels_and_keeps_the_guest(self):
        domain = self._spawn()
        domain.migrate_wait = threading.Event()
        data = _migrate_data()
        thread = self._in_thread(data)
        self._wait_for_job(domain)
        self.driver.live_migration_abort(self.instance)
        thread.join(10)
        self.recover.assert_called_once_with(
            self.fx.context, self.instance, 'host2', data,
            migration_status='cancelled')
        self.post.assert_not_called()
        self.assertTrue(domain.active)
        self.assertTrue(os.path.isdir(self.directory))

    def test_force_complete_switches_to_post_copy(self):
        self.fx.conf.set(live_migration_permit_post_copy=True)
        domain = self._spawn()
        domain.migrate_wait = threading.Event()
        data = _migrate_data()
        thread = self._in_thread(data)
        self._wait_for_job(domain)
        self.driver.live_migration_force_complete(self.instance)
        thread.join(10)
        self.assertIn('migrateStartPostCopy', domain.calls)
        self.assertEqual(live_monitor.POST_COPY_STATUS,
                         data.migration.status)
        self.post.assert_called_once()

    def test_forced_without_post_copy_pauses_and_rollback_resumes(self):
        domain = self._spawn()
        domain.migrate_wait = threading.Event()
        domain.migrate_error = virt_fakes.libvirt_error('lost')
        data = _migrate_data()
        thread = self._in_thread(data)
        self._wait_for_job(domain)
        self.driver.live_migration_force_complete(self.instance)
        deadline = time.monotonic() + 10
        while not domain.paused and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(domain.paused)
        domain.migrate_wait.set()
        thread.join(10)
        self.recover.assert_called_once()
        # nova's rollback on the source resumes the paused guest.
        self.driver.rollback_live_migration_at_source(
            self.fx.context, self.instance, data)
        self.assertFalse(domain.paused)
        self.assertTrue(domain.active)

    # -- checks ------------------------------------------------------------

    def _check_source(self, peer):
        @contextlib.contextmanager
        def opened(uri):
            yield peer
        with mock.patch.object(live.peer_mod, 'opened', opened):
            dest = self.driver.check_can_live_migrate_destination(
                self.fx.context, self.instance, {}, {}, None, False)
            try:
                return self.driver.check_can_live_migrate_source(
                    self.fx.context, self.instance, dest, self.bdi)
            finally:
                self.driver.cleanup_live_migration_destination_check(
                    self.fx.context, dest)

    def test_check_names_every_difference_and_changes_nothing(self):
        domain = self._spawn()
        before = sorted(os.listdir(self.fx.driver._disks.instances_path))
        with mock.patch.object(live.live_checks, 'GuestFacts',
                               side_effect=_facts_with_cpu):
            exc = self.assertRaises(
                exception.MigrationPreCheckError, self._check_source,
                _Peer(cpu='guest CPU feature aes is missing',
                      machine='machine pc-q35-8.0 unknown', free=1 << 20))
        message = str(exc)
        self.assertIn('aes', message)
        self.assertIn('pc-q35-8.0', message)
        self.assertIn('MiB of memory needed', message)
        self.assertEqual(before, sorted(os.listdir(
            self.fx.driver._disks.instances_path)))
        self.assertTrue(domain.active)

    def test_check_finds_shared_storage_and_removes_its_probe(self):
        # One driver is both hosts here: the instances path is shared, so
        # nova's "auto" means no block migration.
        self._spawn()
        data = self._check_source(_Peer())
        self.assertFalse(data.block_migration)
        self.assertTrue(data.is_shared_instance_path)
        probes = [n for n in os.listdir(self.fx.driver._disks.instances_path)
                  if n.startswith('.pyvirt')]
        self.assertEqual([], probes)


_GUEST_FACTS = live_checks.GuestFacts


def _facts_with_cpu(xml_text):
    """The guest's facts, as for a guest with a custom CPU."""
    facts = _GUEST_FACTS(xml_text)
    facts.cpu_mode = 'custom'
    facts.cpu_xml = "<cpu mode='custom'><model>qemu64</model>" \
        "<feature policy='require' name='aes'/></cpu>"
    return facts


class DowntimeStepsTest(base.BaseTestCase):

    def test_steps_grow_to_the_maximum(self):
        steps = live_monitor.downtime_steps(500, 10, 75, 1.5)
        self.assertEqual(11, len(steps))
        self.assertEqual((0, 50), steps[0])
        self.assertEqual(500, steps[-1][1])
        self.assertEqual(112, steps[1][0])

    def test_remaining_percent(self):
        self.assertEqual(25, live_monitor.remaining_percent(
            {'data_total': 400, 'data_remaining': 100}))
        self.assertEqual(100, live_monitor.remaining_percent({}))
