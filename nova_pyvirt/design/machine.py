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
"""

from nova_pyvirt import exception

#: Virt types whose guests are QEMU machines (PC or virt boards with USB,
#: SeaBIOS on x86, the NIC models QEMU emulates).
QEMU_VIRT_TYPES = ('qemu', 'kvm')

DEFAULT_ALIAS = {'i686': 'pc', 'x86_64': 'pc', 'aarch64': 'virt',
                 'armv7l': 'virt', 's390x': 's390-ccw-virtio',
                 'ppc64le': 'pseries'}


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
            reason='this host runs no %s guests of type %s'
            % (arch, virt_type))
    machines = guest.machines_for(virt_type)
    if not machines and not requested:
        # Drivers that list no machine types (libvirt's test driver) take
        # a domain without one.
        return None
    name = requested or DEFAULT_ALIAS.get(arch)
    for machine in machines:
        if machine.name == name:
            return machine.canonical or machine.name
    reason = 'the host offers no such machine type; known: %s' % ', '.join(
        sorted({m.name for m in machines}))
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
