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

"""Volumes on guests: nova's block device info in, disks on domains out.

Turns a cinder ``connection_info`` into a :class:`VolumeDisk` (through the
volume driver for its type), attaches it to a running or stopped domain, and
detaches it, waiting until the guest has really let go of the device.
"""

import time

from oslo_log import log as logging
from oslo_utils import excutils

from nova import exception
from nova.virt import driver as nova_driver

from nova_pyvirt.design import disks as design_disks
from nova_pyvirt.design import request
from nova_pyvirt import volume

LOG = logging.getLogger(__name__)


def volume_id(connection_info):
    data = connection_info.get('data') or {}
    found = connection_info.get('serial') or data.get('volume_id')
    if not found:
        raise exception.InvalidBDMVolume(
            id='unknown', details='connection_info names no volume id')
    return found


def volume_spec(connection_info, source, mountpoint=None, bus=None,
                device_type=None, boot_index=None):
    """The :class:`VolumeDisk` design needs for one connected volume."""
    data = connection_info.get('data') or {}
    return request.VolumeDisk(
        volume_id(connection_info), source, mount_device=mountpoint,
        boot_index=boot_index, bus=bus, device=device_type or 'disk',
        read_only=data.get('access_mode') == 'ro',
        multiattach=bool(connection_info.get('multiattach') or
                         data.get('multiattach')),
        discard=bool(data.get('discard')),
        qos_specs=dict(data.get('qos_specs') or {}))


def planned_volumes(block_device_info):
    """The volumes of ``block_device_info`` as design will see them.

    Without their disk sources, which only connecting them gives: for
    validating a request before anything is connected.
    """
    return [volume_spec(bdm['connection_info'], None,
                        bdm.get('mount_device'), bdm.get('disk_bus'),
                        bdm.get('device_type'), bdm.get('boot_index'))
            for bdm in nova_driver.block_device_info_get_mapping(
                block_device_info)]


class Volumes(object):
    """Connects, attaches and detaches the volumes of instances."""

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host

    def driver(self, connection_info):
        return volume.driver_for(self.conf, self.host, connection_info)

    def connect(self, connection_info, instance, mountpoint=None, bus=None,
                device_type=None, boot_index=None):
        vdriver = self.driver(connection_info)
        vdriver.connect(connection_info, instance)
        try:
            source = vdriver.disk_source(connection_info, instance)
        except Exception:
            with excutils.save_and_reraise_exception():
                vdriver.disconnect(connection_info, instance)
        return volume_spec(connection_info, source, mountpoint, bus,
                           device_type, boot_index)

    def disconnect(self, connection_info, instance):
        self.driver(connection_info).disconnect(connection_info, instance)

    def connect_all(self, block_device_info, instance):
        """Connect every volume of ``block_device_info``; all or nothing."""
        specs, done = [], []
        try:
            for bdm in nova_driver.block_device_info_get_mapping(
                    block_device_info):
                info = bdm['connection_info']
                specs.append(self.connect(
                    info, instance, bdm.get('mount_device'),
                    bdm.get('disk_bus'), bdm.get('device_type'),
                    bdm.get('boot_index')))
                done.append(info)
        except Exception:
            with excutils.save_and_reraise_exception():
                for info in done:
                    self._disconnect_quietly(info, instance)
        return specs

    def disconnect_all(self, block_device_info, instance):
        for bdm in nova_driver.block_device_info_get_mapping(
                block_device_info):
            self._disconnect_quietly(bdm['connection_info'], instance)

    def _disconnect_quietly(self, connection_info, instance):
        try:
            self.disconnect(connection_info, instance)
        except Exception:
            LOG.exception('could not disconnect volume %s',
                          connection_info.get('serial'))

    def attach(self, guest, spec, domain_caps, image_meta):
        """Add ``spec``'s disk to ``guest`` (live too if it runs)."""
        definition = guest.definition()
        names = design_disks.TargetNames()
        names.taken.update(d.target_dev for d in definition.disks)
        bus = spec.bus or design_disks.choose_bus(domain_caps, image_meta)
        disk = design_disks.volume_disk(spec, bus,
                                        names.claim(bus, spec.mount_device))
        guest.attach_device(disk.to_xml(), live=guest.is_active())
        return disk

    def find_disk(self, guest, vol_id, live=True):
        definition = guest.definition() if live else guest.inactive()
        return next((d for d in definition.disks if d.serial == vol_id),
                    None)

    def detach(self, guest, vol_id, timeout):
        """Remove the volume's disk; waits for the guest to release it."""
        if guest.is_active():
            disk = self.find_disk(guest, vol_id)
            if disk is not None:
                guest.detach_device(disk.to_xml(), live=True)
                self._wait_removed(guest, disk, vol_id, timeout)
        disk = self.find_disk(guest, vol_id, live=False)
        if disk is not None:
            guest.detach_device(disk.to_xml(), live=False)

    def _wait_removed(self, guest, disk, vol_id, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if disk.alias and self.host.device_removed(guest.uuid,
                                                       disk.alias):
                return
            if self.find_disk(guest, vol_id) is None:
                return
            time.sleep(0.2)
        raise exception.DeviceDetachFailed(
            device=disk.target_dev,
            reason='the guest did not release volume %s within %d s '
                   '([pyvirt] live_device_detach_timeout); it is still '
                   'attached' % (vol_id, timeout))
