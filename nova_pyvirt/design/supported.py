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

"""What the driver does with each flavor extra spec and image property.

nova defines the keys (its extra spec validators, ``ImageMetaProps``); this
module says for every one of them whether guest design honours it, whether
it leaves the guest as it is (it steers the scheduler, another service or
another driver), or whether it asks for a guest this driver does not build.
Validation refuses the last kind, except for values that ask for what the
driver builds anyway (``hw:cpu_policy=shared``), so that nothing which
changes the guest is silently dropped. ``doc/source/guest-inputs.rst``
lists the same, and a unit test holds both against nova's own lists.
"""

import dataclasses
import re
import typing

from oslo_utils import strutils

HONOURED = 'honoured'
NO_EFFECT = 'no effect'
REFUSED = 'refused'

# libvirt stores RNG rates as unsigned ints (virXMLPropUInt).
MAX_UINT = 2 ** 32 - 1
# QEMU_BLOCK_IOTUNE_MAX: libvirt refuses larger I/O limits for QEMU.
MAX_IOTUNE = 10 ** 15


@dataclasses.dataclass(frozen=True)
class Rule:
    use: str
    note: str
    # HONOURED: value -> parsed value, raising ValueError('accepted: ...').
    check: typing.Optional[typing.Callable] = None
    # REFUSED: values that ask for what the driver builds anyway.
    neutral: typing.Callable = staticmethod(lambda value: False)


def integer(low, high=None):
    """A check for an integer in ``[low, high]`` (high: unbounded)."""
    accepted = ('an integer from %d to %d' % (low, high) if high is not None
                else 'an integer of at least %d' % low)

    def check(value):
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError('accepted: %s' % accepted)
        if number < low or (high is not None and number > high):
            raise ValueError('accepted: %s' % accepted)
        return number
    return check


def boolean(value):
    if isinstance(value, bool):
        return value
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        raise ValueError('accepted: true or false (also yes/no, on/off, 1/0)')


def falsy(value):
    try:
        return not boolean(value)
    except ValueError:
        return False


falsy.accepted = 'false'


def one_of(*values):
    def neutral(value):
        return str(value).strip().lower() in values
    neutral.accepted = ' or '.join(values)
    return neutral


def _honoured(note, check=None):
    return Rule(HONOURED, note, check)


def _no_effect(note):
    return Rule(NO_EFFECT, note)


def _refused(note, neutral=None):
    if neutral is None:
        return Rule(REFUSED, note)
    return Rule(REFUSED, note, neutral=neutral)


_TOPOLOGY = 'guest CPU topology (as nova\'s libvirt driver)'
_SCHEDULER = 'read by the scheduler or placement only'

#: The ``quota:disk_*`` I/O limits a flavor may set on local disks (the
#: ``<iotune>`` fields nova documents for flavors).
DISK_QUOTAS = ('read_bytes_sec', 'read_iops_sec', 'write_bytes_sec',
               'write_iops_sec', 'total_bytes_sec', 'total_iops_sec')

#: Extra specs by exact key.
EXTRA_SPECS = {
    'hw:cpu_sockets': _honoured(_TOPOLOGY, integer(1)),
    'hw:cpu_cores': _honoured(_TOPOLOGY, integer(1)),
    'hw:cpu_threads': _honoured(_TOPOLOGY, integer(1)),
    'hw:cpu_max_sockets': _honoured(_TOPOLOGY, integer(1)),
    'hw:cpu_max_cores': _honoured(_TOPOLOGY, integer(1)),
    'hw:cpu_max_threads': _honoured(_TOPOLOGY, integer(1)),
    'hw:boot_menu': _honoured('boot menu of the firmware', boolean),
    'hw:vif_multiqueue_enabled': _honoured(
        'one queue pair per vCPU on virtio NICs', boolean),
    'hw_rng:allowed': _honoured(
        'whether images may add a virtio RNG (hw_rng_model)', boolean),
    'hw_rng:rate_bytes': _honoured(
        'RNG rate limit, bytes per period (0: no limit)',
        integer(0, MAX_UINT)),
    'hw_rng:rate_period': _honoured(
        'RNG rate period in milliseconds (with hw_rng:rate_bytes)',
        integer(1, MAX_UINT)),
    'hw:cpu_policy': _refused(
        'dedicated (pinned) and mixed vCPUs are not built; shared is what '
        'every guest gets', one_of('shared')),
    'hw:cpu_thread_policy': _refused('needs dedicated vCPUs'),
    'hw:cpu_dedicated_mask': _refused('needs mixed vCPUs'),
    'hw:cpu_realtime': _refused('real-time vCPUs are not built', falsy),
    'hw:cpu_realtime_mask': _no_effect('only with hw:cpu_realtime, which '
                                       'is refused'),
    'hw:emulator_threads_policy': _refused('needs dedicated vCPUs'),
    'hw:mem_page_size': _refused('guests get no explicit page size or NUMA '
                                 'topology'),
    'hw:numa_nodes': _refused('guests get no NUMA topology'),
    'hw:locked_memory': _refused('guest memory is not locked', falsy),
    'hw:mem_encryption': _refused('memory encryption is not built', falsy),
    'hw:mem_encryption_model': _no_effect('only with hw:mem_encryption, '
                                          'which is refused'),
    'hw:pmem': _refused('persistent memory is not built'),
    'hw:pmu': _refused('the PMU is left to the hypervisor\'s default'),
    'hw:serial_port_count': _refused('guests get one serial port',
                                     one_of('1')),
    'hw:watchdog_action': _refused('no watchdog device is built',
                                   one_of('disabled')),
    'hw:tpm_model': _refused('no TPM is built'),
    'hw:tpm_version': _refused('no TPM is built'),
    'hw:tpm_secret_security': _no_effect('only with a TPM, which is '
                                         'refused'),
    'hw:hide_hypervisor_id': _refused('the hypervisor is not hidden',
                                      falsy),
    'hide_hypervisor_id': _refused('the hypervisor is not hidden', falsy),
    'hw:virtio_packed_ring': _refused('packed virtqueues are not built',
                                      falsy),
    'hw:redirected_usb_ports': _refused('no USB redirection is built',
                                        one_of('0')),
    'hw:sound_model': _refused('no sound device is built'),
    'hw:usb_model': _refused('the USB controller is libvirt\'s default'),
    'hw:viommu_model': _refused('no vIOMMU is built'),
    'hw:pci_numa_affinity_policy': _no_effect(
        'only for PCI devices, which are refused'),
    'hw:ephemeral_encryption': _refused('local disks are not encrypted',
                                        falsy),
    'hw:ephemeral_encryption_format': _no_effect(
        'only with hw:ephemeral_encryption, which is refused'),
    'hw_video:ram_max_mb': _no_effect('caps hw_video_ram, which is '
                                      'refused'),
    'os:secure_boot': _refused('UEFI secure boot is not built',
                               one_of('disabled')),
    'accel:device_profile': _refused('accelerators (cyborg) are not '
                                     'attached'),
    'pci_passthrough:alias': _refused('PCI devices are not passed '
                                      'through'),
    'group_policy': _no_effect(_SCHEDULER),
}
EXTRA_SPECS.update({
    'quota:disk_' + name: _honoured(
        'I/O limit of local disks (<iotune>)', integer(0, MAX_IOTUNE))
    for name in DISK_QUOTAS})

#: Extra specs by pattern (numbered keys and whole namespaces), tried in
#: order after the exact keys.
EXTRA_SPEC_PATTERNS = (
    (r'hw:numa_(cpus|mem)\.\d+', _refused('guests get no NUMA topology')),
    (r'quota:.+', _refused('CPU, memory and NIC quotas and other disk '
                           'quotas are not applied')),
    (r'(resources|trait)[a-zA-Z0-9_-]*:.+', _no_effect(_SCHEDULER)),
    (r'(aggregate_instance_extra_specs|capabilities):.+',
     _no_effect(_SCHEDULER)),
    (r'vmware:.+', _no_effect('for the VMware driver')),
)

#: Namespaces whose keys all change the guest: a key of one of them that no
#: rule knows (a typo such as ``hw:cpu_socket``) is refused, not ignored.
GUEST_NAMESPACES = ('hw', 'hw_rng', 'hw_video', 'os', 'quota', 'accel',
                    'pci_passthrough')


def extra_spec_rule(key):
    """The rule for extra spec ``key``; None when no rule knows it."""
    rule = EXTRA_SPECS.get(key)
    if rule is not None:
        return rule
    for pattern, rule in EXTRA_SPEC_PATTERNS:
        if re.fullmatch(pattern, key):
            return rule
    return None


def changes_guest_unknown(key):
    """Whether an unknown key ``key`` is in a namespace of the guest's."""
    namespace, sep, _rest = key.partition(':')
    return bool(sep) and namespace in GUEST_NAMESPACES


_IMAGE_DEVICE = 'checked against the host\'s domain capabilities'

#: Every image property nova defines (``ImageMetaProps`` fields).
IMAGE_PROPERTIES = {
    'hw_architecture': _honoured('guest architecture; the host must run '
                                 'it'),
    'hw_machine_type': _honoured('machine type; the host must offer it '
                                 '(pc and q35 families on x86)'),
    'hw_vm_mode': _honoured('guest OS type (hvm, or xen with a kernel)'),
    'hw_firmware_type': _honoured('bios or uefi; ' + _IMAGE_DEVICE),
    'hw_boot_menu': _honoured('boot menu of the firmware'),
    'hw_disk_bus': _honoured('bus of disks; ' + _IMAGE_DEVICE),
    'hw_cdrom_bus': _honoured('bus of CD-ROMs (config drive); ' +
                              _IMAGE_DEVICE),
    'hw_cpu_sockets': _honoured(_TOPOLOGY),
    'hw_cpu_cores': _honoured(_TOPOLOGY),
    'hw_cpu_threads': _honoured(_TOPOLOGY),
    'hw_cpu_max_sockets': _honoured(_TOPOLOGY),
    'hw_cpu_max_cores': _honoured(_TOPOLOGY),
    'hw_cpu_max_threads': _honoured(_TOPOLOGY),
    'hw_vif_model': _honoured('NIC model'),
    'hw_vif_multiqueue_enabled': _honoured('one queue pair per vCPU on '
                                           'virtio NICs'),
    'hw_video_model': _honoured('video model; ' + _IMAGE_DEVICE),
    'hw_pointer_model': _honoured('usbtablet on QEMU machines'),
    'hw_rng_model': _honoured('virtio RNG fed by /dev/urandom'),
    'hw_qemu_guest_agent': _honoured('the guest agent\'s virtio channel'),
    'hw_time_hpet': _honoured('HPET timer on x86'),
    'os_type': _honoured('windows: local-time clock and Hyper-V '
                         'enlightenments'),
    'os_command_line': _honoured('kernel command line (images with a '
                                 'kernel)'),
    'hw_cpu_policy': _refused('dedicated (pinned) and mixed vCPUs are not '
                              'built', one_of('shared')),
    'hw_cpu_thread_policy': _refused('needs dedicated vCPUs'),
    'hw_cpu_realtime_mask': _no_effect('only with real-time vCPUs, which '
                                       'are refused'),
    'hw_mem_page_size': _refused('guests get no explicit page size or NUMA '
                                 'topology'),
    'hw_numa_nodes': _refused('guests get no NUMA topology'),
    'hw_numa_cpus': _refused('guests get no NUMA topology'),
    'hw_numa_mem': _refused('guests get no NUMA topology'),
    'hw_locked_memory': _refused('guest memory is not locked', falsy),
    'hw_mem_encryption': _refused('memory encryption is not built', falsy),
    'hw_mem_encryption_model': _no_effect('only with hw_mem_encryption, '
                                          'which is refused'),
    'hw_pmu': _refused('the PMU is left to the hypervisor\'s default'),
    'hw_serial_port_count': _refused('guests get one serial port',
                                     one_of('1')),
    'hw_watchdog_action': _refused('no watchdog device is built',
                                   one_of('disabled')),
    'hw_tpm_model': _refused('no TPM is built'),
    'hw_tpm_version': _refused('no TPM is built'),
    'hw_sound_model': _refused('no sound device is built'),
    'hw_usb_model': _refused('the USB controller is libvirt\'s default'),
    'hw_redirected_usb_ports': _refused('no USB redirection is built',
                                        one_of('0')),
    'hw_viommu_model': _refused('no vIOMMU is built'),
    'hw_virtio_packed_ring': _refused('packed virtqueues are not built',
                                      falsy),
    'hw_video_ram': _refused('video RAM is the model\'s default'),
    'hw_input_bus': _refused('input devices are on their default bus'),
    'hw_scsi_model': _refused('SCSI disks are on virtio-scsi',
                              one_of('virtio-scsi')),
    'hw_firmware_stateless': _refused('UEFI variables are kept (NVRAM)',
                                      falsy),
    'os_secure_boot': _refused('UEFI secure boot is not built; optional '
                               'images boot without it',
                               one_of('disabled', 'optional')),
    'hw_emulation_architecture': _refused('guests run on the host\'s '
                                          'architecture'),
    'hw_maxphysaddr_mode': _refused('the physical address width is '
                                    'QEMU\'s default'),
    'hw_maxphysaddr_bits': _refused('the physical address width is '
                                    'QEMU\'s default'),
    'hw_pci_numa_affinity_policy': _no_effect('only for PCI devices, which '
                                              'are not passed through'),
    'hw_ephemeral_encryption': _refused('local disks are not encrypted',
                                        falsy),
    'hw_ephemeral_encryption_format': _no_effect(
        'only with hw_ephemeral_encryption, which is refused'),
    'hw_ephemeral_encryption_secret_uuid': _no_effect(
        'only with hw_ephemeral_encryption, which is refused'),
    'img_hide_hypervisor_id': _refused('the hypervisor is not hidden',
                                       falsy),
    'hw_floppy_bus': _no_effect('no floppy device is built'),
    'hw_rescue_bus': _no_effect('rescue is not implemented'),
    'hw_rescue_device': _no_effect('rescue is not implemented'),
    'hw_auto_disk_config': _no_effect('partition resizing, not done by '
                                      'this driver'),
    'hw_device_id': _no_effect('for Xen PV tools (XenAPI)'),
    'hw_disk_type': _no_effect('for the VMware driver'),
    'hw_ipxe_boot': _no_effect('for network injection by XenAPI'),
    'img_config_drive': _honoured('mandatory: a config drive is built'),
    'img_hv_type': _no_effect(_SCHEDULER),
    'img_hv_requested_version': _no_effect(_SCHEDULER),
    'traits_required': _no_effect(_SCHEDULER),
    'img_bdm_v2': _no_effect('read by nova\'s API'),
    'img_block_device_mapping': _no_effect('read by nova\'s API'),
    'img_mappings': _no_effect('read by nova\'s API'),
    'img_root_device_name': _no_effect('read by nova\'s API'),
    'img_cache_in_nova': _no_effect('image metadata'),
    'img_bittorrent': _no_effect('image metadata'),
    'img_compression_level': _no_effect('image metadata'),
    'img_version': _no_effect('image metadata'),
    'img_owner_id': _no_effect('image metadata'),
    'img_linked_clone': _no_effect('for the VMware driver'),
    'img_use_agent': _no_effect('for the XenAPI agent'),
    'img_signature': _no_effect('checked by nova when the image is '
                                'downloaded'),
    'img_signature_certificate_uuid': _no_effect(
        'checked by nova when the image is downloaded'),
    'img_signature_hash_method': _no_effect(
        'checked by nova when the image is downloaded'),
    'img_signature_key_type': _no_effect(
        'checked by nova when the image is downloaded'),
    'os_distro': _no_effect('image metadata'),
    'os_admin_user': _no_effect('read by nova\'s API (password reset)'),
    'os_require_quiesce': _no_effect('snapshots: not quiesced by this '
                                     'driver'),
    'os_skip_agent_inject_files_at_boot': _no_effect('for the XenAPI '
                                                     'agent'),
    'os_skip_agent_inject_ssh': _no_effect('for the XenAPI agent'),
}


def image_property_rule(name):
    return IMAGE_PROPERTIES.get(name)
