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

"""``PyVirtDriver``: nova's ComputeDriver interface, one thin method per call.

Each method delegates: guest design builds the XML (:mod:`design`),
:mod:`host` and :mod:`guest` talk to libvirt, :mod:`storage` prepares local
disks, :mod:`volume` connects and disconnects volumes, :mod:`network`
plugs and unplugs ports, :mod:`resources`
reports what the host offers.  No XML and no commands are written here,
and no libvirt domain is called directly: ``Guest`` does that.
"""

import libvirt
from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import excutils
from oslo_utils import timeutils

from nova.compute import power_state
from nova.compute import task_states
from nova.console import type as console_type
from nova import context as nova_context
from nova import exception
from nova.image import glance
from nova.network import neutron
from nova import objects
from nova.virt import driver
from nova.virt import hardware
from nova.virt import node as virt_node

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt.design import cpu as design_cpu
from nova_pyvirt.design import domain_builder
from nova_pyvirt.design import machine as design_machine
from nova_pyvirt.design import request
from nova_pyvirt.design import validation
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import guest as guest_mod
from nova_pyvirt.hypervisor import host as host_mod
from nova_pyvirt.migration import cold as cold_migration
from nova_pyvirt.migration import live as live_migration
from nova_pyvirt.migration import live_ports
from nova_pyvirt.network import events as network_events
from nova_pyvirt.network import hotplug
from nova_pyvirt.network import vifs as network_vifs
from nova_pyvirt.report import resources
from nova_pyvirt.report import traits
from nova_pyvirt.storage import cache_manager
from nova_pyvirt.storage import config_drive
from nova_pyvirt.storage import instance_disks
from nova_pyvirt.storage import instance_files
from nova_pyvirt.storage import snapshots
from nova_pyvirt.volume import attachment

CONF = pyvirt_conf.CONF
LOG = logging.getLogger(__name__)

MIN_LIBVIRT_VERSION = (8, 0, 0)
MIN_QEMU_VERSION = (6, 2, 0)
MACHINE_TYPE_KEY = 'image_hw_machine_type'
AUTO_DISABLE_PREFIX = 'AUTO: '
#: Power states in which resume_state_on_host_boot leaves a guest alone.
_LEFT_AS_IS_AT_HOST_BOOT = (power_state.RUNNING, power_state.PAUSED,
                            power_state.SUSPENDED, power_state.NOSTATE)
# How long the power states read by get_num_instances/list_instance_uuids
# answer get_info(use_cache=True). nova's power-state sync lists the
# domains and then asks get_info of every instance of its database right
# away: one libvirt call then serves them all. Events and the driver's own
# operations on a guest drop its entry sooner; nova asks with
# use_cache=False whenever it must know the state now.
POWER_STATE_MAX_AGE = 10.0


def _version_tuple(number):
    return (number // 1000000, number // 1000 % 1000, number % 1000)


class PyVirtDriver(driver.ComputeDriver):
    """Runs nova instances as libvirt/QEMU guests."""

    capabilities = dict(driver.ComputeDriver.capabilities)
    capabilities.update({
        'has_imagecache': True,
        # nova-compute refuses os-interface attach (HTTP 400) before it
        # calls attach_interface unless the driver claims it. Tagged
        # attach stays unclaimed: no device metadata reaches the guest.
        'supports_attach_interface': True,
        'supports_extend_volume': True,
        'supports_image_type_qcow2': True,
        'supports_image_type_raw': True,
    })

    def __init__(self, virtapi, read_only=False, image_api=None):
        super(PyVirtDriver, self).__init__(virtapi)
        # Per host, read once (two drivers in one process may differ).
        self._virt_type = CONF.pyvirt.virt_type
        uri = CONF.pyvirt.connection_uri or connection.default_uri(
            self._virt_type)
        self._host = host_mod.Host(
            uri, lifecycle_event_handler=self.emit_event,
            conn_event_handler=self._connection_changed, read_only=read_only)
        self._image_api = image_api or glance.API()
        self._network_api = neutron.API()
        self._connection_was_lost = False
        self._host_ip = CONF.my_ip
        self._host_name = CONF.host
        self._volumes = attachment.Volumes(CONF, self._host)
        self._vifs = network_vifs.Vifs()
        self._hotplug = hotplug.Hotplug(CONF, self._host, self._vifs)
        self._disks = instance_disks.InstanceDisks(CONF)
        self._image_cache_manager = cache_manager.ImageCacheManager(CONF)
        self._migration = cold_migration.ColdMigration(CONF, self._disks)
        self._live = live_migration.LiveMigration(
            CONF, self._host, self._disks, self._volumes, self._vifs,
            self._image_api)

    # -- host ----------------------------------------------------------

    def init_host(self, host):
        self._host.initialize()
        self._check_versions()
        facts = self._host.host_facts()
        arch = facts.arch
        virt_type = self._virt_type
        machine = design_machine.default(CONF, facts.capabilities, arch,
                                         virt_type)
        design_cpu.validate_cpu_options(
            CONF, facts.domain_capabilities(arch, machine, virt_type),
            facts.known_cpu_features, virt_type)

    def cleanup_host(self, host):
        self._host.cleanup()

    def _check_versions(self):
        libvirt_version = _version_tuple(self._host.get_libversion())
        if libvirt_version < MIN_LIBVIRT_VERSION:
            raise exception.InternalError(
                'libvirt %s is older than the minimum %s' % (
                    libvirt_version, MIN_LIBVIRT_VERSION))
        if self._virt_type not in design_machine.QEMU_VIRT_TYPES:
            return   # the test driver's "hypervisor" is libvirt itself
        qemu_version = _version_tuple(self._host.get_version())
        if qemu_version < MIN_QEMU_VERSION:
            raise exception.InternalError(
                'QEMU %s is older than the minimum %s' % (
                    qemu_version, MIN_QEMU_VERSION))

    def _connection_changed(self, enabled, reason):
        """Disable the compute service while libvirt is unreachable.

        A connection that is (re)made also finishes the live migration
        rollbacks that had to wait for libvirt.
        """
        if enabled:
            LOG.info('libvirt connection to %s is up', self._host.uri)
            try:
                self._live.finish_marked_rollbacks()
            except Exception:
                LOG.exception('finishing live migration rollbacks failed')
            if not self._connection_was_lost:
                return   # the first connection: nothing was disabled
        else:
            LOG.warning('libvirt connection to %s lost: %s', self._host.uri,
                        reason)
            self._connection_was_lost = True
        ctx = nova_context.get_admin_context()
        try:
            service = objects.Service.get_by_compute_host(ctx,
                                                          self._host_name)
        except Exception as exc:
            # Outside nova-compute (the demo, tools) there is no service.
            LOG.log(logging.INFO if enabled else logging.WARNING,
                    'cannot update compute service status: %s', exc)
            return
        if enabled and service.disabled and (
                service.disabled_reason or '').startswith(
                AUTO_DISABLE_PREFIX):
            service.disabled = False
            service.disabled_reason = None
            service.save()
        elif not enabled and not service.disabled:
            service.disabled = True
            service.disabled_reason = AUTO_DISABLE_PREFIX + str(reason)
            service.save()

    # -- lifecycle -----------------------------------------------------

    def _files(self, instance):
        return instance_files.InstanceFiles(self._disks.instances_path,
                                            instance.uuid)

    def _guest(self, instance):
        # Whatever the caller does next may change the guest's state.
        self._host.forget_state(instance.uuid)
        return guest_mod.Guest(self._host.get_guest(instance))

    @staticmethod
    def _guest_request(instance, image_meta, network_info, disks, volumes):
        """What design reads: the instance, its disks, volumes and ports."""
        return request.GuestRequest(
            instance, instance.flavor, image_meta, disks.files.path,
            local_disks=list(disks.local_disks), volumes=list(volumes),
            network_info=list(network_info or []),
            kernel_path=disks.kernel_path, ramdisk_path=disks.ramdisk_path,
            console_log=disks.files.console_log)

    def _validate(self, instance, image_meta, network_info,
                  block_device_info, files):
        """Refuse what design would refuse, before anything is created.

        The request is the one design will get, less what only making
        things tells: disk formats and volume sources.
        """
        local_disks = self._disks.planned(instance, block_device_info,
                                          files)
        drive = config_drive.planned(instance, files)
        if drive is not None:
            local_disks.append(drive)
        planned = request.GuestRequest(
            instance, instance.flavor, image_meta, files.path,
            local_disks=local_disks,
            volumes=attachment.planned_volumes(block_device_info),
            network_info=list(network_info or []),
            kernel_path=files.file('kernel') if instance.kernel_id else None,
            ramdisk_path=files.file('ramdisk') if instance.ramdisk_id
            else None,
            console_log=files.console_log)
        validation.validate(
            planned, CONF, self._host.host_facts(),
            persisted_machine_type=instance.system_metadata.get(
                MACHINE_TYPE_KEY),
            virt_type=self._virt_type)

    def _design(self, instance, image_meta, network_info, disks, volumes):
        persisted = instance.system_metadata.get(MACHINE_TYPE_KEY)
        design = domain_builder.design_guest(
            self._guest_request(instance, image_meta, network_info, disks,
                                volumes),
            CONF, self._host.host_facts(), persisted_machine_type=persisted,
            virt_type=self._virt_type)
        if design.machine_type:
            instance.system_metadata[MACHINE_TYPE_KEY] = design.machine_type
        return design

    def _start_guest(self, instance, image_meta, network_info, disks,
                     volumes, power_on=True, remove_on_failure=False,
                     paused=False):
        """Design the guest, define it and, if ``power_on``, launch it.

        ``paused``: launched paused (its ports are not wired up yet).

        ``disks`` are the instance's local disks (a :class:`DiskSet`),
        ``volumes`` its connected volumes.  When a step fails the error is
        re-raised as it came; with ``remove_on_failure`` a domain defined
        here is destroyed and undefined first (a new instance leaves no
        half-made domain behind), without it the domain stays defined as
        the instance's (reboot, migration: the instance still lives here).
        Disks and volumes are the caller's to undo.
        """
        domain = None
        try:
            design = self._design(instance, image_meta, network_info, disks,
                                  volumes)
            domain = self._host.define_domain(design.domain.to_xml())
            if power_on:
                guest_mod.Guest(domain).launch(paused=paused)
        except Exception:
            with excutils.save_and_reraise_exception():
                if remove_on_failure:
                    self._remove_guest(domain)

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        # A port this driver cannot plug fails the spawn before anything
        # is created.
        network_vifs.check_supported(network_info)
        config_drive.check_injection(instance, injected_files)
        files = self._files(instance)
        self._validate(instance, image_meta, network_info,
                       block_device_info, files)
        if not files.create():
            raise exception.InstanceExists(name=instance.name)
        plugged = []
        try:
            disks = self._disks.create(context, instance, image_meta,
                                       block_device_info, self._image_api,
                                       files)
            drive = config_drive.create(instance, files, injected_files,
                                        admin_password, network_info)
            if drive is not None:
                disks.add(drive)
            volumes = self._volumes.connect_all(block_device_info, instance)
            self._plug_and_start(instance, image_meta, network_info, disks,
                                 volumes, power_on, plugged)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('spawn of %s failed; removing what it created',
                          instance.uuid)
                self._vifs.unplug_all(instance, plugged)
                self._volumes.disconnect_all(block_device_info, instance)
                self._disks.delete(instance, files)
        LOG.info('instance %s spawned', instance.uuid)

    def _destroy_running(self, instance):
        """Destroy the instance's guest if it runs; none is fine."""
        try:
            guest = self._guest(instance)
            if guest.is_active():
                guest.destroy()
        except exception.InstanceNotFound:
            pass

    def _remove_guest(self, domain):
        if domain is None:
            return
        guest = guest_mod.Guest(domain)
        try:
            if guest.is_active():
                guest.destroy()
            guest.undefine()
        except Exception:
            LOG.exception('could not remove domain %s', guest.uuid)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        self._destroy_running(instance)
        self.cleanup(context, instance, network_info, block_device_info,
                     destroy_disks, destroy_secrets=destroy_secrets)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        try:
            self._guest(instance).undefine()
        except exception.InstanceNotFound:
            pass
        if destroy_vifs:
            self._vifs.unplug_all(instance, network_info)
        self._volumes.disconnect_all(block_device_info, instance)
        if destroy_disks:
            self._disks.delete(instance, self._files(instance))

    def _hard_reboot(self, context, instance, network_info,
                     block_device_info=None):
        # The ports stay plugged: destroying the domain leaves the hybrid
        # bridge and a tap port's device in place, and libvirt puts a
        # direct OVS port back on the bridge when the guest starts.
        self._destroy_running(instance)
        disks = instance_disks.DiskSet.load(self._files(instance))
        volumes = self._volumes.connect_all(block_device_info, instance)
        self._start_guest(instance, instance.image_meta, network_info, disks,
                          volumes)

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        if reboot_type == 'SOFT':
            guest = self._guest(instance)
            timeout = (CONF.reboot_timeout or
                       CONF.pyvirt.wait_soft_reboot_seconds)
            if guest.is_active() and guest.shutdown_gracefully(
                    timeout, timeout):
                guest.launch()
                return
            LOG.warning('instance %s did not shut down within %d s; '
                        'rebooting it hard', instance.uuid, timeout)
        self._hard_reboot(context, instance, network_info, block_device_info)

    def poll_rebooting_instances(self, timeout, instances):
        """Nothing to do: a reboot here ends before nova's call returns.

        nova-compute lists instances whose task state has said "rebooting"
        for longer than ``[DEFAULT] reboot_timeout``. :meth:`reboot` is
        synchronous, as in nova's libvirt driver (whose method does
        nothing either): an instance listed is either still in a soft
        reboot, which itself waits up to ``reboot_timeout`` before it
        reboots hard, or was left so by a compute service that stopped
        mid-reboot, which nova-compute settles at its next start
        (``ComputeManager._init_instance`` reboots it again, or clears the
        task state of a guest that runs). Rebooting it here as well would
        race the reboot under way.
        """
        for instance in instances:
            LOG.debug('instance %s has been rebooting for more than %d s; '
                      'its reboot is still running or is settled when '
                      'nova-compute restarts', instance.uuid, timeout)

    def power_off(self, instance, timeout=0, retry_interval=0):
        guest = self._guest(instance)
        if timeout and guest.shutdown_gracefully(timeout, retry_interval):
            return
        guest.destroy()

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        self._hard_reboot(context, instance, network_info, block_device_info)

    def resume_state_on_host_boot(self, context, instance, network_info,
                                  share_info, block_device_info=None):
        # As nova's libvirt driver: a guest that runs, or that someone
        # paused or suspended on purpose, is left as it is; only one that
        # is not up (the host rebooted under it) is started again.
        try:
            if (self._guest(instance).power_state() in
                    _LEFT_AS_IS_AT_HOST_BOOT):
                return
        except exception.InstanceNotFound:
            pass
        self._hard_reboot(context, instance, network_info, block_device_info)

    # -- ports ---------------------------------------------------------

    def _plug_and_start(self, instance, image_meta, network_info, disks,
                        volumes, power_on, plugged):
        """Plug a new guest's ports, start it once Neutron wired them.

        As nova's libvirt driver: the events are registered for before the
        ports are plugged, the guest is started paused and only resumed
        once every port is reported plugged (see
        :mod:`nova_pyvirt.network.events`). The ports plugged are added to
        ``plugged`` as soon as they are, for the caller to unplug should
        anything fail; a domain defined here is removed on any failure.
        """
        can_pause = (power_on and
                     self._virt_type in design_machine.QEMU_VIRT_TYPES)
        events = network_events.expected_events(CONF, network_info or [],
                                                can_pause)
        try:
            with network_events.wait_for_plugged(self.virtapi, CONF,
                                                 instance, events):
                # On a failure plug_all leaves none of them plugged.
                plugged.extend(self._vifs.plug_all(instance, network_info,
                                                   image_meta))
                self._start_guest(instance, image_meta, network_info, disks,
                                  volumes, power_on, remove_on_failure=True,
                                  paused=bool(events))
            if events:
                self._guest(instance).unpause()
        except Exception:
            with excutils.save_and_reraise_exception():
                try:
                    domain = self._host.get_guest(instance)
                except exception.InstanceNotFound:
                    domain = None   # never defined, or removed already
                self._remove_guest(domain)

    def plug_vifs(self, instance, network_info):
        # nova-compute calls this at startup for every instance of the host,
        # whose ports may be gone after a host reboot: plugging is
        # idempotent and unplugs nothing an instance already had.
        if not network_info:
            # instance.image_meta is rebuilt from the system metadata on
            # every read: not worth it, a thousand times, for no port.
            return
        self._vifs.plug_all(instance, network_info, instance.image_meta,
                            rollback=False)

    def unplug_vifs(self, instance, network_info):
        self._vifs.unplug_all(instance, network_info)

    def attach_interface(self, context, instance, image_meta, vif):
        guest = self._guest(instance)
        definition = guest.definition()
        domain_caps = self._host.get_domain_capabilities(
            definition.os.arch, definition.os.machine, self._virt_type)
        self._hotplug.attach(guest, instance, image_meta, vif, domain_caps)

    def detach_interface(self, context, instance, vif):
        self._hotplug.detach(self._guest(instance), instance, vif,
                             CONF.pyvirt.live_device_detach_timeout)

    def pause(self, instance):
        self._guest(instance).pause()

    def unpause(self, instance):
        self._guest(instance).unpause()

    def suspend(self, context, instance):
        self._guest(instance).managed_save()

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        self._guest(instance).launch()

    def snapshot(self, context, instance, image_id, update_task_state):
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        guest = self._guest(instance)
        disks = instance_disks.DiskSet.load(self._files(instance))
        with snapshots.root_disk_snapshot(guest, disks.root,
                                          self._files(instance)) as image:
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD)
            snapshots.upload(context, self._image_api, image_id, instance,
                             image)

    # -- cold migration and resize ------------------------------------------

    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        files = self._files(instance)
        disks = instance_disks.DiskSet.load(files)
        cold_migration.check_flavor(instance, disks, flavor)
        was_running = self._guest(instance).is_active()
        self.power_off(instance, timeout, retry_interval)
        self._volumes.disconnect_all(block_device_info, instance)
        try:
            disk_info = self._migration.send(instance, dest, files, disks)
        except Exception as exc:
            # send() put the source directory back and removed the partial
            # copy: the instance is whole here, as it was.
            self._resume_on_source(context, instance, network_info,
                                   block_device_info, was_running, exc)
            # nova-compute sets the instance back to its state before the
            # resize, records the cause as the instance's fault and
            # re-raises it (ComputeManager._error_out_instance_on_exception).
            raise exception.InstanceFaultRollback(inner_exception=exc)
        # The ports go once the files went (a failed copy keeps the
        # instance startable here, ports and all); the destination plugs
        # them again, and so does a revert here.
        self._vifs.unplug_all(instance, network_info)
        return disk_info

    def _resume_on_source(self, context, instance, network_info,
                          block_device_info, was_running, cause):
        """Reconnect the volumes and, if it ran, start the guest again.

        If that fails too, the copy's error is raised as it came (not as a
        rollback): nova then puts the instance in ERROR rather than
        claiming a state the guest is not in.
        """
        LOG.info('the copy of %s failed; %s it on this host', instance.uuid,
                 'starting' if was_running else 'reconnecting the volumes of')
        try:
            if was_running:
                self._hard_reboot(context, instance, network_info,
                                  block_device_info)
            else:
                self._volumes.connect_all(block_device_info, instance)
        except Exception:
            LOG.exception('could not bring %s back on this host after its '
                          'copy failed', instance.uuid)
            raise cause from None

    def finish_migration(self, context, migration, instance, disk_info,
                         network_info, image_meta, resize_instance,
                         allocations, block_device_info=None, power_on=True,
                         share_info=None):
        # The new flavor on this host: refused before volumes are
        # connected and disks resized.
        self._validate(instance, image_meta, network_info,
                       block_device_info, self._files(instance))
        disks = instance_disks.DiskSet.load(self._files(instance))
        volumes = self._volumes.connect_all(block_device_info, instance)
        self._migration.prepare_disks(context, instance, self._image_api,
                                      migration.source_compute, disks,
                                      resize_instance)
        self._start_with_ports(instance, image_meta, network_info, disks,
                               volumes, power_on)

    def _start_with_ports(self, instance, image_meta, network_info, disks,
                          volumes, power_on, wait_for_ports=False):
        """Plug the ports of a moved instance, then start it here.

        With ``wait_for_ports`` (a revert) the guest starts paused and runs
        once Neutron reported its ports plugged, as in spawn and as nova's
        libvirt driver does on a revert: the source's agent wires the
        ports again when they come back on its switch, and Neutron reports
        each that is down. Without it (the destination of a migration)
        nothing waits, as nova's libvirt driver, which starts a moved
        guest with its ports "already plugged": the unplug on the source
        may go unnoticed by Neutron, which then sends no event.

        A failure unplugs the ports plugged here and stops the guest; its
        domain stays defined (the instance lives here).
        """
        can_pause = (wait_for_ports and power_on and
                     self._virt_type in design_machine.QEMU_VIRT_TYPES)
        events = network_events.expected_events(CONF, network_info or [],
                                                can_pause)
        plugged = []
        try:
            with network_events.wait_for_plugged(self.virtapi, CONF,
                                                 instance, events):
                plugged.extend(self._vifs.plug_all(instance, network_info,
                                                   image_meta))
                self._start_guest(instance, image_meta, network_info, disks,
                                  volumes, power_on, paused=bool(events))
            if events:
                self._guest(instance).unpause()
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('starting %s failed; unplugging its ports',
                          instance.uuid)
                self._stop_guest(instance)
                self._vifs.unplug_all(instance, plugged)

    def _stop_guest(self, instance):
        """Destroy the instance's guest if it runs (paused, waiting)."""
        try:
            self._destroy_running(instance)
        except Exception:
            LOG.exception('could not stop the guest of %s', instance.uuid)

    def confirm_migration(self, context, migration, instance, network_info):
        # The source's domain stays defined (stopped) until now, so a revert
        # finds it; confirming forgets it and the source copy.
        try:
            guest = self._guest(instance)
            if instance.host != self._host_name or not guest.is_active():
                guest.undefine()
        except exception.InstanceNotFound:
            pass
        if instance.host != self._host_name:
            # Unplugged after the copy already; whatever a failed unplug
            # left (a hybrid bridge, a tap) goes now.
            self._vifs.unplug_all(instance, network_info)
        self._migration.confirm(self._files(instance))

    def finish_revert_migration(self, context, instance, network_info,
                                migration, block_device_info=None,
                                power_on=True, share_info=None):
        files = self._files(instance)
        self._migration.revert(files)
        disks = instance_disks.DiskSet.load(files)
        volumes = self._volumes.connect_all(block_device_info, instance)
        self._start_with_ports(instance, instance.image_meta, network_info,
                               disks, volumes, power_on, wait_for_ports=True)

    # -- live migration ------------------------------------------------------
    # Each call delegates to nova_pyvirt.migration.live, which documents
    # the steps and the host each one runs on.

    def check_can_live_migrate_destination(self, context, instance,
                                           src_compute_info, dst_compute_info,
                                           block_migration=False,
                                           disk_over_commit=False):
        data = self._live.check_destination(instance, block_migration,
                                            disk_over_commit)
        live_ports.offer_delegation(data, instance, self._network_api,
                                    context)
        return data

    def cleanup_live_migration_destination_check(self, context,
                                                 dest_check_data):
        self._live.cleanup_destination_check(dest_check_data)

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data, block_device_info=None):
        return self._live.check_source(instance, dest_check_data,
                                       block_device_info)

    def get_instance_disk_info(self, instance, block_device_info=None):
        disks = instance_disks.DiskSet.load(self._files(instance))
        return jsonutils.dumps(live_migration.local_disk_entries(disks))

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        return self._live.prepare_destination(
            context, instance, block_device_info, network_info, disk_info,
            migrate_data)

    def live_migration(self, context, instance, dest,
                       post_method, recover_method, block_migration=False,
                       migrate_data=None):
        self._live.migrate(context, instance, dest, post_method,
                           recover_method, migrate_data)

    def live_migration_abort(self, instance):
        self._live.abort(instance)

    def live_migration_force_complete(self, instance):
        self._live.force_complete(instance)

    def rollback_live_migration_at_source(self, context, instance,
                                          migrate_data):
        self._live.rollback_source(instance)

    def rollback_live_migration_at_destination(self, context, instance,
                                               network_info,
                                               block_device_info,
                                               destroy_disks=True,
                                               migrate_data=None):
        self._live.rollback_destination(instance, network_info,
                                        block_device_info, destroy_disks,
                                        migrate_data)

    def post_live_migration(self, context, instance, block_device_info,
                            migrate_data=None):
        # The guest runs on the destination: this host's volume
        # connections go (the destination made its own).
        self._volumes.disconnect_all(block_device_info, instance)

    def post_live_migration_at_source(self, context, instance, network_info):
        self._vifs.unplug_all(instance, network_info)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        self._live.finish_destination(instance)

    # -- volumes ---------------------------------------------------------

    def attach_volume(self, context, connection_info, instance, mountpoint,
                      disk_bus=None, device_type=None, encryption=None):
        if encryption:
            raise exception.VolumeEncryptionNotSupported(
                volume_type=connection_info.get('driver_volume_type'),
                volume_id=attachment.volume_id(connection_info))
        guest = self._guest(instance)
        spec = self._volumes.connect(connection_info, instance, mountpoint,
                                     disk_bus, device_type)
        try:
            definition = guest.definition()
            domain_caps = self._host.get_domain_capabilities(
                definition.os.arch, definition.os.machine, self._virt_type)
            self._volumes.attach(guest, spec, domain_caps,
                                 instance.image_meta)
        except Exception as exc:
            LOG.error('attaching volume %s to %s failed; disconnecting it',
                      spec.volume_id, instance.uuid)
            self._volumes.disconnect(connection_info, instance)
            if isinstance(exc, libvirt.libvirtError):
                raise exception.VolumeAttachFailed(
                    volume_id=spec.volume_id, reason=exc.get_error_message())
            raise

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        try:
            guest = self._guest(instance)
        except exception.InstanceNotFound:
            guest = None
        if guest is not None:
            self._volumes.detach(guest, attachment.volume_id(connection_info),
                                 CONF.pyvirt.live_device_detach_timeout)
        self._volumes.disconnect(connection_info, instance)

    def extend_volume(self, context, connection_info, instance,
                      requested_size):
        vol_id = attachment.volume_id(connection_info)
        new_size = self._volumes.driver(connection_info).extend(
            connection_info, instance, requested_size)
        guest = self._guest(instance)
        disk = self._volumes.find_disk(guest, vol_id)
        if disk is not None and guest.is_active():
            guest.resize_block_device(disk.target_dev, new_size)

    def get_volume_connector(self, instance):
        return resources.volume_connector(CONF)

    # -- state and consoles ----------------------------------------------

    def get_info(self, instance, use_cache=True):
        if use_cache:
            known = self._host.recent_state(instance.uuid,
                                            POWER_STATE_MAX_AGE)
            if known is not None:
                return hardware.InstanceInfo(
                    state=guest_mod.POWER_STATE.get(known[0],
                                                    power_state.NOSTATE),
                    internal_id=known[1])
        guest = self._guest(instance)
        return hardware.InstanceInfo(state=guest.power_state(),
                                     internal_id=guest.id)

    def get_num_instances(self):
        # nova's power-state sync calls this first, then get_info of every
        # instance: the one call here reads every domain's state.
        return len(self._host.domain_states())

    def instance_exists(self, instance):
        try:
            self._host.get_guest(instance)
        except exception.InstanceNotFound:
            return False
        return True

    def list_instances(self):
        return self._host.domain_names()

    def list_instance_uuids(self):
        return self._host.domain_uuids()

    def get_console_output(self, context, instance):
        self._host.get_guest(instance)
        return self._files(instance).console_tail()

    def get_vnc_console(self, context, instance):
        port = self._guest(instance).graphics_port('vnc')
        if port is None:
            raise exception.ConsoleTypeUnavailable(console_type='vnc')
        return console_type.ConsoleVNC(
            host=CONF.vnc.server_proxyclient_address, port=port)

    def get_diagnostics(self, instance):
        return self._guest(instance).legacy_diagnostics()

    def get_instance_diagnostics(self, instance):
        uptime = None
        if instance.obj_attr_is_set('launched_at') and instance.launched_at:
            uptime = int(timeutils.delta_seconds(
                timeutils.normalize_time(instance.launched_at),
                timeutils.utcnow()))
        return self._guest(instance).diagnostics(
            uptime=uptime, virt_type=self._virt_type)

    # -- resources -------------------------------------------------------

    def get_host_ip_addr(self):
        return self._host_ip

    def get_host_uptime(self):
        return resources.host_uptime()

    def get_available_nodes(self, refresh=False):
        return [self._host.get_hostname()]

    def get_nodenames_by_uuid(self, refresh=False):
        return {virt_node.get_local_node_uuid(): self._host.get_hostname()}

    def get_available_resource(self, nodename):
        return resources.available_resource(
            self._host, CONF, self._virt_type, self._disks.usage())

    def manage_image_cache(self, context, all_instances):
        # nova's periodic pass over local storage also retries what live
        # migration rollbacks left for libvirt to confirm (a guest that
        # was still arriving when the connection came back), before the
        # cache counts the bases those directories use.
        try:
            self._live.finish_marked_rollbacks()
        except Exception:
            LOG.exception('finishing live migration rollbacks failed')
        self._image_cache_manager.update(context, all_instances)

    def update_provider_tree(self, provider_tree, nodename,
                             allocations=None):
        # The inventory needs the totals only; the usage figures of
        # get_available_resource (which nova-compute has just called) are
        # not read again.
        resource = resources.inventory_totals(self._host,
                                              self._disks.capacity())
        provider_tree.update_inventory(nodename,
                                       resources.inventory(resource, CONF))
        reported = traits.host_traits(self._host.host_facts(),
                                      self._virt_type)
        current = provider_tree.data(nodename).traits
        provider_tree.update_traits(
            nodename, traits.reconcile(current, reported))
