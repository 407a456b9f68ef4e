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

"""Live migration: libvirt's peer-to-peer migration, driven for nova.

The steps, and the host each runs on, are nova's (compute manager):

1. destination, :meth:`LiveMigration.check_destination`: what this host
   offers (free disk, its migration address) and a probe file for the
   shared-storage test, in nova's ``LibvirtLiveMigrateData``;
2. source, :meth:`LiveMigration.check_source`: shared storage or block
   migration (nova's ``auto``), then the destination's libvirtd is asked,
   without changing anything, whether it can run the guest's CPU and
   machine type and has the memory and disk (:mod:`.live_checks`). A
   failing check raises ``MigrationPreCheckError`` naming every
   difference; nothing was changed on either host;
3. destination, :meth:`LiveMigration.prepare_destination`: the instance
   directory, each local disk as an empty file of the right size (a qcow2
   overlay of the image in this host's image cache, so only what the
   guest wrote is copied), kernel and ramdisk, volume connections (handed
   back to the source in ``migrate_data.bdms``, :mod:`.live_volumes`) and
   ports (as bound to this host, :mod:`.live_ports`). A failure removes
   all of it again;
4. source, :meth:`LiveMigration.migrate`: ``migrateToURI3`` with typed
   parameters (live, peer-to-peer, persistent on the destination,
   undefined on the source; ``NON_SHARED_INC`` for the local disks of a
   block migration; with volumes, the guest's XML with their sources as
   the destination connected them), watched by
   :class:`.live_monitor.LiveMigrationJob`. QEMU's block copy takes only
   writable disks: a read-only file of the instance (an iso9660 config
   drive, a CD-ROM) is sent first, through the destination's libvirtd
   (:meth:`nova_pyvirt.hypervisor.peer.PeerHost.upload`), over the
   empty file step 3 made.
   nova's ``post_method`` runs when the guest runs on the destination,
   its ``recover_method`` when it still runs here;
5. after: the source forgets the guest's volume connections, ports and
   (unless shared) files; or, on a rollback, the destination removes what
   step 3 made, and the source resumes a guest it paused. A destination
   whose libvirt is unreachable at that moment removes its instance
   directory later, once libvirt answers (:mod:`.live_leftovers`).

Nothing on the source is removed before the guest runs on the destination:
libvirt undefines the source domain only when the migration completed,
and the source's files go in nova's cleanup after ``post_method``.
"""

import os
import tempfile

import libvirt
from lxml import etree
from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import excutils
from oslo_utils import units

from nova import exception
from nova.objects import migrate_data as migrate_data_obj

from nova_pyvirt.design import request
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import guest as guest_mod
from nova_pyvirt.hypervisor import peer as peer_mod
from nova_pyvirt.migration import live_checks
from nova_pyvirt.migration import live_leftovers
from nova_pyvirt.migration import live_monitor
from nova_pyvirt.migration import live_ports
from nova_pyvirt.migration import live_volumes
from nova_pyvirt.storage import fileops
from nova_pyvirt.storage import imagecache
from nova_pyvirt.storage import instance_disks
from nova_pyvirt.storage import instance_files

LOG = logging.getLogger(__name__)

BASE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER |
              libvirt.VIR_MIGRATE_PERSIST_DEST |
              libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)

_SHARED_PROBE_PREFIX = '.pyvirt-shared-'
# Seconds to wait, after migrateToURI3 returned, for libvirt's
# job-completed event when no poll saw the migration's counters.
COMPLETED_EVENT_WAIT = 5


def _bracketed(address):
    """An IPv6 address in brackets, as URIs want it."""
    if ':' in address and not address.startswith('['):
        return '[%s]' % address
    return address


def local_disk_entries(disks):
    """The ``get_instance_disk_info`` list for ``disks`` (a DiskSet).

    nova's keys (``path``, ``type``, ``virt_disk_size``, ``disk_size``,
    ``backing_file``, ``over_committed_disk_size``) plus what the
    destination needs to make the same disk: its name, device and bus.
    """
    entries = []
    for disk in disks.local_disks:
        if disk.source_type != 'file':
            continue
        info = fileops.qemu_img_info(disk.path, disk.format)
        allocated = os.stat(disk.path).st_blocks * 512
        entries.append({
            'name': disk.name, 'path': disk.path, 'type': disk.format,
            'device': disk.device, 'bus': disk.bus,
            'virt_disk_size': info.virtual_size, 'disk_size': allocated,
            'backing_file': os.path.basename(info.backing_file or '') or '',
            'backing_format': info.backing_file_format or '',
            'over_committed_disk_size': max(0, info.virtual_size -
                                            allocated)})
    return entries


class LiveMigration(object):
    """Both hosts' sides of a live migration (see the module docstring).

    Identity options (the destination URI template, this host's inbound
    address) are read once, as the driver reads its connection URI: two
    drivers in one process are two hosts. Tuning options are read when a
    migration starts.
    """

    def __init__(self, conf, host, disks, volumes, vifs, image_api):
        self.conf = conf
        self.host = host
        self.disks = disks
        self.volumes = volumes
        self.vifs = vifs
        self.image_api = image_api
        self.uri_template = conf.pyvirt.live_migration_uri
        self.scheme = conf.pyvirt.live_migration_scheme
        # As nova: without an inbound address the others reach this host
        # by its name.
        self.inbound_addr = (conf.pyvirt.live_migration_inbound_addr or
                             conf.host)
        self.instances_path = disks.instances_path
        # instance uuid -> LiveMigrationJob of a migration running here.
        self.jobs = {}
        # uuids of guests a forced completion paused (resumed on rollback).
        self.paused = set()

    @property
    def settings(self):
        return self.conf.pyvirt

    def _files(self, instance):
        return instance_files.InstanceFiles(self.instances_path,
                                            instance.uuid)

    def _guest(self, instance):
        return guest_mod.Guest(self.host.get_guest(instance))

    def destination_uri(self, dest, migrate_data):
        """The destination libvirtd's URI, as the source's daemon opens it.

        The address is the one the destination announced
        (``target_connect_addr``, its ``live_migration_inbound_addr``), else
        nova's name of the destination host.
        """
        address = None
        if migrate_data is not None and \
                'target_connect_addr' in migrate_data:
            address = migrate_data.target_connect_addr
        address = _bracketed(address or dest)
        if self.uri_template:
            return self.uri_template.replace('%s', address)
        return 'qemu+%s://%s/system' % (self.scheme, address)

    # -- 1. destination check ------------------------------------------------

    def check_destination(self, instance, block_migration, disk_over_commit):
        data = migrate_data_obj.LibvirtLiveMigrateData()
        os.makedirs(self.instances_path, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=_SHARED_PROBE_PREFIX,
                                         dir=self.instances_path)
        os.close(handle)
        data.filename = os.path.basename(probe)
        data.image_type = self.settings.images_type
        if block_migration is not None:
            data.block_migration = bool(block_migration)
        data.disk_over_commit = bool(disk_over_commit)
        total, used = self.disks.usage()
        data.disk_available_mb = max(0, total - used) // units.Mi
        data.graphics_listen_addr_vnc = self.conf.vnc.server_listen
        data.graphics_listen_addr_spice = None
        data.serial_listen_addr = None
        data.serial_listen_ports = []
        data.target_connect_addr = self.inbound_addr
        data.supported_perf_events = []
        data.dst_wants_file_backed_memory = False
        data.file_backed_memory_discard = False
        return data

    def cleanup_destination_check(self, dest_check_data):
        name = getattr(dest_check_data, 'filename', None) if \
            dest_check_data is not None and \
            'filename' in dest_check_data else None
        if name and name.startswith(_SHARED_PROBE_PREFIX) and \
                os.path.basename(name) == name:
            try:
                os.unlink(os.path.join(self.instances_path, name))
            except FileNotFoundError:
                pass

    # -- 2. source check ---------------------------------------------------

    def check_source(self, instance, dest_check_data, block_device_info):
        data = dest_check_data
        files = self._files(instance)
        disks = instance_disks.DiskSet.load(files)
        local = [d for d in disks.local_disks]
        shared_path = bool(data.filename) and os.path.exists(
            os.path.join(self.instances_path, data.filename))
        data.is_shared_instance_path = shared_path
        data.is_shared_block_storage = shared_path or not local
        data.instance_relative_path = instance.uuid
        if 'block_migration' not in data:
            # nova's "auto": copy the disks when the storage is not shared.
            data.block_migration = not data.is_shared_block_storage
        if data.block_migration and data.is_shared_block_storage:
            raise exception.InvalidSharedStorage(
                reason='the instance storage of %s is shared with the '
                       'destination: block migration would copy the disks '
                       'onto themselves' % instance.uuid, path=files.path)
        if not data.block_migration and not data.is_shared_block_storage:
            raise exception.InvalidLocalStorage(
                reason='%s has local disks that the destination cannot see; '
                       'block migration is needed' % instance.uuid,
                path=files.path)
        disk_bytes = 0
        if data.block_migration:
            disk_bytes = self._check_block_migratable(instance, disks,
                                                      data.disk_over_commit)
        guest = self._guest(instance)
        facts = live_checks.GuestFacts(guest.xml())
        uri = self.destination_uri(None, data)
        available = None
        if data.block_migration and 'disk_available_mb' in data and \
                data.disk_available_mb is not None:
            available = data.disk_available_mb * units.Mi
        try:
            with peer_mod.opened(uri) as peer:
                problems = live_checks.destination_problems(
                    peer, facts, disk_bytes, available)
        except libvirt.libvirtError as exc:
            scheme, detail = connection.describe_failure(uri, exc)
            raise exception.MigrationPreCheckError(
                reason='cannot ask the destination %s (%s): %s' % (
                    connection.redact_uri(uri), scheme, detail))
        if problems:
            raise exception.MigrationPreCheckError(
                reason='%s cannot take %s: %s' % (
                    data.target_connect_addr, instance.uuid,
                    '; '.join(problems)))
        return data

    def _check_block_migratable(self, instance, disks, over_commit):
        """Bytes the copied disks need; refuse disks that cannot be copied."""
        needed = 0
        expected_base = imagecache.cache_filename(instance.image_ref) if \
            instance.image_ref else None
        for disk in disks.local_disks:
            if disk.source_type != 'file':
                raise exception.MigrationPreCheckError(
                    reason='disk %s of %s is a logical volume; block '
                           'migration copies files only' % (
                               disk.name, instance.uuid))
            info = fileops.qemu_img_info(disk.path, disk.format)
            backing = os.path.basename(info.backing_file or '')
            if backing and backing != expected_base:
                # Only the overlay is copied (NON_SHARED_INC): a base the
                # destination cannot fetch itself would be missing there.
                raise exception.MigrationPreCheckError(
                    reason='disk %s of %s is backed by %s, which is not the '
                           'cached image of %s' % (
                               disk.name, instance.uuid, backing,
                               instance.image_ref))
            if over_commit:
                needed += os.stat(disk.path).st_blocks * 512
            else:
                needed += info.virtual_size
        return needed

    # -- 3. destination preparation ------------------------------------------

    def prepare_destination(self, context, instance, block_device_info,
                            network_info, disk_info, migrate_data):
        files = self._files(instance)
        made_dir = False
        connected = False
        plugged = []
        try:
            if not migrate_data.is_shared_instance_path:
                if not files.create():
                    raise exception.DestinationDiskExists(path=files.path)
                made_dir = True
                self._make_disks(context, instance, files, disk_info,
                                 migrate_data.is_shared_block_storage)
            connected = True
            self.volumes.connect_all(block_device_info, instance)
            # The connections as made here, for the source to point the
            # guest's volume disks at (connecting may have added to them).
            migrate_data.bdms = live_volumes.destination_bdms(
                block_device_info)
            plugged.extend(self.vifs.plug_all(
                instance,
                live_ports.destination_vifs(network_info, migrate_data),
                instance.image_meta))
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('preparing %s for its live migration failed; '
                          'removing what was made here', instance.uuid)
                self.vifs.unplug_all(instance, plugged)
                if connected:
                    self._disconnect(block_device_info, instance)
                if made_dir:
                    files.remove()
        return migrate_data

    def _make_disks(self, context, instance, files, disk_info, shared_block):
        if isinstance(disk_info, str):
            entries = jsonutils.loads(disk_info)
        else:
            entries = disk_info or []
        disks = instance_disks.DiskSet(files, [])
        for entry in entries:
            path = files.file(entry['name'])
            disks.local_disks.append(request.LocalDisk(
                name=entry['name'], path=path, format=entry['type'],
                device=entry.get('device') or 'disk', bus=entry.get('bus')))
            if shared_block:
                continue
            self._make_disk(context, instance, path, entry)
        if instance.kernel_id:
            disks.kernel_path = self._download(context, instance.kernel_id,
                                               files.file('kernel'))
            if instance.ramdisk_id:
                disks.ramdisk_path = self._download(
                    context, instance.ramdisk_id, files.file('ramdisk'))
        disks.save()

    def _make_disk(self, context, instance, path, entry):
        """An empty disk that QEMU fills with the source's data.

        A qcow2 overlay gets this host's copy of its base image, so only
        the overlay's own clusters cross the network.
        """
        size = int(entry['virt_disk_size'])
        if entry['type'] == 'qcow2' and entry.get('backing_file'):
            base = self.disks.cache.fetch(context, self.image_api,
                                          instance.image_ref)
            fileops.qemu_img_create(path, 'qcow2', size, backing=base.path,
                                    backing_fmt=base.format)
        else:
            fileops.qemu_img_create(path, entry['type'], size)

    def _download(self, context, image_id, path):
        self.image_api.download(context, image_id, dest_path=path)
        return path

    def _disconnect(self, block_device_info, instance):
        try:
            self.volumes.disconnect_all(block_device_info, instance)
        except Exception:
            LOG.exception('could not disconnect the volumes of %s',
                          instance.uuid)

    # -- 4. the migration --------------------------------------------------

    def flags(self, block_migration):
        s = self.settings
        flags = BASE_FLAGS
        if block_migration:
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_INC
        if s.live_migration_with_native_tls:
            flags |= libvirt.VIR_MIGRATE_TLS
        elif s.live_migration_tunnelled:
            flags |= libvirt.VIR_MIGRATE_TUNNELLED
        if s.live_migration_permit_post_copy:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY
        elif s.live_migration_permit_auto_converge:
            # As nova: auto-converge slows the guest down, post-copy makes
            # that needless, so only one of the two is asked for.
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        return flags

    def params(self, guest_xml, files, block_migration, migrate_data):
        s = self.settings
        params = {}
        if s.live_migration_bandwidth:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = \
                s.live_migration_bandwidth
        address = migrate_data.target_connect_addr if \
            'target_connect_addr' in migrate_data else None
        if address and not (s.live_migration_tunnelled and
                            not s.live_migration_with_native_tls):
            # QEMU's stream goes straight to the destination's migration
            # address (a tunnelled migration has no stream of its own).
            params[libvirt.VIR_MIGRATE_PARAM_URI] = 'tcp://%s' % (
                _bracketed(address))
        targets = local_targets(guest_xml, files.path) if \
            block_migration else []
        if targets:
            params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = targets
        return params

    def volume_xml_params(self, guest, instance, migrate_data):
        """The guest's XML with the destination's volume sources, if any.

        Given both as the running guest's XML and as its definition on the
        destination (else the destination would define the source's).
        """
        bdms = migrate_data.bdms if 'bdms' in migrate_data else None
        if not bdms:
            return {}

        def disk_source(connection_info):
            return self.volumes.driver(connection_info).disk_source(
                connection_info, instance)

        dest_xml = live_volumes.destination_xml(
            guest.xml(migratable=True), bdms, disk_source)
        return {libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
                libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: dest_xml}

    def migrate(self, context, instance, dest, post_method, recover_method,
                migrate_data):
        guest = self._guest(instance)
        files = self._files(instance)
        block = bool(migrate_data.block_migration)
        uri = self.destination_uri(dest, migrate_data)
        guest_xml = guest.xml()
        # Without a disk to copy (only a read-only config drive besides
        # volumes) there is no block copy at all: libvirt would take an
        # empty disk list as "every writable disk", volumes included.
        copies = block and bool(local_targets(guest_xml, files.path))
        flags = self.flags(copies)
        params = self.params(guest_xml, files, block, migrate_data)
        try:
            live_ports.check_same_interfaces(migrate_data)
            params.update(self.volume_xml_params(guest, instance,
                                                 migrate_data))
            if block:
                self._send_uncopied_files(uri, guest_xml, files)
        except Exception as exc:
            # Nothing started: the guest stays here, nova rolls back the
            # destination.
            LOG.error('live migration of %s to %s cannot start: %s; it '
                      'stays here', instance.uuid, dest, exc)
            recover_method(context, instance, dest, migrate_data)
            return
        data_bytes = instance.flavor.memory_mb * units.Mi
        if copies:
            copied = set(uncopied_files(guest_xml, files.path))
            data_bytes += sum(
                os.stat(d.path).st_blocks * 512 for d in
                instance_disks.DiskSet.load(files).local_disks
                if d.source_type == 'file' and d.path not in copied)
        migration = migrate_data.migration
        job = live_monitor.LiveMigrationJob(
            guest, instance, migration, self.settings, data_bytes,
            completed_stats=lambda: self.host.completed_job(
                instance.uuid, timeout=COMPLETED_EVENT_WAIT))
        LOG.info('live migration of %s to %s (%s) starts: flags %#x, '
                 'disks %s', instance.uuid, dest,
                 connection.redact_uri(uri), flags,
                 params.get(libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS, []))
        self.jobs[instance.uuid] = job
        try:
            job.run(lambda: guest.migrate(uri, params, flags))
        except Exception as exc:
            del self.jobs[instance.uuid]
            if job.paused_guest:
                self.paused.add(instance.uuid)
            self._failed(context, instance, dest, recover_method,
                         migrate_data, job, exc)
            return
        del self.jobs[instance.uuid]
        LOG.info('live migration of %s to %s completed', instance.uuid,
                 dest)
        post_method(context, instance, dest, block, migrate_data)

    def _send_uncopied_files(self, uri, guest_xml, files):
        """Send the files the block copy leaves out, before the guest moves.

        The destination's QEMU opens them when the migration starts, at
        the paths the guest has here; preparing the destination made each
        one as an empty file of its size. They go through the destination's
        libvirtd, on the connection the migration uses; a failure stops
        the migration before it starts, and the rollback removes the
        destination's directory, copies included.
        """
        paths = uncopied_files(guest_xml, files.path)
        if not paths:
            return
        with peer_mod.opened(uri) as peer:
            for path in paths:
                peer.upload(path, files.path)

    def _failed(self, context, instance, dest, recover_method, migrate_data,
                job, exc):
        still_here = False
        try:
            still_here = self._guest(instance).is_active()
        except exception.InstanceNotFound:
            pass
        if job.post_copy or not still_here:
            # The guest left (post-copy began): the destination's copy may
            # be the only whole one. Nothing is rolled back.
            LOG.error('live migration of %s failed after the guest left '
                      'this host: %s', instance.uuid, exc)
            raise exc
        cancelled = job.aborted or (
            isinstance(exc, libvirt.libvirtError) and
            exc.get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED)
        if cancelled:
            LOG.info('live migration of %s was cancelled; it stays here',
                     instance.uuid)
            recover_method(context, instance, dest, migrate_data,
                           migration_status='cancelled')
        else:
            LOG.error('live migration of %s to %s failed: %s; it stays '
                      'here', instance.uuid, dest, exc)
            recover_method(context, instance, dest, migrate_data)

    def abort(self, instance):
        job = self.jobs.get(instance.uuid)
        if job is not None:
            job.abort()
        else:
            # Not ours (another worker), or not started: libvirt knows.
            self._guest(instance).abort_job()

    def force_complete(self, instance):
        job = self.jobs.get(instance.uuid)
        if job is None:
            raise exception.NovaException(
                'no live migration of %s runs on this host' % instance.uuid)
        job.request_force_complete()

    # -- 5. after ----------------------------------------------------------

    def rollback_source(self, instance):
        """Resume a guest that a forced completion paused here."""
        if instance.uuid not in self.paused:
            return
        self.paused.discard(instance.uuid)
        try:
            guest = self._guest(instance)
            guest.unpause()
        except Exception:
            LOG.exception('could not resume %s after its failed migration',
                          instance.uuid)

    def rollback_destination(self, instance, network_info,
                             block_device_info, destroy_disks, migrate_data):
        """Remove what preparing this host made; never a running guest.

        When this host's libvirt cannot be asked (its libvirtd is down,
        which may be why the migration failed), the ports and volume
        connections go now, since they need no libvirt, and the instance
        directory is marked for :meth:`finish_marked_rollbacks`: without
        libvirt nothing shows that no guest here uses those disks.
        """
        shared = migrate_data is not None and \
            'is_shared_instance_path' in migrate_data and \
            migrate_data.is_shared_instance_path
        files = self._files(instance)
        vifs = live_ports.destination_vifs(network_info, migrate_data)
        try:
            runs_here = self._guest_runs_here(instance.uuid)
        except Exception as exc:
            if not _unreachable(exc):
                raise
            # nova rolls back only a guest that still runs on the source,
            # so the ports and connections here serve nothing.
            self.vifs.unplug_all(instance, vifs)
            self._disconnect(block_device_info, instance)
            if destroy_disks and not shared and files.exists():
                live_leftovers.mark(files, str(exc))
                LOG.warning('libvirt on this host cannot be reached (%s): '
                            'the directory %s of %s, prepared for its '
                            'failed live migration, is removed when '
                            'libvirt answers again', exc, files.path,
                            instance.uuid)
            return
        if runs_here:
            # libvirt removes a failed incoming guest itself; one that
            # runs may be the guest's only copy (post-copy).
            LOG.error('%s runs on this host after a failed migration; '
                      'leaving it alone', instance.uuid)
            return
        self.vifs.unplug_all(instance, vifs)
        self._disconnect(block_device_info, instance)
        if destroy_disks and not shared:
            files.remove()

    def _guest_runs_here(self, uuid):
        """True if a guest of ``uuid`` runs here; a stopped one is undefined.

        Raises what libvirt raised when it cannot be asked.
        """
        try:
            guest = guest_mod.Guest(self.host.get_domain_by_uuid(uuid))
        except exception.InstanceNotFound:
            return False
        if guest.is_active():
            return True
        guest.undefine()
        return False

    def finish_marked_rollbacks(self):
        """Remove the directories rollbacks left until libvirt answered.

        Called whenever the driver's libvirt connection is (re)made, and
        from nova's periodic image cache pass. A directory goes only when
        libvirt has no domain of that instance: a guest still paused in an
        incoming migration (libvirt kills those when it starts again)
        keeps it until the next call; any other domain means the instance
        lives here now, and the marker is dropped instead. Returns the
        UUIDs whose directory was removed.
        """
        removed = []
        for uuid in live_leftovers.marked(self.instances_path):
            files = instance_files.InstanceFiles(self.instances_path, uuid)
            try:
                domain = self.host.get_domain_by_uuid(uuid)
            except exception.InstanceNotFound:
                domain = None
            except Exception as exc:
                if _unreachable(exc):
                    LOG.info('libvirt cannot be reached (%s): leftovers of '
                             'failed live migrations stay until it answers',
                             exc)
                    return removed
                LOG.exception('cannot look up %s', uuid)
                continue
            if domain is None:
                files.remove()
                removed.append(uuid)
                LOG.info('removed %s, left by the failed live migration of '
                         '%s while libvirt could not be reached',
                         files.path, uuid)
                continue
            try:
                arriving = _incoming(guest_mod.Guest(domain))
            except libvirt.libvirtError as exc:
                # Gone (or libvirt gone) since the look-up: next time.
                LOG.info('cannot read the state of %s: %s', uuid, exc)
                continue
            if arriving:
                LOG.info('%s is still arriving here; its leftovers are '
                         'removed later', uuid)
                continue
            LOG.error('a domain of %s is on this host: its directory %s, '
                      'marked by a live migration rollback, is kept',
                      uuid, files.path)
            live_leftovers.unmark(files)
        return removed

    def finish_destination(self, instance):
        """Make sure the guest that arrived is defined here for good."""
        guest = self._guest(instance)
        if not guest.is_persistent():
            self.host.define_domain(guest.xml(migratable=True))


def _unreachable(exc):
    """True if ``exc`` means this host's libvirt cannot be asked now."""
    return isinstance(exc, exception.HypervisorUnavailable) or \
        connection.is_connection_error(exc)


def _incoming(guest):
    """True if ``guest`` is paused in a migration (arriving, here)."""
    state, reason = guest.domain.state()
    return state == libvirt.VIR_DOMAIN_PAUSED and \
        reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION


def _instance_disks(guest_xml, instance_dir):
    """``(target, path, read_only, shareable)`` of the guest's own files.

    Those are its disks in its instance directory. Volumes are not there:
    they are connected on the destination, not copied.
    """
    root = etree.fromstring(guest_xml.encode() if isinstance(guest_xml, str)
                            else guest_xml)
    for disk in root.findall('./devices/disk'):
        source = disk.find('./source')
        target = disk.find('./target')
        if source is None or target is None:
            continue
        path = source.get('file')
        if path and os.path.dirname(path) == instance_dir:
            yield (target.get('dev'), path,
                   disk.find('./readonly') is not None,
                   disk.find('./shareable') is not None)


def local_targets(guest_xml, instance_dir):
    """Target names of the disks a block migration copies.

    QEMU's block copy refuses read-only disks (libvirt: "Cannot migrate
    empty or read-only disk"), and a shareable one is not the guest's
    alone: as in nova, both are left out.
    """
    return [target for target, _path, read_only, shareable in
            _instance_disks(guest_xml, instance_dir)
            if not (read_only or shareable)]


def uncopied_files(guest_xml, instance_dir):
    """Paths of the guest's files that the block migration cannot copy.

    An iso9660 config drive (a read-only CD-ROM) is one: the source sends
    it to the destination before the guest moves.
    """
    return [path for _target, path, read_only, shareable in
            _instance_disks(guest_xml, instance_dir)
            if read_only and not shareable]
