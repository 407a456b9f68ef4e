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

"""Cold migration and resize of real guests between two real hosts.

Host A runs on the embedded QEMU root, host B on a private libvirtd; each
has its own instances directory and its own sshd, and the copy goes through
a byte-counting relay (:mod:`tests.fixtures.two_hosts`). The tests call the
driver as nova's compute manager does, in nova's order, on a real TCG guest
(tools/guest_image): ``migrate_disk_and_power_off`` on A, the instance
handed over to B (``instance.host``, ``old_flavor``, ``flavor``), then
``finish_migration`` on B, and ``confirm_migration`` or (after
``destroy`` on B) ``finish_revert_migration`` on A.

The guest is booted with ``pyvirt.write=vda:MARKER``: at its first boot it
writes MARKER at the start of its root disk, after it has reported the
disk. A later boot reports ``marker=MARKER`` only if the data written on A
is on the disk it booted from.
"""

import os

from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslo_utils import units
from oslo_utils import uuidutils
from oslotest import base
from testtools import content

from nova import exception

from nova_pyvirt.migration import transport
from nova_pyvirt.storage import imagecache
from tests.fixtures import two_hosts
from tests.guest_console import DISK_LINE

READY = 'PYVIRT-GUEST: ready'
# Per ssh connection through the relay: key exchange, authentication,
# channel setup (about 4 KiB measured), with room to spare.
SSH_CONNECTION_BYTES = 16 * units.Ki
# The copy is cut after this many bytes: past the root disk, in the middle
# of the kernel (about 14 MiB), which is copied after it.
CUT_AFTER = 4 * units.Mi


def disk_report(console, name='vda'):
    """``(size, marker)`` of the boot-time report of disk ``name``."""
    for line in console.splitlines():
        match = DISK_LINE.match(line.strip())
        if match and match.group(1) == name and match.group(4) is None:
            return int(match.group(3)), match.group(5)
    return None


def file_checksums(directory):
    """``{name: sha256}`` of the files in ``directory``.

    The console log is left out: the guest writes to it.
    """
    return {name: two_hosts.sha256(os.path.join(directory, name))
            for name in sorted(os.listdir(directory))
            if name != 'console.log'}


class ColdMigrationTest(base.BaseTestCase):

    def setUp(self):
        super(ColdMigrationTest, self).setUp()
        self.fx = self.useFixture(two_hosts.TwoHostsFixture())
        self.a = self.fx.a
        self.b = self.fx.b
        self.ctx = self.fx.context

    # -- helpers -----------------------------------------------------------

    def booted_with_marker(self, flavor=None):
        """A guest on A that wrote a marker into vda; (instance, meta, m)."""
        marker = 'PYVIRT-MIGRATION-%s' % uuidutils.generate_uuid()[:8]
        image = self.fx.image('pyvirt.write=vda:%s' % marker)
        instance, image_meta = self.fx.spawn(self.a, image, flavor)
        console = self.a.wait_console(instance, READY)
        self.assertIn('PYVIRT-WROTE vda', console)
        # The report comes before the write: the image's own marker.
        self.assertEqual('PYVIRT-DISK-MARKER root',
                         disk_report(console)[1])
        return instance, image_meta, marker

    def assert_booted(self, host, instance, marker, size):
        """``instance`` boots on ``host`` from a disk holding ``marker``."""
        self.assertTrue(host.is_running(instance))
        console = host.wait_console(instance, READY)
        self.addDetail('console-%s' % host.name,
                       content.text_content(console))
        self.assertEqual((size, marker), disk_report(console))

    def assert_files_on(self, host, instance):
        """The domain on ``host`` uses only ``host``'s instance files."""
        files = host.domain_files(instance)
        self.assertNotEqual([], files)
        for path in files:
            self.assertTrue(path.startswith(host.instance_dir(instance) +
                                            os.sep), (path, files))

    def migrate_to_b(self, instance, flavor, migration):
        """``migrate_disk_and_power_off`` on A, as nova calls it."""
        return self.a.driver.migrate_disk_and_power_off(
            self.ctx, instance, migration.dest_host, flavor, [], None, 30, 5)

    def finish_on_b(self, instance, image_meta, migration, disk_info,
                    new_flavor=None):
        """What nova does between the hosts, then ``finish_migration``."""
        # On A, once the copy is done (ComputeManager._resize_instance).
        instance.host = migration.dest_compute
        instance.node = migration.dest_node
        instance.old_flavor = instance.flavor
        # On B (ComputeManager._finish_resize).
        resize = new_flavor is not None
        if resize:
            instance.new_flavor = new_flavor
            instance.flavor = new_flavor
        self.b.driver.finish_migration(
            self.ctx, migration, instance, disk_info, [], image_meta,
            resize, {}, None, True)

    def assert_source_kept(self, instance, checksum):
        """A keeps its copy as ``<dir>_resize`` and its domain, stopped."""
        self.assertFalse(os.path.exists(self.a.instance_dir(instance)))
        self.assertEqual(checksum, two_hosts.sha256(
            os.path.join(self.a.resize_dir(instance), 'disk')))
        self.assertIsNotNone(self.a.domain(instance))
        self.assertFalse(self.a.is_running(instance))

    def assert_overlay_on_b(self, instance, image_id, virtual_size):
        """B's root disk: a qcow2 overlay of the image in B's cache."""
        info = two_hosts.qemu_img_info(self.b.path(instance, 'disk'))
        base_path = os.path.join(self.b.image_cache(),
                                 imagecache.cache_filename(image_id))
        self.assertEqual('qcow2', info['format'])
        self.assertEqual(virtual_size, info['virtual-size'])
        self.assertEqual(base_path, info['backing-filename'])
        self.assertTrue(os.path.isfile(base_path))

    def assert_nothing_on_b(self, instance):
        self.assertEqual([], self.b.leftovers(instance))
        # What B's sshd sees under the instances path (A's path string):
        # nothing of the instance, no partial or temporary file.
        listing = self.fx.ssh(self.b, 'ls -A %s' % self.a.instances_path)
        self.assertNotIn(instance.uuid, listing)
        self.assertNotIn(transport.PART_SUFFIX, listing)

    # -- tests -------------------------------------------------------------

    def test_migrate_to_other_host_and_confirm(self):
        instance, image_meta, marker = self.booted_with_marker()
        overlay = self.a.path(instance, 'disk')
        # The guest is idle: it wrote and flushed its marker.
        checksum = two_hosts.sha256(overlay)
        migration = self.fx.migration(instance)
        self.b.relay.reset()
        connections = self.b.relay.connections

        disk_info = self.migrate_to_b(instance, instance.flavor, migration)

        self.assert_source_kept(instance, checksum)
        self.assertEqual(100, instance.progress)
        info = jsonutils.loads(disk_info)
        self.assertFalse(info['shared_storage'])
        self.assertIn('disk', info['files'])

        # Only what the files hold crossed the network: about the
        # overlay's allocated size (plus kernel and ramdisk, which the
        # instance directory holds too), not its virtual size.
        source = self.a.resize_dir(instance)
        sent = sum(two_hosts.allocated(os.path.join(source, name))
                   for name in info['files'])
        wire = self.b.relay.bytes_up
        ssh_connections = self.b.relay.connections - connections
        kept = os.path.join(source, 'disk')
        virtual = two_hosts.qemu_img_info(kept)['virtual-size']
        self.addDetail('wire', content.text_content(
            '%d bytes to B over %d ssh connections; files %s allocate %d '
            'bytes, the overlay %d (virtual size %d)' % (
                wire, ssh_connections, info['files'], sent,
                two_hosts.allocated(kept), virtual)))
        self.assertEqual(units.Gi, virtual)
        self.assertGreaterEqual(wire, two_hosts.allocated(kept))
        self.assertLessEqual(
            wire, sent * 1.05 + SSH_CONNECTION_BYTES * ssh_connections)
        self.assertLess(wire, virtual // 20)

        self.finish_on_b(instance, image_meta, migration, disk_info)

        self.assert_booted(self.b, instance, marker, units.Gi)
        self.assert_files_on(self.b, instance)
        self.assert_overlay_on_b(instance, image_meta.id, units.Gi)
        # The copied files, landed in B's own directory, and nothing else.
        self.assertEqual(sorted(info['files'] + ['console.log']),
                         sorted(os.listdir(self.b.instance_dir(instance))))
        # What the guest sees on B is what it saw on A.
        out, _err = processutils.execute(
            'qemu-img', 'compare', '-U', kept, self.b.path(instance, 'disk'))
        self.assertIn('Images are identical', out)

        self.a.driver.confirm_migration(self.ctx, migration, instance, [])

        self.assertEqual([], self.a.leftovers(instance))
        self.assertTrue(self.b.is_running(instance))

    def test_resize_grows_disk_then_revert(self):
        instance, image_meta, marker = self.booted_with_marker()
        overlay = self.a.path(instance, 'disk')
        checksum = two_hosts.sha256(overlay)
        old_flavor = instance.flavor
        new_flavor = self.fx.flavor(root_gb=2, memory_mb=160,
                                    name='m1.bigger', flavorid='t2',
                                    flavor_id=2)
        migration = self.fx.migration(instance, new_flavor=new_flavor)

        disk_info = self.migrate_to_b(instance, new_flavor, migration)
        self.assert_source_kept(instance, checksum)
        self.finish_on_b(instance, image_meta, migration, disk_info,
                         new_flavor=new_flavor)

        # The guest on B sees the bigger disk, with A's data on it.
        self.assert_booted(self.b, instance, marker, 2 * units.Gi)
        self.assert_files_on(self.b, instance)
        self.assert_overlay_on_b(instance, image_meta.id, 2 * units.Gi)
        # The domain was made anew from the new flavor.
        self.assertEqual(160 * units.Ki,
                         self.b.domain(instance).maxMemory())

        # Revert: nova destroys the instance on B, then finishes on A.
        self.b.driver.destroy(self.ctx, instance, [], None,
                              destroy_disks=True)
        self.assertEqual([], self.b.leftovers(instance))
        instance.flavor = old_flavor
        instance.host = migration.source_compute
        instance.node = migration.source_node
        self.a.driver.finish_revert_migration(self.ctx, instance, [],
                                              migration, None, True)

        self.assertFalse(os.path.exists(self.a.resize_dir(instance)))
        self.assert_booted(self.a, instance, marker, units.Gi)
        self.assert_files_on(self.a, instance)
        self.assertEqual(128 * units.Ki,
                         self.a.domain(instance).maxMemory())
        # The same file as before the migration. (This boot wrote the
        # marker again: the same bytes at the same place.)
        self.a.driver.power_off(instance, 30, 5)
        self.assertEqual(checksum, two_hosts.sha256(overlay))
        self.assertEqual(units.Gi,
                         two_hosts.qemu_img_info(overlay)['virtual-size'])
        self.assert_nothing_on_b(instance)

    def test_copy_cut_mid_transfer_runs_the_guest_again_on_source(self):
        instance, image_meta, marker = self.booted_with_marker()
        directory = self.a.instance_dir(instance)
        before = file_checksums(directory)
        migration = self.fx.migration(instance)
        self.b.relay.cut_after(CUT_AFTER)

        rollback = self.assertRaises(
            exception.InstanceFaultRollback, self.migrate_to_b, instance,
            instance.flavor, migration)

        # nova-compute records the wrapped error as the instance's fault.
        error = rollback.inner_exception
        self.assertIsInstance(error, transport.RemoteCopyError)
        self.addDetail('error', content.text_content(str(error)))
        self.assertEqual(1, self.b.relay.cuts)
        text = str(error)
        self.assertIn(two_hosts.ADDRESS_B, text)
        self.assertIn(directory, text)
        self.assertIn('The source is untouched', text)
        # A: the instance directory is back; nothing else.
        self.assertFalse(os.path.exists(self.a.resize_dir(instance)))
        self.assertEqual([instance.uuid], sorted(
            n for n in os.listdir(self.a.instances_path) if n != '_base'))
        # B: nothing.
        self.assert_nothing_on_b(instance)
        self.assertEqual([], os.listdir(self.b.instances_path))

        # The guest was started again on A, from the same disk.
        self.assert_booted(self.a, instance, marker, units.Gi)
        self.assert_files_on(self.a, instance)
        # Its files are those of before the migration. (This boot wrote
        # the marker again: the same bytes at the same place.)
        self.a.driver.power_off(instance, 30, 5)
        self.assertEqual(before, file_checksums(directory))

    def test_shrinking_disk_is_refused(self):
        instance, _image_meta = self.fx.spawn(
            self.a, flavor=self.fx.flavor(root_gb=2))
        directory = self.a.instance_dir(instance)
        before = file_checksums(directory)
        smaller = self.fx.flavor(root_gb=1, name='m1.smaller',
                                 flavorid='t3', flavor_id=3)
        migration = self.fx.migration(instance, new_flavor=smaller)

        error = self.assertRaises(
            exception.InstanceFaultRollback, self.migrate_to_b, instance,
            smaller, migration)

        self.assertIsInstance(error.inner_exception, exception.ResizeError)
        self.assertIn('cannot be shrunk', str(error.inner_exception))
        # Untouched: still running (it goes on booting), same files, and
        # nothing was sent to B.
        self.assertTrue(self.a.is_running(instance))
        console = self.a.wait_console(instance, READY)
        self.assertEqual((2 * units.Gi, 'PYVIRT-DISK-MARKER root'),
                         disk_report(console))
        self.assertEqual(before, file_checksums(directory))
        self.assertFalse(os.path.exists(self.a.resize_dir(instance)))
        self.assertEqual(0, self.b.relay.connections)
        self.assertEqual([], os.listdir(self.b.instances_path))
        self.assertEqual(0, instance.progress)
