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

"""Disk devices: buses, target names, serials, caching and I/O limits.

Buses come from the image (``hw_disk_bus``, ``hw_cdrom_bus``) and are checked
against the buses the host's domain capabilities list for the machine type.
Every volume's ``<serial>`` is its volume id, which is how the guest finds
it under ``/dev/disk/by-id/virtio-<id>``.
"""

import string

from nova_pyvirt.design import supported
from nova_pyvirt import exception
from nova_pyvirt.xml import devices as dev

BUS_PREFIX = {'virtio': 'vd', 'scsi': 'sd', 'sata': 'sd', 'usb': 'sd',
              'ide': 'hd', 'fdc': 'fd', 'xen': 'xvd'}
FLAVOR_QUOTA_PREFIX = 'quota:disk_'
# Devices a bus takes (one controller); others take a name per letter.
MAX_DEVICES = {'ide': 4, 'fdc': 2}
# Buses libvirt lists in domain capabilities that a device cannot use:
# fdc carries only floppies, and QEMU has no virtio CD-ROM.
UNUSABLE_BUSES = {'disk': ('fdc',), 'cdrom': ('fdc', 'virtio')}


def supported_buses(domain_caps, device='disk'):
    """The buses libvirt lists, or None if it does not describe disks.

    ``device`` is ``disk`` or ``cdrom``; buses the device cannot use are
    left out (:data:`UNUSABLE_BUSES`).
    """
    disk = domain_caps.device('disk')
    if disk is None:
        return None
    unusable = UNUSABLE_BUSES.get(device, ())
    return [b for b in disk.enum('bus') if b not in unusable]


def choose_bus(domain_caps, image_meta, device='disk'):
    """The bus for ``device`` (disk or cdrom), checked against the host.

    A host whose libvirt does not describe its disks (no domain
    capabilities) gets the requested or default bus unchecked; libvirt
    still validates the domain when it is defined.
    """
    prop = 'hw_cdrom_bus' if device == 'cdrom' else 'hw_disk_bus'
    supported = supported_buses(domain_caps, device)
    requested = image_meta.properties.get(prop)
    defaults = ('ide', 'sata') if device == 'cdrom' else ('virtio',)
    if supported is None:
        return requested or defaults[0]
    if requested:
        if requested not in supported:
            raise exception.InvalidImageProperty(
                name=prop, value=requested,
                reason='accepted for a %s on machine type %s on this '
                'host: %s' % (device, domain_caps.machine,
                              ', '.join(supported)))
        return requested
    return next((b for b in defaults if b in supported), supported[0])


class TargetNames(object):
    """Hands out ``vda``, ``vdb``... per bus prefix, skipping taken names.

    The letter is the device's index on its bus, from which libvirt derives
    its controller and unit: an IDE controller has four (two buses of two),
    a floppy controller two, and libvirt adds no second one of either.
    """

    def __init__(self):
        self.taken = set()

    def _names(self, bus):
        prefix = BUS_PREFIX.get(bus, 'sd')
        letters = string.ascii_lowercase[:MAX_DEVICES.get(bus)]
        return [prefix + letter for letter in letters]

    def claim(self, bus, wanted=None):
        """A free target name on ``bus``, ``wanted`` if it is one.

        ``wanted`` is nova's mount device, a hint (as in nova's libvirt
        driver): a name of another bus, or one that is not a target name
        of this bus, is not used.
        """
        names = self._names(bus)
        if wanted:
            name = wanted.rsplit('/', 1)[-1]
            if name in names and name not in self.taken:
                self.taken.add(name)
                return name
        for name in names:
            if name not in self.taken:
                self.taken.add(name)
                return name
        raise exception.InvalidGuestDevice(
            device='Disks', name='bus', value=bus,
            reason='more disks than this bus takes; accepted: at most %d '
            'disks and CD-ROMs on %s' % (len(names), bus))


def flavor_iotune(flavor):
    """The ``quota:disk_*`` limits design honours, as an ``<iotune>``.

    None when there is none. Other ``quota:disk_`` keys are not built
    (validation refuses them, :mod:`supported`).
    """
    tune = None
    for key, value in sorted((flavor.extra_specs or {}).items()):
        if not key.startswith(FLAVOR_QUOTA_PREFIX):
            continue
        name = key[len(FLAVOR_QUOTA_PREFIX):]
        if name not in supported.DISK_QUOTAS:
            continue
        try:
            number = int(value)
            if number < 0:
                raise ValueError(value)
        except ValueError:
            raise exception.InvalidFlavorExtraSpec(
                name=key, value=value, reason='accepted: a non-negative '
                'integer')
        if number:   # 0: no limit, as libvirt and nova read it
            tune = tune or dev.IOTune()
            setattr(tune, name, number)
    return tune


def qos_iotune(volume):
    tune = None
    for key, value in sorted(volume.qos_specs.items()):
        # 0: no limit, as libvirt and cinder read it.
        if key in dev.IOTUNE_FIELDS and value not in (None, '') and \
                int(value):
            tune = tune or dev.IOTune()
            setattr(tune, key, int(value))
    return tune


def local_disk(spec, bus, target, iotune, cache_mode):
    disk = dev.Disk(type=spec.source_type, device=spec.device,
                    driver_name='qemu', driver_type=spec.format)
    if spec.device == 'cdrom':
        disk.readonly = True
    elif cache_mode != 'default':
        # 'default' is no attribute: libvirt drops it.
        disk.driver_cache = cache_mode
    disk.source_path = spec.path
    disk.target_dev = target
    disk.target_bus = bus
    if iotune is not None and spec.device == 'disk':
        disk.iotune = iotune.copy()
    return disk


def volume_disk(volume, bus, target):
    """A volume's disk: the driver's source plus nova's volume semantics.

    A volume not connected yet (spawn's check before anything is made)
    has no source: its disk gets everything else, which is what the check
    needs (buses, target names, limits).
    """
    disk = volume.source.copy() if volume.source is not None else \
        dev.Disk()
    disk.device = volume.device
    disk.driver_name = 'qemu'
    if disk.driver_type is None:
        disk.driver_type = 'raw'
    disk.driver_cache = 'none'
    if volume.discard:
        disk.driver_discard = 'unmap'
    disk.target_dev = target
    disk.target_bus = bus
    disk.serial = volume.volume_id
    disk.readonly = bool(volume.read_only)
    disk.shareable = bool(volume.multiattach)
    tune = qos_iotune(volume)
    if tune is not None:
        disk.iotune = tune
    if volume.boot_index is not None and volume.boot_index >= 0:
        disk.boot_order = volume.boot_index + 1
    return disk


def design_disks(request, domain_caps, conf):
    """All disk devices in order: local disks, then volumes by boot index."""
    names = TargetNames()
    disk_bus = choose_bus(domain_caps, request.image_meta, 'disk')
    cdrom_bus = None    # chosen (and checked) at the first cdrom only

    def bus_of(device):
        nonlocal cdrom_bus
        if device.device != 'cdrom':
            return device.bus or disk_bus
        cdrom_bus = cdrom_bus or choose_bus(domain_caps, request.image_meta,
                                            'cdrom')
        return device.bus or cdrom_bus

    iotune = flavor_iotune(request.flavor)
    disks = []
    for spec in request.local_disks:
        bus = bus_of(spec)
        disks.append(local_disk(spec, bus, names.claim(bus), iotune,
                                conf.pyvirt.disk_cachemode))
    volumes = sorted(request.volumes, key=lambda v: (
        v.boot_index is None or v.boot_index < 0, v.boot_index or 0))
    for volume in volumes:
        bus = bus_of(volume)
        disks.append(volume_disk(volume, bus,
                                 names.claim(bus, volume.mount_device)))
    return disk_bus, disks
