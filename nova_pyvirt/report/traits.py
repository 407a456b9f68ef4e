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

"""Placement traits: what the scheduler can match an image's needs against.

nova's ``image_metadata_prefilter`` turns ``hw_disk_bus``,
``hw_cdrom_bus``, ``hw_video_model``, ``hw_vif_model``, ``hw_architecture``
and ``hw_emulation_architecture`` into required traits, so each trait here
is derived from what libvirt says the host offers (capabilities and domain
capabilities), and from what guest design accepts for the NIC models,
which libvirt does not list.  Only names os-traits defines are reported.

The driver owns the trait namespaces in :data:`OWNED_PREFIXES`: a trait in
them that the host no longer offers (a QEMU upgrade dropped a bus) is
withdrawn, while traits outside them (an operator's ``CUSTOM_*``, nova's
own capability traits) are left alone.  nova has no traits for machine
types; :func:`machine_types` lists them for operators instead.
"""

import functools

import os_traits
from oslo_log import log as logging

from nova.virt.libvirt import utils as libvirt_utils

from nova_pyvirt.design import machine as design_machine
from nova_pyvirt.design import peripherals

LOG = logging.getLogger(__name__)

CPU_FEATURE_PREFIX = 'HW_CPU_X86_'
STORAGE_BUS_PREFIX = 'COMPUTE_STORAGE_BUS_'
GRAPHICS_MODEL_PREFIX = 'COMPUTE_GRAPHICS_MODEL_'
VIF_MODEL_PREFIX = 'COMPUTE_NET_VIF_MODEL_'
FIRMWARE_PREFIX = 'COMPUTE_FIRMWARE_'
HOST_ARCH_PREFIX = 'HW_ARCH_'
EMULATION_ARCH_PREFIX = 'COMPUTE_ARCH_'

OWNED_PREFIXES = (CPU_FEATURE_PREFIX, STORAGE_BUS_PREFIX,
                  GRAPHICS_MODEL_PREFIX, VIF_MODEL_PREFIX, FIRMWARE_PREFIX,
                  HOST_ARCH_PREFIX, EMULATION_ARCH_PREFIX)

_BIOS_ARCHES = ('i686', 'x86_64')


@functools.lru_cache(maxsize=None)
def _known(prefix):
    return frozenset(os_traits.get_traits(prefix))


def trait_name(prefix, value):
    """``prefix`` + ``value`` in trait form, or None if os-traits lacks it."""
    name = prefix + value.upper().replace('-', '_').replace('.', '_')
    return name if name in _known(prefix) else None


def _named(prefix, values):
    traits = set()
    for value in values:
        name = trait_name(prefix, value)
        if name is None:
            LOG.debug('no os-traits trait for %s%s; not reported', prefix,
                      value)
        else:
            traits.add(name)
    return traits


def guest_arches(capabilities, virt_type):
    """Architectures the host runs guests of ``virt_type`` for."""
    return sorted({g.arch for g in capabilities.guests
                   if virt_type in g.domain_types})


def machine_types(capabilities, arch, virt_type):
    """``{alias or name: versioned name}`` the host offers for ``arch``."""
    found = {}
    for guest in capabilities.guests:
        if guest.arch == arch and virt_type in guest.domain_types:
            for machine in guest.machines_for(virt_type):
                found[machine.name] = machine.canonical or machine.name
    return found


def _machines_to_ask(capabilities, arch, virt_type):
    """The default machine and every alias (``pc``, ``q35``) of ``arch``.

    Versioned machines of one family offer the same devices as their
    alias, so asking the aliases covers the host without asking every
    versioned machine type.
    """
    offered = machine_types(capabilities, arch, virt_type)
    aliases = sorted(name for name, target in offered.items()
                     if name != target)
    default = design_machine.DEFAULT_ALIAS.get(arch)
    if default in offered and default not in aliases:
        aliases.insert(0, default)
    return aliases or [None]


def host_domain_capabilities(facts, virt_type):
    """Domain capabilities for every guest arch and machine alias."""
    documents = []
    for arch in guest_arches(facts.capabilities, virt_type):
        for machine in _machines_to_ask(facts.capabilities, arch, virt_type):
            documents.append(facts.domain_capabilities(arch, machine,
                                                       virt_type))
    return documents


def _enum_values(domain_caps_list, device, enum):
    values = set()
    for caps in domain_caps_list:
        element = caps.device(device)
        if element is not None:
            values.update(element.enum(enum))
    return values


def storage_bus_traits(domain_caps_list):
    return _named(STORAGE_BUS_PREFIX,
                  _enum_values(domain_caps_list, 'disk', 'bus'))


def graphics_model_traits(domain_caps_list):
    return _named(GRAPHICS_MODEL_PREFIX,
                  _enum_values(domain_caps_list, 'video', 'modelType'))


def vif_model_traits(virt_type):
    """NIC models guest design builds; libvirt does not enumerate them."""
    if virt_type not in design_machine.QEMU_VIRT_TYPES:
        return set()
    return _named(VIF_MODEL_PREFIX, peripherals.VIF_MODELS)


def firmware_traits(domain_caps_list, virt_type):
    """BIOS on x86 QEMU machines; UEFI where libvirt lists its firmware.

    UEFI follows the same rule guest design applies to
    ``hw_firmware_type=uefi``, so a host advertises it exactly when a UEFI
    guest can be designed there.
    """
    firmware = set()
    for caps in domain_caps_list:
        offered = caps.os.enum('firmware') if caps.os else []
        loaders = caps.os.loader.values if (caps.os and
                                            caps.os.loader) else []
        if 'efi' in offered or loaders:
            firmware.add('uefi')
        qemu_x86 = (virt_type in design_machine.QEMU_VIRT_TYPES and
                    caps.arch in _BIOS_ARCHES)
        if 'bios' in offered or qemu_x86:
            firmware.add('bios')
    return _named(FIRMWARE_PREFIX, firmware)


def arch_traits(capabilities, virt_type):
    """``HW_ARCH_<host arch>`` and ``COMPUTE_ARCH_<guest arch>`` traits."""
    traits = _named(HOST_ARCH_PREFIX, [capabilities.host.cpu.arch])
    traits |= _named(EMULATION_ARCH_PREFIX,
                     guest_arches(capabilities, virt_type))
    return traits


def cpu_feature_traits(features):
    """``HW_CPU_X86_*`` traits for CPU ``features`` (libvirt's names).

    By nova's own table, since libvirt's names often differ from the
    traits' (``sse4.1`` is ``HW_CPU_X86_SSE41``, ``pclmuldq``
    ``HW_CPU_X86_CLMUL``); a feature the table lacks gets the trait of
    its own name when os-traits has one (``pdpe1gb``).
    """
    features = set(features)
    traits = {name for name, present in
              libvirt_utils.cpu_features_to_traits(features).items()
              if present}
    unmapped = features - set(libvirt_utils.CPU_TRAITS_MAPPING)
    return traits | {name for name in (trait_name(CPU_FEATURE_PREFIX, f)
                                       for f in unmapped) if name}


def host_traits(facts, virt_type):
    """Every trait this driver reports for a host, as a set of names."""
    domain_caps_list = host_domain_capabilities(facts, virt_type)
    return (cpu_feature_traits(facts.host_cpu_features) |
            arch_traits(facts.capabilities, virt_type) |
            storage_bus_traits(domain_caps_list) |
            graphics_model_traits(domain_caps_list) |
            vif_model_traits(virt_type) |
            firmware_traits(domain_caps_list, virt_type))


def reconcile(current, reported):
    """``current`` provider traits with the driver's namespaces replaced."""
    kept = {t for t in current if not t.startswith(OWNED_PREFIXES)}
    return kept | set(reported)
