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

"""Guest design across virt type x CPU mode x OS x bus x firmware x machine.

Every cell is designed against this host's real capabilities (the embedded
QEMU driver), validated with libvirt's ``domain.rng``, defined with
``defineXML`` and read back: libvirt must keep everything design set.  Cells
the host cannot honour (a CPU mode its domain capabilities refuse) must fail
validation with an error naming the option and value instead.
"""

import itertools

from lxml import etree
from oslotest import base

from nova_pyvirt.design import cpu
from nova_pyvirt.design import domain_builder
from nova_pyvirt.design import request
from nova_pyvirt import exception
from nova_pyvirt.hypervisor import host_facts
from nova_pyvirt import xml
from tests import design_support as support
from tests.fixtures import embedded
from tests import xml_compare

DOMAIN_RNG = '/usr/share/libvirt/schemas/domain.rng'
VIRT_TYPES = ('kvm', 'qemu')
CPU_MODES = ('host-model', 'host-passthrough', 'custom', 'none')
OS_TYPES = ('linux', 'windows')
BUSES = ('virtio', 'scsi', 'sata', 'ide')
FIRMWARE = ('bios', 'uefi')
MACHINES = ('pc', 'q35')
CUSTOM_MODEL = 'pentium3'


class DesignMatrixTest(base.BaseTestCase):

    def setUp(self):
        super(DesignMatrixTest, self).setUp()
        self.conn = embedded.get()
        self.host = host_facts.from_connection(self.conn)
        self.conf = self.useFixture(support.ConfFixture())
        self.rng = etree.RelaxNG(file=DOMAIN_RNG)

    def _request(self, os_type, bus, firmware, machine):
        image = support.image_meta(os_type=os_type, hw_disk_bus=bus,
                                   hw_firmware_type=firmware,
                                   hw_machine_type=machine)
        return support.guest_request(
            image=image, local_disks=[
                request.LocalDisk('disk', '/srv/i/vm1/disk'),
                request.LocalDisk('disk.config', '/srv/i/vm1/disk.config',
                                  format='raw', device='cdrom')],
            volumes=[request.VolumeDisk(
                support.VOLUME_ID,
                xml.devices.Disk(type='block', source_dev='/dev/sdz'))],
            network_info=[{'id': 'port-1', 'type': 'tap',
                           'address': 'fa:16:3e:00:00:01',
                           'devname': 'tap-port-1', 'network': {}}])

    def _define_and_compare(self, design, where):
        doc = etree.fromstring(design.domain.to_xml().encode())
        self.assertTrue(self.rng.validate(doc), '%s: %s' % (
            where, self.rng.error_log))
        back = xml_compare.defined_back(self.conn, design.domain.to_xml())
        self.assertEqual([], xml_compare.dropped(design.domain.element, back),
                         where)
        return xml.parse(back)

    def test_matrix(self):
        cells = defined = refused = 0
        for virt_type, mode, os_type, bus, firmware, machine in \
                itertools.product(VIRT_TYPES, CPU_MODES, OS_TYPES, BUSES,
                                  FIRMWARE, MACHINES):
            if bus == 'ide' and machine == 'q35':
                continue   # checked in test_ide_on_q35_is_refused
            cells += 1
            where = '%s/%s/%s/%s/%s/%s' % (virt_type, mode, os_type, bus,
                                           firmware, machine)
            self.conf.set(virt_type=virt_type, cpu_mode=mode,
                          cpu_models=[CUSTOM_MODEL] if mode == 'custom'
                          else [])
            req = self._request(os_type, bus, firmware, machine)
            caps = self.host.domain_capabilities('x86_64', machine,
                                                 virt_type)
            if not caps.cpu_mode_supported(mode) and mode in (
                    'host-model', 'host-passthrough'):
                # Design validates the options first, as init_host does.
                exc = self.assertRaises(
                    exception.InvalidHostConfiguration,
                    domain_builder.design_guest, req, self.conf.conf,
                    self.host)
                self.assertIn('cpu_mode = %s' % mode, str(exc))
                refused += 1
                continue
            design = domain_builder.design_guest(req, self.conf.conf,
                                                 self.host)
            self.assertNotEqual(machine, design.machine_type, where)
            self.assertTrue(design.machine_type.startswith('pc-'), where)
            back = self._define_and_compare(design, where)
            volume = [d for d in back.disks if d.source_path == '/dev/sdz']
            self.assertEqual([support.VOLUME_ID],
                             [d.serial for d in volume], where)
            self.assertEqual(bus, back.disks[0].target_bus, where)
            defined += 1
        self.assertGreater(defined, 150)
        self.assertEqual(cells, defined + refused)

    def test_ide_on_q35_is_refused(self):
        self.conf.set(virt_type='qemu')
        req = self._request('linux', 'ide', 'bios', 'q35')
        exc = self.assertRaises(exception.InvalidImageProperty,
                                domain_builder.design_guest, req,
                                self.conf.conf, self.host)
        self.assertIn("hw_disk_bus='ide'", str(exc))

    def test_unusable_custom_model_fails_at_startup(self):
        self.conf.set(virt_type='kvm', cpu_mode='custom',
                      cpu_models=['Haswell'])
        caps = self.host.domain_capabilities('x86_64', None, 'kvm')
        model = next(m for m in caps.cpu_mode('custom').models
                     if m.name == 'Haswell')
        self.assertEqual('no', model.usable)
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                cpu.validate_cpu_options, self.conf.conf,
                                caps, self.host.known_cpu_features)
        self.assertIn('cpu_models = Haswell', str(exc))

    def test_unknown_extra_flag_fails_at_startup(self):
        self.conf.set(virt_type='kvm', cpu_model_extra_flags=['+pcid',
                                                              '+nosuchflag'])
        caps = self.host.domain_capabilities('x86_64', None, 'kvm')
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                cpu.validate_cpu_options, self.conf.conf,
                                caps, self.host.known_cpu_features)
        self.assertIn('cpu_model_extra_flags = nosuchflag', str(exc))
