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

"""Guest design policies, on capability documents from libvirt's corpus."""

import os

from oslotest import base

from nova_pyvirt.design import cpu
from nova_pyvirt.design import domain_builder
from nova_pyvirt.design import request
from nova_pyvirt import exception
from nova_pyvirt import xml
from tests import corpus
from tests import design_support as support

CAPS = os.path.join(corpus.ROOT, 'capabilities', 'caps-test2.xml')
KVM_CAPS = os.path.join(corpus.ROOT, 'domaincaps', 'qemu_8.0.0.x86_64.xml')
TCG_CAPS = os.path.join(corpus.ROOT, 'domaincaps',
                        'qemu_7.2.0-tcg.x86_64.xml')


def host_facts(domcaps_path=KVM_CAPS, edit=None):
    caps = xml.parse(corpus.read(CAPS))
    domcaps = xml.parse(corpus.read(domcaps_path))
    if edit:
        edit(domcaps)
    return request.HostFacts(caps, lambda arch, machine, vt: domcaps,
                             frozenset(['pcid', 'vmx', 'ssbd']))


class DesignTestCase(base.BaseTestCase):

    def setUp(self):
        super(DesignTestCase, self).setUp()
        self.conf = self.useFixture(support.ConfFixture())

    def design(self, host=None, **kw):
        return domain_builder.design_guest(support.guest_request(**kw),
                                           self.conf.conf,
                                           host or host_facts())


class CPUAndClockTest(DesignTestCase):

    def test_kvm_defaults(self):
        dom = self.design().domain
        self.assertEqual('kvm', dom.type)
        self.assertEqual('host-model', dom.cpu.mode)
        self.assertEqual('utc', dom.clock.offset)
        self.assertEqual('delay', dom.clock.timer('pit').tickpolicy)
        self.assertEqual('catchup', dom.clock.timer('rtc').tickpolicy)
        self.assertFalse(dom.clock.timer('hpet').present)
        self.assertIsNone(dom.features.hyperv)

    def test_qemu_has_no_cpu_element(self):
        self.conf.set(virt_type='qemu')
        dom = self.design(host=host_facts(TCG_CAPS)).domain
        self.assertIsNone(dom.cpu)
        self.assertEqual('qemu', dom.type)

    def test_none_mode_writes_topology_only_when_asked(self):
        self.conf.set(cpu_mode='none')
        self.assertIsNone(self.design().domain.cpu)
        dom = self.design(flavor_=support.flavor(
            vcpus=4, extra_specs={'hw:cpu_sockets': '2'})).domain
        self.assertIsNone(dom.cpu.mode)
        self.assertEqual((2, 2, 1), (dom.cpu.topology_sockets,
                                     dom.cpu.topology_cores,
                                     dom.cpu.topology_threads))

    def test_windows_gets_localtime_and_hyperv(self):
        dom = self.design(image=support.image_meta(os_type='windows')).domain
        self.assertEqual('localtime', dom.clock.offset)
        self.assertTrue(dom.clock.timer('hypervclock').present)
        self.assertTrue(dom.features.hyperv.relaxed)
        self.assertEqual(8191, dom.features.hyperv.spinlocks_retries)

    def test_hpet_on_request(self):
        dom = self.design(image=support.image_meta(hw_time_hpet=True)).domain
        self.assertTrue(dom.clock.timer('hpet').present)

    def test_image_topology(self):
        dom = self.design(flavor_=support.flavor(vcpus=4), image=(
            support.image_meta(hw_cpu_sockets=1, hw_cpu_cores=2,
                               hw_cpu_threads=2))).domain
        self.assertEqual((1, 2, 2), (dom.cpu.topology_sockets,
                                     dom.cpu.topology_cores,
                                     dom.cpu.topology_threads))

    def test_negative_topology_property(self):
        exc = self.assertRaises(
            exception.InvalidImageProperty, self.design,
            image=support.image_meta(hw_cpu_cores=-1))
        self.assertIn('hw_cpu_cores=-1', str(exc))

    def test_custom_model_and_extra_flags(self):
        self.conf.set(cpu_mode='custom', cpu_models=['phenom', 'qemu64'],
                      cpu_model_extra_flags=['+pcid', '-vmx'])
        dom = self.design().domain
        self.assertEqual(('custom', 'qemu64'), (dom.cpu.mode, dom.cpu.model))
        self.assertEqual([('pcid', 'require'), ('vmx', 'disable')],
                         [(f.name, f.policy) for f in dom.cpu.features])


class StartupValidationTest(DesignTestCase):

    def validate(self, domcaps=KVM_CAPS):
        host = host_facts(domcaps)
        cpu.validate_cpu_options(self.conf.conf,
                                 host.domain_capabilities('x86_64', 'pc',
                                                          'kvm'),
                                 host.known_cpu_features)

    def test_defaults_pass(self):
        self.validate()

    def test_unusable_model(self):
        self.conf.set(cpu_mode='custom', cpu_models=['phenom'])
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.validate)
        self.assertIn('[pyvirt] cpu_models = phenom', str(exc))
        self.assertIn('unusable', str(exc))

    def test_unknown_model(self):
        self.conf.set(cpu_mode='custom', cpu_models=['Pentium9000'])
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.validate)
        self.assertIn('cpu_models = Pentium9000', str(exc))

    def test_custom_without_models(self):
        self.conf.set(cpu_mode='custom')
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.validate)
        self.assertIn('cpu_models', str(exc))

    def test_unknown_flag(self):
        self.conf.set(cpu_model_extra_flags=['+frobnicate'])
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.validate)
        self.assertIn('cpu_model_extra_flags = frobnicate', str(exc))

    def test_flags_with_mode_none(self):
        self.conf.set(cpu_mode='none', cpu_model_extra_flags=['pcid'])
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.validate)
        self.assertIn('cpu_model_extra_flags', str(exc))

    def test_passthrough_refused_under_tcg(self):
        self.conf.set(virt_type='qemu', cpu_mode='host-passthrough')
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.validate, TCG_CAPS)
        self.assertIn('cpu_mode = host-passthrough', str(exc))


class MachineTypeTest(DesignTestCase):

    def test_default_alias_resolves_to_versioned(self):
        self.assertEqual('pc-1.2', self.design().machine_type)

    def test_option(self):
        self.conf.set(hw_machine_type=['x86_64=pc-1.0'])
        design = self.design()
        self.assertEqual('pc-1.0', design.machine_type)
        self.assertEqual('pc-1.0', design.domain.os.machine)

    def test_image_property_wins(self):
        self.conf.set(hw_machine_type=['x86_64=pc-1.0'])
        self.assertEqual('pc-1.1', self.design(
            image=support.image_meta(hw_machine_type='pc-1.1')).machine_type)

    def test_unknown_machine(self):
        exc = self.assertRaises(
            exception.InvalidImageProperty, self.design,
            image=support.image_meta(hw_machine_type='q99'))
        self.assertIn("hw_machine_type='q99'", str(exc))

    def test_unknown_machine_option(self):
        self.conf.set(hw_machine_type=['x86_64=q99'])
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.design)
        self.assertIn('hw_machine_type = q99', str(exc))


class DevicesTest(DesignTestCase):

    def test_disk_bus_not_offered(self):
        def no_sata(caps):
            bus = [e for e in caps.device('disk').enums if e.name == 'bus']
            bus[0].values = ['virtio', 'ide']
        exc = self.assertRaises(
            exception.InvalidImageProperty, self.design,
            host=host_facts(edit=no_sata),
            image=support.image_meta(hw_disk_bus='sata'))
        self.assertIn("hw_disk_bus='sata'", str(exc))

    def test_scsi_bus_adds_controller(self):
        dom = self.design(image=support.image_meta(
            hw_disk_bus='scsi')).domain
        self.assertEqual(('sda', 'scsi'), (dom.disks[0].target_dev,
                                           dom.disks[0].target_bus))
        self.assertEqual(['virtio-scsi'], [c.model for c in dom.controllers])

    def test_uefi(self):
        dom = self.design(image=support.image_meta(
            hw_firmware_type='uefi')).domain
        self.assertEqual('efi', dom.os.firmware)

    def test_uefi_without_firmware(self):
        def no_uefi(caps):
            caps.os.loader.values = []
            for item in list(caps.os.enums):
                caps.os.enums.remove(item)
        exc = self.assertRaises(
            exception.InvalidImageProperty, self.design,
            host=host_facts(edit=no_uefi),
            image=support.image_meta(hw_firmware_type='uefi'))
        self.assertIn("hw_firmware_type='uefi'", str(exc))

    def test_volumes_carry_their_id_as_serial(self):
        source = xml.devices.Disk(type='network', source_protocol='iscsi',
                                  source_name='iqn.x:t/1')
        volume = request.VolumeDisk(
            support.VOLUME_ID, source, mount_device='/dev/vdc',
            read_only=True, multiattach=True, discard=True,
            qos_specs={'total_iops_sec': '500', 'consumer': 'front-end'})
        dom = self.design(volumes=[volume]).domain
        disk = dom.disks[1]
        self.assertEqual(support.VOLUME_ID, disk.serial)
        self.assertEqual('vdc', disk.target_dev)
        self.assertEqual(('none', 'unmap'), (disk.driver_cache,
                                             disk.driver_discard))
        self.assertTrue(disk.readonly)
        self.assertTrue(disk.shareable)
        self.assertEqual(500, disk.iotune.total_iops_sec)
        self.assertIsNone(source.serial)

    def test_flavor_quota_becomes_iotune(self):
        dom = self.design(flavor_=support.flavor(extra_specs={
            'quota:disk_read_bytes_sec': '10240',
            'quota:disk_write_iops_sec': '100'})).domain
        self.assertEqual((10240, 100), (dom.disks[0].iotune.read_bytes_sec,
                                        dom.disks[0].iotune.write_iops_sec))

    def test_bad_flavor_quota(self):
        exc = self.assertRaises(
            exception.InvalidFlavorExtraSpec, self.design,
            flavor_=support.flavor(extra_specs={
                'quota:disk_read_bytes_sec': 'fast'}))
        self.assertIn('quota:disk_read_bytes_sec', str(exc))

    def test_image_devices(self):
        dom = self.design(image=support.image_meta(
            hw_video_model='vga', hw_rng_model='virtio',
            hw_qemu_guest_agent=True, hw_boot_menu=True)).domain
        self.assertEqual('vga', dom.videos[0].model)
        self.assertEqual('/dev/urandom', dom.rngs[0].backend_path)
        self.assertEqual('org.qemu.guest_agent.0',
                         dom.channels[0].target_name)
        self.assertTrue(dom.os.bootmenu_enable)
        self.assertEqual(10, dom.memballoons[0].stats_period)
        self.assertEqual('/srv/i/vm1/console.log', dom.serials[0].log_file)

    def test_vnc_keymap_off_by_default_and_honoured(self):
        dom = self.design().domain
        self.assertIsNone(dom.graphics[0].keymap)
        self.assertEqual('127.0.0.1', dom.graphics[0].listen)
        self.conf.set(vnc_keymap='de')
        self.assertEqual('de', self.design().domain.graphics[0].keymap)

    def test_bad_vif_model(self):
        exc = self.assertRaises(
            exception.InvalidImageProperty, self.design,
            image=support.image_meta(hw_vif_model='spapr-vlan'),
            network_info=[support.vif()])
        self.assertIn("hw_vif_model='spapr-vlan'", str(exc))

    def test_metadata_and_sysinfo(self):
        dom = self.design().domain
        self.assertEqual('vm1', dom.nova_instance.name)
        self.assertEqual('m1.test', dom.nova_instance.flavor.name)
        self.assertEqual(support.UUID, dom.sysinfo.system[3].value)
        self.assertEqual('sysinfo', dom.os.smbios_mode)
