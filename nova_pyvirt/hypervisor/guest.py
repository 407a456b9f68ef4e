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

"""One running or defined guest: power operations, state and statistics.

A thin wrapper over a libvirt ``virDomain``; waiting loops are bounded and
poll the real domain state, so every operation either reaches the state it
promises or raises with the state it saw.
"""

import time

import libvirt
from oslo_log import log as logging
from oslo_utils import units

from nova.compute import power_state
from nova import exception
from nova.objects import diagnostics as diagnostics_obj

from nova_pyvirt import xml

LOG = logging.getLogger(__name__)

POWER_STATE = {
    libvirt.VIR_DOMAIN_NOSTATE: power_state.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: power_state.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: power_state.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: power_state.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: power_state.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: power_state.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: power_state.SUSPENDED,
}


class Guest(object):

    def __init__(self, domain):
        self.domain = domain

    @property
    def uuid(self):
        return self.domain.UUIDString()

    @property
    def name(self):
        return self.domain.name()

    @property
    def id(self):
        """libvirt's id of the running domain (-1 when it is off)."""
        return self.domain.ID()

    def power_state(self):
        state, _reason = self.domain.state()
        return POWER_STATE.get(state, power_state.NOSTATE)

    def is_active(self):
        return bool(self.domain.isActive())

    def definition(self, secure=False):
        """The domain's XML as a :class:`nova_pyvirt.xml.Domain`."""
        flags = libvirt.VIR_DOMAIN_XML_SECURE if secure else 0
        return xml.Domain.from_xml(self.domain.XMLDesc(flags))

    def xml(self, migratable=False):
        """The domain's XML text (as another host would define it)."""
        flags = libvirt.VIR_DOMAIN_XML_MIGRATABLE if migratable else 0
        return self.domain.XMLDesc(flags)

    def is_persistent(self):
        return bool(self.domain.isPersistent())

    @staticmethod
    def _wait(predicate, timeout, interval=0.2):
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def inactive(self):
        """The persistent definition (what the next start will use)."""
        return xml.Domain.from_xml(self.domain.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE))

    def wait_for_state(self, wanted, timeout):
        """Poll until the power state is one of ``wanted``; True if it was."""
        return self._wait(lambda: self.power_state() in wanted, timeout)

    def wait_until_off(self, timeout):
        """True once the domain is inactive (not merely shutting down)."""
        return self._wait(lambda: not self.is_active(), timeout)

    def launch(self, paused=False, timeout=60):
        """Start the defined domain and wait until it runs (or is paused)."""
        flags = libvirt.VIR_DOMAIN_START_PAUSED if paused else 0
        self.domain.createWithFlags(flags)
        wanted = (power_state.PAUSED,) if paused else (power_state.RUNNING,)
        if not self.wait_for_state(wanted, timeout):
            raise exception.InstanceNotRunning(instance_id=self.uuid)

    def destroy(self):
        """Stop the guest at once; a guest already off is left alone."""
        try:
            self.domain.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                raise
            if self.is_active():
                raise
        if not self.wait_until_off(30):
            raise exception.InstancePowerOffFailure(
                reason='domain %s still active after destroy' % self.uuid)

    def shutdown_gracefully(self, timeout, retry_interval):
        """ACPI shutdown, repeated every ``retry_interval``; True if off."""
        deadline = time.monotonic() + timeout
        retry_interval = max(1, retry_interval or timeout or 1)
        while time.monotonic() < deadline:
            if not self.is_active():
                return True
            try:
                self.domain.shutdown()
            except libvirt.libvirtError as exc:
                if self.is_active():
                    LOG.debug('shutdown of %s refused: %s', self.uuid, exc)
            wait = min(retry_interval, max(0, deadline - time.monotonic()))
            if self.wait_until_off(wait):
                return True
        return not self.is_active()

    def undefine(self):
        """Forget the domain, its managed save image and its UEFI NVRAM.

        The NVRAM flag is only given to a domain that has UEFI firmware:
        libvirt drivers without NVRAM support (the test driver) refuse it.
        """
        flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        try:
            os_ = self.definition().os
            if os_.firmware == 'efi' or os_.loader or os_.nvram:
                flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            self.domain.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise

    def attach_device(self, device_xml, live):
        """Add a device to the definition (and the running guest if live)."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if live:
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        self.domain.attachDeviceFlags(device_xml, flags)

    def detach_device(self, device_xml, live):
        """Remove a device from the running guest, or from the definition.

        ``live`` removes it from the running guest only, otherwise from the
        persistent definition only: a live detach merely asks the guest to
        let go and completes later (the caller waits), so the two are
        separate calls.
        """
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE if live else \
            libvirt.VIR_DOMAIN_AFFECT_CONFIG
        self.domain.detachDeviceFlags(device_xml, flags)

    def resize_block_device(self, target_dev, size_bytes):
        """Tell the running guest its disk ``target_dev`` grew."""
        self.domain.blockResize(target_dev, size_bytes,
                                libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

    # -- live migration (the source's side) ---------------------------------

    def migrate(self, dest_uri, params, flags):
        """Peer-to-peer migration to ``dest_uri``; returns when it ended.

        The source's libvirtd opens ``dest_uri`` itself (``flags`` must hold
        ``VIR_MIGRATE_PEER2PEER``), so the caller needs no connection to
        the destination. Raises ``libvirtError`` when the migration failed
        or was aborted; the guest then still runs here (pre-copy).
        """
        self.domain.migrateToURI3(dest_uri, params, flags)

    def job_stats(self):
        """Statistics of the domain's current job (``{}`` when none).

        ``type`` is a ``VIR_DOMAIN_JOB_*`` constant; the byte counters are
        present while a migration runs.
        """
        try:
            return self.domain.jobStats(0) or {}
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN,
                                        libvirt.VIR_ERR_OPERATION_INVALID):
                # The domain left (migrated) or stopped: no job here.
                return {}
            raise

    def abort_job(self):
        self.domain.abortJob()

    def migrate_start_post_copy(self):
        self.domain.migrateStartPostCopy(0)

    def migrate_set_max_downtime(self, milliseconds):
        self.domain.migrateSetMaxDowntime(milliseconds, 0)

    def pause(self):
        self.domain.suspend()

    def unpause(self):
        self.domain.resume()

    def managed_save(self):
        self.domain.managedSave(0)

    def has_managed_save(self):
        return bool(self.domain.hasManagedSaveImage(0))

    def graphics_port(self, kind='vnc'):
        for graphics in self.definition().graphics:
            if graphics.type == kind and graphics.port and graphics.port > 0:
                return graphics.port
        return None

    def diagnostics(self, uptime=None, config_drive=False, virt_type=None):
        """Nova's :class:`Diagnostics` from libvirt's CPU/disk/NIC stats."""
        state, max_mem_kib, mem_kib, _vcpus, _cpu_time = self.domain.info()
        diags = diagnostics_obj.Diagnostics(
            state=POWER_STATE.get(state, power_state.NOSTATE),
            driver='libvirt', hypervisor=virt_type, hypervisor_os='linux',
            uptime=uptime, config_drive=config_drive)
        diags.memory_details = diagnostics_obj.MemoryDiagnostics(
            maximum=max_mem_kib * units.Ki // units.Mi,
            used=mem_kib * units.Ki // units.Mi)
        definition = self.definition()
        if not self.is_active():
            return diags
        for vcpu in self.domain.vcpus()[0]:
            diags.add_cpu(id=vcpu[0], time=vcpu[2])
        for disk in definition.disks:
            stats = self.domain.blockStats(disk.target_dev)
            diags.add_disk(read_requests=stats[0], read_bytes=stats[1],
                           write_requests=stats[2], write_bytes=stats[3],
                           errors_count=stats[4])
        for nic in definition.interfaces:
            diags.add_nic(mac_address=nic.mac_address,
                          **self.interface_stats(nic.target_dev))
        diags.num_cpus = len(diags.cpu_details)
        diags.num_disks = len(diags.disk_details)
        diags.num_nics = len(diags.nic_details)
        return diags

    NIC_COUNTERS = ('rx_octets', 'rx_packets', 'rx_errors', 'rx_drop',
                    'tx_octets', 'tx_packets', 'tx_errors', 'tx_drop')

    def interface_stats(self, target_dev):
        """A running NIC's counters, named as nova's ``NicDiagnostics``.

        ``{}`` for a NIC without a host device (libvirt has no counters
        for it) or one the guest no longer has (detached meanwhile).
        libvirt reports -1 for a counter the device does not keep; nova
        wants a number, so that is 0.
        """
        if not target_dev:
            return {}
        try:
            stats = self.domain.interfaceStats(target_dev)
        except libvirt.libvirtError as exc:
            LOG.debug('no counters for NIC %s of %s: %s', target_dev,
                      self.uuid, exc)
            return {}
        return {name: max(0, value)
                for name, value in zip(self.NIC_COUNTERS, stats)}

    def legacy_diagnostics(self):
        """The flat dict of ``get_diagnostics`` (nova's older API)."""
        result = {}
        if not self.is_active():
            return result
        for vcpu in self.domain.vcpus()[0]:
            result['cpu%d_time' % vcpu[0]] = vcpu[2]
        definition = self.definition()
        for disk in definition.disks:
            stats = self.domain.blockStats(disk.target_dev)
            prefix = disk.target_dev + '_'
            result.update({prefix + 'read_req': stats[0],
                           prefix + 'read': stats[1],
                           prefix + 'write_req': stats[2],
                           prefix + 'write': stats[3],
                           prefix + 'errors': stats[4]})
        legacy_names = {'rx_octets': 'rx', 'tx_octets': 'tx'}
        for nic in definition.interfaces:
            stats = self.interface_stats(nic.target_dev)
            result.update({'%s_%s' % (nic.target_dev,
                                      legacy_names.get(name, name)): value
                           for name, value in stats.items()})
        memory = self.domain.memoryStats()
        result.update({'memory-' + k: v for k, v in memory.items()})
        result['memory'] = self.domain.info()[2]
        return result
