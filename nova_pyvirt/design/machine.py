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

"""Machine type choice: image property, then option, then a default alias.

Aliases such as ``pc`` or ``q35`` move to a newer versioned machine when QEMU
is upgraded, which changes the guest's ABI; design resolves the alias to the
versioned machine the host reports now, and the driver stores that value with
the instance so the guest keeps it across host upgrades.

The guest's architecture, OS type and firmware are chosen here too: each
must be one the host lists for the machine.
"""

import re

from nova_pyvirt import exception

#: Virt types whose guests are QEMU machines (PC or virt boards with USB,
#: SeaBIOS on x86, the NIC models QEMU emulates).
QEMU_VIRT_TYPES = ('qemu', 'kvm')

X86 = ('i686', 'x86_64')
#: x86 machine types design builds guests for: the i440fx (``pc``) and
#: Q35 families. Others (isapc, microvm, x-remote, none) have no PCI bus,
#: which every guest's virtio devices need.
PC_MACHINE = re.compile(r'^(pc|q35|pc-.+)$')

DEFAULT_ALIAS = {'i686': 'pc', 'x86_64': 'pc', 'aarch64': 'virt',
                 'armv7l': 'virt', 's390x': 's390-ccw-virtio',
                 'ppc64le': 'pseries'}


def guest_arch(host, image_meta):
    """The guest's architecture: ``hw_architecture``, else the host's."""
    arch = image_meta.properties.get('hw_architecture')
    return arch or host.arch


def configured_machine(conf, arch):
    """The ``[pyvirt] hw_machine_type`` entry for ``arch``, if any."""
    for item in conf.pyvirt.hw_machine_type or []:
        item_arch, _sep, machine = item.partition('=')
        if item_arch.strip() == arch:
            return machine.strip()
    return None


def resolve(capabilities, arch, virt_type, requested, source):
    """Return the versioned machine for ``requested`` (alias or name).

    None when the host lists no machine types and none was requested.

    ``source`` names where the request came from (``image property
    hw_machine_type`` or ``[pyvirt] hw_machine_type``) for the error.
    """
    guest = next((g for g in capabilities.guests if g.arch == arch and
                  virt_type in g.domain_types), None)
    if guest is None:
        raise exception.InvalidImageProperty(
            name='hw_architecture', value=arch,
            reason='this host runs no %s guests of type %s; accepted: %s'
            % (arch, virt_type, ', '.join(sorted(
                {g.arch for g in capabilities.guests
                 if virt_type in g.domain_types})) or '(none)'))
    machines = guest.machines_for(virt_type)
    if requested and arch in X86 and not PC_MACHINE.match(requested):
        _refuse(source, requested, 'guests are built on the pc (i440fx) '
                'and q35 machine families; accepted: pc, q35 or a '
                'versioned pc-i440fx-*, pc-q35-* machine this host offers')
    if not machines and not requested:
        # Drivers that list no machine types (libvirt's test driver) take
        # a domain without one.
        return None
    name = requested or DEFAULT_ALIAS.get(arch)
    for machine in machines:
        if machine.name == name:
            return machine.canonical or machine.name
    known = sorted({m.name for m in machines if arch not in X86 or
                    PC_MACHINE.match(m.name)})
    _refuse(source, name, 'the host offers no such machine type; accepted: '
            '%s' % ', '.join(known))


def _refuse(source, name, reason):
    if source == 'image':
        raise exception.InvalidImageProperty(
            name='hw_machine_type', value=name, reason=reason)
    raise exception.InvalidHostConfiguration(
        option='hw_machine_type', value=name, reason=reason)


def choose(conf, capabilities, arch, virt_type, image_meta,
           persisted=None):
    """The versioned machine type for a guest.

    ``persisted`` is what the instance already runs with (kept as is).
    """
    if persisted:
        return persisted
    from_image = image_meta.properties.get('hw_machine_type')
    if from_image:
        return resolve(capabilities, arch, virt_type, from_image, 'image')
    return default(conf, capabilities, arch, virt_type)


def default(conf, capabilities, arch, virt_type):
    """The versioned machine a guest of ``arch`` gets when nothing asks."""
    return resolve(capabilities, arch, virt_type,
                   configured_machine(conf, arch), 'option')


def os_type(capabilities, arch, virt_type, image_meta):
    """The guest's OS type (``hvm``, ``xen``...), from ``hw_vm_mode``.

    The host must list a guest of that OS type for ``arch`` and
    ``virt_type``; the scheduler's ImagePropertiesFilter checks the same
    triple against ``supported_instances``.
    """
    wanted = image_meta.properties.get('hw_vm_mode') or 'hvm'
    offered = sorted({g.os_type for g in capabilities.guests
                      if g.arch == arch and virt_type in g.domain_types})
    if wanted not in offered:
        raise exception.InvalidImageProperty(
            name='hw_vm_mode', value=wanted,
            reason='accepted for %s guests of type %s on this host: %s'
            % (arch, virt_type, ', '.join(offered) or '(none)'))
    return wanted


def firmware(domain_caps, image_meta):
    """``'efi'`` for UEFI images (when the host has UEFI firmware)."""
    kind = image_meta.properties.get('hw_firmware_type')
    if kind in (None, 'bios'):
        return None
    if kind != 'uefi':
        raise exception.InvalidImageProperty(
            name='hw_firmware_type', value=kind, reason='accepted: bios, '
            'uefi')
    offered = domain_caps.os.enum('firmware') if domain_caps.os else []
    loaders = domain_caps.os.loader.values if (
        domain_caps.os and domain_caps.os.loader) else []
    if 'efi' not in offered and not loaders:
        raise exception.InvalidImageProperty(
            name='hw_firmware_type', value=kind,
            reason='no UEFI firmware is installed for machine type %s on '
            'this host; accepted: bios' % domain_caps.machine)
    return 'efi'
