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

"""Checks a live migration passes before anything moves.

The source knows the running guest (its CPU as libvirt expanded it, its
machine type, its memory, its local disks); the destination's libvirtd
knows what it can run. :func:`destination_problems` puts the two together
over a connection to the destination and returns every
difference it finds, each naming what differs, so a refusal says why.
Nothing on either host is changed by a check.
"""

from lxml import etree
from oslo_utils import units

#: CPU modes whose guest CPU is a definition libvirt can compare. A
#: host-passthrough guest needs an identical host, which no comparison
#: proves; a guest without <cpu> gets QEMU's default model everywhere.
COMPARABLE_CPU_MODES = ('host-model', 'custom')


class GuestFacts(object):
    """What the checks need to know about the running guest."""

    def __init__(self, xml_text):
        root = etree.fromstring(xml_text.encode()
                                if isinstance(xml_text, str) else xml_text)
        self.virt_type = root.get('type')
        os_type = root.find('./os/type')
        self.arch = os_type.get('arch') if os_type is not None else None
        self.machine = os_type.get('machine') if os_type is not None \
            else None
        self.emulator = root.findtext('./devices/emulator')
        self.memory_kib = int(root.findtext('./memory') or 0)
        cpu = root.find('./cpu')
        self.cpu_mode = None
        self.cpu_xml = None
        if cpu is not None:
            # The live definition shows host-model already expanded into
            # the model and features the guest really got (mode="custom"),
            # which is what must be available on the destination.
            self.cpu_mode = cpu.get('mode', 'custom')
            self.cpu_xml = etree.tostring(cpu).decode()


def destination_problems(peer, guest, disk_bytes=0, disk_available=None):
    """Every reason the destination behind ``peer`` cannot take ``guest``.

    :param peer: a :class:`nova_pyvirt.hypervisor.peer.PeerHost`.
    :param guest: :class:`GuestFacts` of the running guest.
    :param disk_bytes: bytes the destination must hold for the guest's
        local disks (0 when storage is shared or nothing is copied).
    :param disk_available: bytes free for instances on the destination,
        as it reported them (None: unknown, not checked).
    :returns: a list of sentences, empty when the destination will do.
    """
    problems = []
    machine = guest.machine
    reason = peer.machine_problem(guest.emulator, guest.arch, machine,
                                  guest.virt_type)
    if reason:
        problems.append('machine type %s (%s, %s) is not available: %s' % (
            machine, guest.arch, guest.virt_type, reason))
        # Without the machine type the CPU cannot be compared against it.
        machine = None
    if guest.cpu_xml and guest.cpu_mode in COMPARABLE_CPU_MODES:
        reason = peer.compare_cpu(guest.emulator, guest.arch, machine,
                                  guest.virt_type, guest.cpu_xml)
        if reason:
            problems.append('the guest CPU cannot run there: %s' % reason)
    memory = guest.memory_kib * units.Ki
    free = peer.free_memory()
    if memory > free:
        problems.append('%d MiB of memory needed, %d MiB free' % (
            memory // units.Mi, free // units.Mi))
    if disk_available is not None and disk_bytes > disk_available:
        problems.append('%d MiB of disk needed for the local disks, %d MiB '
                        'available' % (disk_bytes // units.Mi,
                                       disk_available // units.Mi))
    return problems
