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

"""Validation at the entry of guest design: each refusal names its input.

On capability documents of libvirt's corpus (QEMU 8.0, x86_64). The
property test in ``tests/functional/design`` draws inputs at random against
the real host; these are the cases one by one, with their messages.
"""

import logging
import os
import re

import fixtures
from oslotest import base

from nova.api.validation.extra_specs import validators
from nova import objects

from nova_pyvirt.design import disks
from nova_pyvirt.design import domain_builder
from nova_pyvirt.design import request
from nova_pyvirt.design import supported
from nova_pyvirt.design import validation
from nova_pyvirt import exception
from nova_pyvirt import xml
from tests import design_support as support
from tests.unit.design import test_guest

DOCS = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'doc',
                    'source', 'guest-inputs.rst')
# The vCPU maximum of the corpus' domain capabilities (<vcpu max=...>).
CORPUS_VCPU_MAX = xml.parse(test_guest.corpus.read(
    test_guest.KVM_CAPS)).vcpu_max


class ValidationTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(support.ConfFixture())

    def validate(self, host=None, **kw):
        return validation.validate(support.guest_request(**kw),
                                   self.conf.conf,
                                   host or test_guest.host_facts())

    def refused(self, error, **kw):
        """The message of ``error`` raised validating ``kw``; one line."""
        exc = self.assertRaises(error, self.validate, **kw)
        self.assertIsInstance(exc, exception.InvalidGuestInput)
        message = str(exc)
        self.assertNotIn('\n', message)
        self.assertIn('accepted', message)
        return message


class FlavorTest(ValidationTestCase):

    def test_plain_flavor_passes(self):
        checked = self.validate()
        self.assertEqual(('kvm', 'x86_64', 'hvm'),
                         (checked.virt_type, checked.arch, checked.os_type))

    def test_no_vcpus(self):
        message = self.refused(exception.InvalidFlavor,
                               flavor_=support.flavor(vcpus=0))
        self.assertIn('Flavor vcpus=0', message)
        self.assertIn('1 to %d vCPUs' % CORPUS_VCPU_MAX, message)

    def test_more_vcpus_than_the_machine_type(self):
        vcpus = CORPUS_VCPU_MAX + 1
        message = self.refused(exception.InvalidFlavor,
                               flavor_=support.flavor(vcpus=vcpus))
        self.assertIn('vcpus=%d' % vcpus, message)
        self.assertIn('machine type pc-1.2', message)
        self.validate(flavor_=support.flavor(vcpus=CORPUS_VCPU_MAX))

    def test_x86_guests_without_an_iommu(self):
        # q35 takes 288 vCPUs, but more than 255 need an IOMMU with
        # extended interrupt mode, which design does not add.
        limit = validation.MAX_X86_VCPUS_WITHOUT_IOMMU

        def q35_maximum(caps):
            caps.element.find('vcpu').set('max', str(limit + 1))
        host = test_guest.host_facts(edit=q35_maximum)
        message = self.refused(exception.InvalidFlavor, host=host,
                               flavor_=support.flavor(vcpus=limit + 1))
        self.assertIn('1 to %d vCPUs (more need an IOMMU' % limit, message)

    def test_machine_maximum_without_domain_capabilities(self):
        # Domain capabilities without <vcpu max>: the machine's maxCpus.
        def no_vcpu(caps):
            caps.element.remove(caps.element.find('vcpu'))
        host = test_guest.host_facts(edit=no_vcpu)
        machine_max = CORPUS_VCPU_MAX // 2
        for guest in host.capabilities.guests:
            for machine in guest.machines_for('kvm'):
                machine.max_cpus = machine_max
        message = self.refused(exception.InvalidFlavor, host=host,
                               flavor_=support.flavor(
                                   vcpus=machine_max + 1))
        self.assertIn('1 to %d vCPUs' % machine_max, message)

    def test_memory(self):
        for memory in (0, -5, validation.MAX_MEMORY_MIB + 1):
            message = self.refused(exception.InvalidFlavor,
                                   flavor_=support.flavor(memory_mb=memory))
            self.assertIn('memory_mb=%d' % memory, message)
            self.assertIn('1 to %d MiB' % validation.MAX_MEMORY_MIB, message)

    def test_disk_sizes(self):
        for field in ('root_gb', 'ephemeral_gb', 'swap'):
            message = self.refused(exception.InvalidFlavor,
                                   flavor_=support.flavor(**{field: -1}))
            self.assertIn('%s=-1' % field, message)

    def test_name_with_a_control_character(self):
        message = self.refused(exception.InvalidFlavor,
                               flavor_=support.flavor(name='m1\x00'))
        self.assertIn(r"name='m1\x00'", message)


class ExtraSpecTest(ValidationTestCase):

    def specs(self, **specs):
        return support.flavor(vcpus=4, extra_specs=specs)

    def refused_spec(self, key, value):
        return self.refused(exception.InvalidFlavorExtraSpec,
                            flavor_=self.specs(**{key: value}))

    def test_guest_changing_specs_are_refused(self):
        for key, value in (('hw:cpu_policy', 'dedicated'),
                           ('hw:mem_page_size', 'large'),
                           ('hw:numa_nodes', '1'),
                           ('hw:numa_cpus.0', '0,1'),
                           ('hw:watchdog_action', 'reset'),
                           ('quota:cpu_shares', '100'),
                           ('pci_passthrough:alias', 'gpu:1')):
            message = self.refused_spec(key, value)
            self.assertIn('Flavor extra spec %s=%r' % (key, value), message)
            self.assertIn('this driver does not build it', message)

    def test_values_that_ask_for_the_default_are_accepted(self):
        self.validate(flavor_=self.specs(**{
            'hw:cpu_policy': 'shared', 'hw:watchdog_action': 'disabled',
            'os:secure_boot': 'disabled', 'hw:locked_memory': 'false',
            'hw:serial_port_count': '1'}))
        message = self.refused_spec('hw:locked_memory', 'true')
        self.assertIn('accepted: false or leave it unset', message)

    def test_specs_for_others_are_left_alone(self):
        self.validate(flavor_=self.specs(**{
            'resources:VCPU': '4', 'trait:HW_CPU_X86_AVX2': 'required',
            'aggregate_instance_extra_specs:ssd': 'true',
            'capabilities:hypervisor_type': 'QEMU', 'group_policy': 'none',
            'vmware:hw_version': 'vmx-13', 'my_own_key': '1'}))

    def test_unknown_spec_in_a_guest_namespace(self):
        message = self.refused_spec('hw:cpu_socket', '2')
        self.assertIn('unknown to this driver', message)
        self.assertIn('hw:cpu_sockets', message)

    def test_honoured_specs_are_checked(self):
        for key, value, accepted in (
                ('hw:cpu_sockets', '0', 'an integer of at least 1'),
                ('hw:boot_menu', 'banana', 'true or false'),
                ('hw_rng:rate_period', '0', 'an integer from 1 to'),
                ('quota:disk_read_iops_sec', '-1', 'an integer from 0 to')):
            self.assertIn(accepted, self.refused_spec(key, value))

    def test_total_and_read_limits(self):
        message = self.refused(
            exception.InvalidFlavorExtraSpec, flavor_=self.specs(**{
                'quota:disk_total_bytes_sec': '10',
                'quota:disk_read_bytes_sec': '5'}))
        self.assertIn('quota:disk_total_bytes_sec', message)
        self.assertIn('not both', message)

    def test_impossible_topology(self):
        limits = {'hw:cpu_max_sockets': '1', 'hw:cpu_max_cores': '2',
                  'hw:cpu_max_threads': '2'}
        message = self.refused(exception.InvalidFlavorExtraSpec,
                               flavor_=support.flavor(
                                   vcpus=5, extra_specs=limits))
        self.assertIn(','.join(sorted(limits)), message)
        self.assertIn('equal to the vCPUs (5)', message)

    def test_guest_that_ran_before_keeps_starting(self):
        # Reboot, power on: the guest has its machine type already. What
        # design does not build is logged; libvirt's limits still hold.
        logger = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        flavor = self.specs(**{'hw:cpu_policy': 'dedicated'})
        design = domain_builder.design_guest(
            support.guest_request(flavor_=flavor), self.conf.conf,
            test_guest.host_facts(), persisted_machine_type='pc-1.2')
        self.assertEqual('pc-1.2', design.machine_type)
        self.assertIn("hw:cpu_policy='dedicated'", logger.output)
        flavor = support.flavor(vcpus=0, extra_specs=flavor.extra_specs)
        self.assertRaises(exception.InvalidFlavor,
                          domain_builder.design_guest,
                          support.guest_request(flavor_=flavor),
                          self.conf.conf, test_guest.host_facts(),
                          persisted_machine_type='pc-1.2')

    def test_disk_limits_design_does_not_build(self):
        message = self.refused_spec('quota:disk_total_bytes_sec_max', '10')
        self.assertIn('this driver does not build it', message)

    def test_multiqueue_conflict(self):
        message = self.refused(
            exception.InvalidImageProperty,
            flavor_=self.specs(**{'hw:vif_multiqueue_enabled': 'false'}),
            image=support.image_meta(hw_vif_multiqueue_enabled=True))
        self.assertIn('hw_vif_multiqueue_enabled=True', message)


class ImagePropertyTest(ValidationTestCase):

    def test_guest_changing_properties_are_refused(self):
        for name, value in (('hw_numa_nodes', 2),
                            ('hw_cpu_policy', 'dedicated'),
                            ('hw_tpm_version', '2.0'),
                            ('hw_emulation_architecture', 'aarch64')):
            message = self.refused(
                exception.InvalidImageProperty,
                image=support.image_meta(**{name: value}))
            self.assertIn('Image property %s=' % name, message)

    def test_default_values_and_metadata_pass(self):
        self.validate(image=support.image_meta(
            hw_cpu_policy='shared', os_secure_boot='optional',
            hw_scsi_model='virtio-scsi', os_distro='debian',
            img_hv_type='qemu', hw_rescue_bus='usb'))

    def test_machine_without_a_pci_bus(self):
        message = self.refused(exception.InvalidImageProperty,
                               image=support.image_meta(
                                   hw_machine_type='isapc'))
        self.assertIn("hw_machine_type='isapc'", message)
        self.assertIn('pc (i440fx) and q35', message)

    def test_floppy_bus_for_disks(self):
        message = self.refused(exception.InvalidImageProperty,
                               image=support.image_meta(hw_disk_bus='fdc'))
        self.assertIn("hw_disk_bus='fdc'", message)

    def test_command_line_with_a_control_character(self):
        message = self.refused(exception.InvalidImageProperty,
                               image=support.image_meta(
                                   os_command_line='quiet\x01'))
        self.assertIn('os_command_line', message)


class InstanceAndOptionsTest(ValidationTestCase):

    def test_owner_with_a_control_character(self):
        instance = support.instance(display_name='vm\x1b[31m')
        exc = self.assertRaises(
            exception.InvalidInstanceAttribute, validation.validate,
            request.GuestRequest(instance, support.flavor(),
                                 support.image_meta(), '/srv/i/vm1'),
            self.conf.conf, test_guest.host_facts())
        self.assertIn(r"display_name='vm\x1b[31m'", str(exc))

    def test_name_template(self):
        for template, expected in (('a/b-%08x', "'/'"),
                                   ('x' * 250 + '%08x', 'at most %d bytes'
                                    % validation.MAX_NAME_BYTES)):
            self.conf.set(group=None, instance_name_template=template)
            message = self.refused(exception.InvalidInstanceAttribute)
            self.assertIn(expected, message)
            self.assertIn('instance_name_template', message)

    def test_options_written_into_the_domain(self):
        for group, option, value in (
                ('DEFAULT', 'instances_path', 'relative/dir'),
                ('pyvirt', 'vnc_keymap', 'de<'),
                ('pyvirt', 'mem_stats_period_seconds',
                 validation.MAX_INT32 + 1)):
            self.conf.set(group=group, **{option: value})
            message = self.refused(exception.InvalidHostConfiguration)
            self.assertIn('[%s] %s = %s' % (group, option, value), message)
            self.conf.conf.clear_override(
                option, group=None if group == 'DEFAULT' else group)

    def test_long_values_are_clipped(self):
        value = 'x' * (exception.SHOWN_VALUE_CHARS * 10)
        message = self.refused(exception.InvalidFlavorExtraSpec,
                               flavor_=support.flavor(extra_specs={
                                   'hw:boot_menu': value}))
        self.assertIn('... (%d characters)' % len(value), message)
        self.assertLess(len(message), len(value))

    def test_inputs_without_a_host(self):
        # render-xml checks these before it asks libvirt anything.
        req = support.guest_request(flavor_=support.flavor(memory_mb=-5))
        self.assertRaises(exception.InvalidFlavor, validation.check_inputs,
                          req, self.conf.conf)


class DevicesTest(ValidationTestCase):

    def volume(self, volume_id=support.VOLUME_ID, **kw):
        return request.VolumeDisk(
            volume_id, xml.devices.Disk(type='block', source_dev='/dev/sdz'),
            **kw)

    def test_serial_libvirt_refuses(self):
        message = self.refused(exception.InvalidGuestDevice,
                               volumes=[self.volume('vol,1')])
        self.assertIn("Volume vol,1: volume_id='vol,1'", message)

    def test_volume_not_connected_yet(self):
        # Spawn checks its volumes before connecting them: no source yet.
        self.validate(volumes=[request.VolumeDisk(support.VOLUME_ID, None,
                                                  boot_index=0)])

    def test_cdrom_volume_on_virtio(self):
        message = self.refused(exception.InvalidGuestDevice, volumes=[
            self.volume(device='cdrom', bus='virtio')])
        self.assertIn("disk_bus='virtio'", message)

    def test_cdrom_volume_gets_a_cdrom_bus(self):
        design = domain_builder.design_guest(
            support.guest_request(volumes=[self.volume(device='cdrom')]),
            self.conf.conf, test_guest.host_facts())
        self.assertNotEqual('virtio', design.domain.disks[1].target_bus)

    def test_two_volumes_at_one_boot_place(self):
        message = self.refused(exception.InvalidGuestDevice, volumes=[
            self.volume(boot_index=0),
            self.volume('a0000000-0000-4000-8000-000000000002',
                        boot_index=0)])
        self.assertIn('boot_index=0', message)

    def test_fifth_ide_device(self):
        volumes = [self.volume('a000000%d-0000-4000-8000-000000000000' % n,
                               bus='ide')
                   for n in range(disk_limit('ide') + 1)]
        message = self.refused(exception.InvalidGuestDevice,
                               local_disks=[], volumes=volumes)
        self.assertIn('at most %d' % disk_limit('ide'), message)

    def test_mount_device_that_is_no_target_name(self):
        design = domain_builder.design_guest(
            support.guest_request(volumes=[self.volume(
                mount_device='/dev/vd<x')]),
            self.conf.conf, test_guest.host_facts())
        self.assertEqual('vdb', design.domain.disks[1].target_dev)

    def test_ports(self):
        for changes, name in (({'address': 'fa:16:3e:zz:00:01'}, 'address'),
                              ({'address': '01:00:5e:00:00:01'}, 'address'),
                              ({'devname': 'vnet0'}, 'devname'),
                              ({'devname': 'tap with space'}, 'devname')):
            message = self.refused(exception.InvalidGuestDevice,
                                   network_info=[support.vif(**changes)])
            self.assertIn('Port %s: %s=' % (support.PORT_ID, name), message)
        vif = support.vif()
        vif['network']['meta']['mtu'] = validation.MAX_MTU + 1
        message = self.refused(exception.InvalidGuestDevice,
                               network_info=[vif])
        self.assertIn('mtu=%d' % (validation.MAX_MTU + 1), message)

    def test_two_ports_on_one_tap(self):
        other = support.vif(id='a0000000-0000-4000-8000-00000000000f',
                            address='fa:16:3e:00:00:0f')
        message = self.refused(exception.InvalidGuestDevice,
                               network_info=[support.vif(), other])
        self.assertIn('has this tap too', message)

    def test_upper_case_mac_is_written_as_libvirt_writes_it(self):
        design = domain_builder.design_guest(
            support.guest_request(network_info=[support.vif(
                address=support.MAC.upper())]),
            self.conf.conf, test_guest.host_facts())
        self.assertEqual(support.MAC, design.domain.interfaces[0].mac_address)


def disk_limit(bus):
    return disks.MAX_DEVICES[bus]


class SupportedInputsTest(base.BaseTestCase):
    """The tables of :mod:`supported` against nova's lists and the docs."""

    def test_every_image_property_nova_defines_has_a_rule(self):
        self.assertEqual(sorted(objects.ImageMetaProps.fields),
                         sorted(supported.IMAGE_PROPERTIES))

    def test_every_extra_spec_nova_defines_has_a_rule(self):
        validators.load_validators()
        unknown = []
        for name in validators.VALIDATORS:
            # Names with parameters, as nova writes them: {num}, {group}...
            key = re.sub(r'\{[a-z_]+\}', lambda m: {
                '{num}': '0', '{group}': '', '{key}': 'key',
                '{filter}': ''}.get(m.group(), 'x'), name)
            if supported.extra_spec_rule(key) is None:
                unknown.append(name)
        self.assertEqual([], unknown)

    def test_docs_list_every_key_as_the_driver_treats_it(self):
        with open(DOCS) as handle:
            text = handle.read()
        sections = re.split(r'\n(?=[^\n]+\n[-~]{3,}\n)', text)
        listed = {}
        for section in sections:
            heading = section.split('\n', 1)[0].lower()
            for use in (supported.HONOURED, supported.NO_EFFECT,
                        supported.REFUSED):
                if use in heading:
                    for key in re.findall(r'^\* ``([^`]+)``', section,
                                          re.MULTILINE):
                        listed[key] = use
        tables = list(supported.EXTRA_SPECS.items()) + list(
            supported.IMAGE_PROPERTIES.items())
        wrong = ['%s: %s in the docs, %s in the code' % (
            key, listed.get(key), rule.use)
            for key, rule in tables if listed.get(key) != rule.use]
        self.assertEqual([], wrong)
