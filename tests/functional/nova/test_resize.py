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

"""Resize through nova's API between two compute services of this driver.

The two computes act as two hosts (:mod:`.two_computes`): their own
libvirt, instances directory, address and sshd. nova's scheduler picks the
other host (``allow_resize_to_same_host`` is off), the source compute's
driver powers the guest off and copies its files over ssh, and the
destination's driver grows the root disk and boots the guest, whose console
reports the disk size it sees.

One test confirms (the server stays on the new host, the old host keeps
nothing), the other reverts (the server is back on the old host, the new
host keeps nothing). They move in opposite directions, so each host is
once the source and once the destination.
"""

import os
import re
import time

import libvirt
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslo_utils import units

from nova.compute import power_state
from nova import context as nova_context
from nova import objects

from tests.fixtures import two_hosts
from tests.functional.nova import base
from tests.functional.nova import two_computes

#: Seconds for a resize or a revert to finish: a graceful power-off (up to
#: nova's shutdown_timeout), the copy, and a TCG guest start, on a machine
#: that may be busy.
MOVE_TIMEOUT = max(base.STATUS_TIMEOUT, 300)

_DISK_LINE = re.compile(
    r'^PYVIRT-DISK name=vda serial=\S+ size=(\d+) marker=(.*)$', re.M)

OLD_ROOT_GB = 1
NEW_ROOT_GB = 2


class ResizeTestBase(two_computes.TwoComputesTestBase):
    """The steps and checks of a resize; no tests."""

    def setUp(self):
        super().setUp()
        self.old_flavor_id = self._create_guest_flavor(
            name='pyvirt-small', disk=OLD_ROOT_GB)
        self.new_flavor_id = self._create_guest_flavor(
            name='pyvirt-bigger-disk', disk=NEW_ROOT_GB)
        self.old_flavor = self.api.get_flavor(self.old_flavor_id)
        self.new_flavor = self.api.get_flavor(self.new_flavor_id)

    # -- steps -------------------------------------------------------------

    def _boot_on(self, host):
        body = self._build_server(
            name='pyvirt-resize', image_uuid=self.images['root'],
            flavor_id=self.old_flavor_id, networks='none', host=host)
        server = self._wait_for_status(self.api.post_server({'server': body}),
                                       'ACTIVE')
        self.assertEqual(host, self._host_of(server))
        # A guest that finished booting answers the ACPI power button, so
        # the resize's power-off is a clean one.
        console = self._wait_for_console(server, base.GUEST_READY)
        self.assertEqual(OLD_ROOT_GB * units.Gi, self._root_size(console))
        return server

    def _resize(self, server):
        self.api.post_server_action(
            server['id'], {'resize': {'flavorRef': self.new_flavor_id}})
        server = self._wait_for_status(server, 'VERIFY_RESIZE',
                                       timeout=MOVE_TIMEOUT)
        self._wait_for_migration_status(server, ['finished'])
        return server

    def _root_size(self, console, after=None):
        """Size of vda in the guest's boot report on ``console``.

        With ``after``, only what follows the last ``after`` line counts
        (when the log holds an earlier boot too).
        """
        if after is not None and after in console:
            console = console[console.rfind(after):]
        found = _DISK_LINE.findall(console)
        self.assertTrue(found, 'no PYVIRT-DISK line for vda:\n%s' % console)
        size, marker = found[-1]
        # The image's data came along.
        self.assertEqual('PYVIRT-DISK-MARKER root', marker)
        return int(size)

    def _assert_runs_on(self, host, server):
        dom = self._domain_on(host, server)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, dom.state()[0])
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        return dom

    def _assert_nothing_left_on(self, host, server):
        self.assertNoDomainOn(host, server)
        instance_dir = self._instance_dir(host, server)
        for path in (instance_dir, instance_dir + '_resize'):
            self.assertFalse(os.path.exists(path), path)

    def _assert_allocated_on(self, host, flavor, server):
        rp_uuid = self._node_provider(host)
        allocations = self._get_allocations_by_server_uuid(server['id'])
        self.assertEqual([rp_uuid], list(allocations))
        self.assertFlavorMatchesAllocation(flavor, server['id'], rp_uuid)

    def _root_disk_info(self, host, server):
        out, _err = processutils.execute(
            'qemu-img', 'info', '-U', '--output=json',
            os.path.join(self._instance_dir(host, server), 'disk'))
        return jsonutils.loads(out)

    # -- API actions -------------------------------------------------------

    def _confirm(self, server):
        self.api.post_server_action(server['id'], {'confirmResize': None})
        server = self._wait_for_status(server, 'ACTIVE',
                                       timeout=MOVE_TIMEOUT)
        self._wait_for_migration_status(server, ['confirmed'])
        return server

    def _revert(self, server):
        self.api.post_server_action(server['id'], {'revertResize': None})
        server = self._wait_for_status(server, 'ACTIVE',
                                       timeout=MOVE_TIMEOUT)
        self._wait_for_migration_status(server, ['reverted'])
        # The source's finish_revert_resize ends the action; it also removes
        # the migration's allocation.
        self._wait_for_instance_action_event(
            server, 'revertResize', 'compute_finish_revert_resize',
            'success')
        return server


class ResizeBetweenHostsTest(ResizeTestBase):

    def test_resize_confirm(self):
        source, dest = two_computes.HOST1, two_computes.HOST2
        server = self._boot_on(source)

        server = self._resize(server)

        # VERIFY_RESIZE on the other host, running there.
        self.assertEqual(dest, self._host_of(server))
        self.assertEqual(self.new_flavor['name'],
                         server['flavor']['original_name'])
        self._assert_runs_on(dest, server)
        # The source keeps its copy, stopped, for a revert.
        self.assertEqual(
            libvirt.VIR_DOMAIN_SHUTOFF,
            self._domain_on(source, server).state()[0])
        source_copy = self._instance_dir(source, server) + '_resize'
        self.assertTrue(os.path.isdir(source_copy))
        self.assertFalse(os.path.exists(self._instance_dir(source, server)))
        # It was powered off cleanly: the guest saw the power button.
        with open(os.path.join(source_copy, 'console.log'),
                  errors='replace') as handle:
            self.assertIn(base.GUEST_ACPI_SHUTDOWN, handle.read())

        # The root disk arrived as a qcow2 overlay of the destination's
        # image cache, grown to the new flavor, and the guest sees that.
        info = self._root_disk_info(dest, server)
        self.assertEqual('qcow2', info['format'])
        self.assertEqual(NEW_ROOT_GB * units.Gi, info['virtual-size'])
        self.assertEqual(
            os.path.join(self.paths[dest], '_base'),
            os.path.dirname(info['full-backing-filename']))
        console = self._wait_for_console(server, base.GUEST_READY)
        self.assertEqual(NEW_ROOT_GB * units.Gi, self._root_size(console))

        server = self._confirm(server)

        self.assertEqual(dest, self._host_of(server))
        self._assert_runs_on(dest, server)
        self._assert_nothing_left_on(source, server)
        self._assert_allocated_on(dest, self.new_flavor, server)

    def test_resize_revert(self):
        source, dest = two_computes.HOST2, two_computes.HOST1
        server = self._boot_on(source)
        source_dom_id = self._domain_on(source, server).ID()

        server = self._resize(server)

        self.assertEqual(dest, self._host_of(server))
        self._assert_runs_on(dest, server)
        self.assertTrue(os.path.isdir(self._instance_dir(dest, server)))

        server = self._revert(server)

        # Back on the source with the old flavor, in a new QEMU process that
        # boots from the source's own copy: the old disk size. (A new QEMU
        # process starts a new console log.)
        self.assertEqual(source, self._host_of(server))
        self.assertEqual(self.old_flavor['name'],
                         server['flavor']['original_name'])
        dom = self._assert_runs_on(source, server)
        self.assertNotEqual(source_dom_id, dom.ID())
        self.assertFalse(os.path.exists(
            self._instance_dir(source, server) + '_resize'))
        console = self._wait_for_console(server, base.GUEST_READY,
                                         after=base.GUEST_ACPI_SHUTDOWN)
        self.assertEqual(OLD_ROOT_GB * units.Gi, self._root_size(
            console, after=base.GUEST_ACPI_SHUTDOWN))
        self.assertEqual(OLD_ROOT_GB * units.Gi,
                         self._root_disk_info(source, server)['virtual-size'])

        self._assert_nothing_left_on(dest, server)
        self._assert_allocated_on(source, self.old_flavor, server)


class FailedCopyTest(ResizeTestBase):
    """A resize whose copy fails, with nova's RPC casts left as casts.

    nova's test base turns casts into calls by default; the compute's
    error would then come back as the API's answer to the resize, which a
    real nova-api never sees (it answers 202 before the compute starts).
    """

    CAST_AS_CALL = False

    def test_failed_copy_keeps_the_server_running_on_the_source(self):
        source, dest = two_computes.HOST1, two_computes.HOST2
        server = self._boot_on(source)
        disk = os.path.join(self._instance_dir(source, server), 'disk')
        checksum = two_hosts.sha256(disk)
        # The destination's instances directory cannot take a new entry,
        # not even from root: the copy fails creating the instance's
        # directory there (mkdir: Operation not permitted).
        processutils.execute('chattr', '+i', self.paths[dest])
        self.addCleanup(processutils.execute, 'chattr', '-i',
                        self.paths[dest])

        self.api.post_server_action(
            server['id'], {'resize': {'flavorRef': self.new_flavor_id}})
        migration = self._wait_for_migration_in('error', server)

        # nova-compute got InstanceFaultRollback: the server is ACTIVE
        # again, on the source, with the old flavor, and the cause is the
        # instance's fault.
        # nova sets the server ACTIVE before it records the fault and
        # gives back the allocation: wait for its resize_instance to end.
        self._wait_for_compute_event(server, 'compute_resize_instance')
        server = self._wait_for_status(server, 'ACTIVE')
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual(source, self._host_of(server))
        self.assertEqual(dest, migration['dest_compute'])
        self.assertEqual(self.old_flavor['name'],
                         server['flavor']['original_name'])
        faults = objects.InstanceFaultList.get_by_instance_uuids(
            nova_context.get_admin_context(), [server['id']])
        self.assertEqual(1, len(faults))
        # The message is cut at 255 characters; the details hold it all.
        self.assertIn('Creating directory %s on host %s failed' % (
            self._instance_dir(source, server), two_computes.ADDRESSES[dest]),
            faults[0].message)
        self.assertIn('Operation not permitted', faults[0].details)
        # The guest runs again there: a new boot (after the power-off
        # the resize made) from the same disk, unchanged.
        self._assert_runs_on(source, server)
        console = self._wait_for_console(server, base.GUEST_READY,
                                         after=base.GUEST_ACPI_SHUTDOWN)
        self.assertEqual(OLD_ROOT_GB * units.Gi, self._root_size(
            console, after=base.GUEST_ACPI_SHUTDOWN))
        self.assertEqual(checksum, two_hosts.sha256(disk))
        self.assertFalse(os.path.exists(
            self._instance_dir(source, server) + '_resize'))
        # Nothing on the destination, and the allocation is the source's.
        self._assert_nothing_left_on(dest, server)
        self.assertEqual([], os.listdir(self.paths[dest]))
        self._assert_allocated_on(source, self.old_flavor, server)

    def _wait_for_compute_event(self, server, name):
        """Wait until nova-compute's ``name`` event of ``server`` ended."""
        ctx = nova_context.get_admin_context()
        deadline = time.monotonic() + MOVE_TIMEOUT
        while True:
            for action in objects.InstanceActionList.get_by_instance_uuid(
                    ctx, server['id']):
                for event in objects.InstanceActionEventList.get_by_action(
                        ctx, action.id):
                    if event.event == name and event.finish_time:
                        return event
            if time.monotonic() > deadline:
                self.fail('the %s event of %s did not end within %d s'
                          % (name, server['id'], MOVE_TIMEOUT))
            time.sleep(base.POLL)

    def _wait_for_migration_in(self, status, server):
        deadline = time.monotonic() + MOVE_TIMEOUT
        while True:
            migrations = self.admin_api.api_get(
                '/os-migrations?instance_uuid=%s' % server['id']
            ).body['migrations']
            if migrations and migrations[0]['status'] == status:
                return migrations[0]
            if time.monotonic() > deadline:
                self.fail('no migration of %s in status %s within %d s: %s'
                          % (server['id'], status, MOVE_TIMEOUT, migrations))
            time.sleep(base.POLL)
