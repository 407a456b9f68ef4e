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

"""Guest design on a host libvirt describes little: its test driver.

``caps-test.xml`` is the capabilities of libvirt's test driver: i686
guests of OS types hvm and xen, domain type ``test``, and no machine
types.  The driver has no domain capabilities API, so design gets an empty
``DomainCapabilities`` and checks no device against it; it still checks
what the capabilities do list (arch, OS type, machine types, firmware).
Designed domains are validated against libvirt's ``domain.rng`` and
defined on the real ``test:///default`` connection (shared by the whole
process, so each test uses a domain name and UUID of its own).

A host whose domain capabilities describe disks (``caps-test2.xml`` with
QEMU 8.0's document, as the other design tests use) must still refuse
what it does not list.
"""

import os
import random

import libvirt
from lxml import etree
from oslo_utils import uuidutils
from oslotest import base

from nova_pyvirt.design import domain_builder
from nova_pyvirt.design import request
from nova_pyvirt import exception
from nova_pyvirt.hypervisor import host_facts
from nova_pyvirt import xml
from tests import corpus
from tests import design_support as support

TEST_CAPS = os.path.join(corpus.ROOT, 'capabilities', 'caps-test.xml')
QEMU_CAPS = os.path.join(corpus.ROOT, 'capabilities', 'caps-test2.xml')
QEMU_DOMCAPS = os.path.join(corpus.ROOT, 'domaincaps',
                            'qemu_8.0.0.x86_64.xml')
TEST_URI = 'test:///default'
SCHEMAS = '/usr/share/libvirt/schemas/'
INSTANCE_DIR = '/srv/i/vm1'


def validate(text, schema='domain.rng'):
    path = SCHEMAS + schema
    if not os.path.exists(path):
        raise AssertionError('%s is missing (libvirt-daemon-system)' % path)
    rng = etree.RelaxNG(file=path)
    if not rng.validate(etree.fromstring(text.encode())):
        raise AssertionError('%s rejects:\n%s\n%s' % (schema, rng.error_log,
                                                      text))


class Recorder(object):
    """The test driver's domain capabilities: an empty document."""

    def __init__(self):
        self.asks = []

    def __call__(self, arch, machine, virt_type):
        self.asks.append((arch, machine, virt_type))
        return xml.DomainCapabilities(arch=arch, machine=machine,
                                      domain_type=virt_type)


class UndescribedHostTest(base.BaseTestCase):

    def setUp(self):
        super(UndescribedHostTest, self).setUp()
        self.conf = self.useFixture(support.ConfFixture())
        self.caps_root = etree.fromstring(corpus.read(TEST_CAPS))
        self.domain_capabilities = Recorder()
        self.host = request.HostFacts(
            xml.Capabilities.from_xml(corpus.read(TEST_CAPS)),
            self.domain_capabilities)

    def guest_xpath(self, path):
        """``path`` under the host's guests of domain type test."""
        return self.caps_root.xpath(
            '/capabilities/guest[arch/domain/@type="test"]/' + path)

    def request(self, kernel_path=None, **props):
        # test:///default is shared by the process: a name and UUID of our
        # own for each request.
        instance = support.instance(uuid=uuidutils.generate_uuid(),
                                    id=random.randint(1, 2 ** 31))
        return request.GuestRequest(
            instance, support.flavor(), support.image_meta(**props),
            INSTANCE_DIR, local_disks=[
                request.LocalDisk('disk', INSTANCE_DIR + '/disk')],
            kernel_path=kernel_path)

    def design(self, virt_type='test', kernel_path=None, **props):
        # A guest that is not hvm boots a kernel the image names.
        if kernel_path is None and props.get('hw_vm_mode', 'hvm') != 'hvm':
            kernel_path = INSTANCE_DIR + '/kernel'
        return domain_builder.design_guest(
            self.request(kernel_path=kernel_path, **props), self.conf.conf,
            self.host, virt_type=virt_type)

    def define(self, text):
        """Define ``text`` on test:///default; its XML as libvirt keeps it."""
        conn = libvirt.open(TEST_URI)
        self.addCleanup(conn.close)
        dom = conn.defineXML(text)
        self.addCleanup(dom.undefine)
        return etree.fromstring(dom.XMLDesc(0))

    def assertRefused(self, name, value, **props):
        exc = self.assertRaises(exception.InvalidImageProperty, self.design,
                                **props)
        self.assertEqual((name, value),
                         (exc.kwargs['name'], exc.kwargs['value']))
        self.assertIn('%s=%r' % (name, value), str(exc))
        return exc

    def test_default_image(self):
        arches = sorted(set(self.guest_xpath('arch/@name')))
        self.assertEqual(1, len(arches))
        self.assertEqual([], self.guest_xpath('arch//machine'))
        design = self.design()
        self.assertIsNone(design.machine_type)
        self.assertEqual('virtio', design.disk_bus)
        self.assertEqual([(arches[0], None, 'test')],
                         self.domain_capabilities.asks)

        text = design.domain.to_xml()
        root = etree.fromstring(text)
        self.assertEqual('test', root.get('type'))
        os_type = root.find('os/type')
        self.assertEqual(('hvm', arches[0]), (os_type.text,
                                              os_type.get('arch')))
        self.assertNotIn('machine', os_type.attrib)
        self.assertEqual(['virtio'], root.xpath('devices/disk/target/@bus'))
        # cpu_mode defaults to none off kvm, and no topology was asked.
        self.assertIsNone(root.find('cpu'))
        self.assertIsNone(root.find('os/firmware'))
        validate(text)

        defined = self.define(text)
        self.assertEqual('test', defined.get('type'))
        self.assertEqual(design.domain.name, defined.findtext('name'))
        self.assertEqual('hvm', defined.findtext('os/type'))
        self.assertEqual(arches[0], defined.find('os/type').get('arch'))
        self.assertEqual(['virtio'],
                         defined.xpath('devices/disk/target/@bus'))

    def test_virt_type_from_the_option(self):
        self.conf.set(virt_type='test')
        design = domain_builder.design_guest(self.request(), self.conf.conf,
                                             self.host)
        self.assertEqual('test', design.domain.type)
        self.assertIsNone(design.domain.os.machine)

    def test_persisted_machine_type_none(self):
        design = domain_builder.design_guest(self.request(), self.conf.conf,
                                             self.host,
                                             persisted_machine_type=None,
                                             virt_type='test')
        self.assertIsNone(design.machine_type)
        self.assertIsNone(design.domain.os.machine)
        self.assertIsNone(self.domain_capabilities.asks[0][1])

    def test_vm_mode_sets_os_type(self):
        offered = sorted(set(self.guest_xpath('os_type/text()')))
        self.assertEqual(['hvm', 'xen'], offered)
        for mode in offered:
            with self.subTest(hw_vm_mode=mode):
                design = self.design(hw_vm_mode=mode)
                self.assertEqual(mode, design.domain.os.type)
                self.assertIsNone(design.domain.os.machine)
                root = etree.fromstring(design.domain.to_xml())
                self.assertEqual(mode, root.findtext('os/type'))

    def test_xen_mode_domain_is_accepted_by_libvirt(self):
        # The driver defines without VIR_DOMAIN_DEFINE_VALIDATE, as here.
        # (Design used to add the hvm guests' USB tablet, which libvirt
        # refuses for xen guests: "unsupported input bus usb".)
        design = self.design(hw_vm_mode='xen')
        defined = self.define(design.domain.to_xml())
        self.assertEqual('xen', defined.findtext('os/type'))
        self.assertEqual([], defined.xpath('devices/input[@bus="usb"]'))

    def test_xen_mode_domain_validates(self):
        # domain.rng's <os> of a xen guest takes no <boot> or <smbios>.
        design = self.design(hw_vm_mode='xen')
        root = etree.fromstring(design.domain.to_xml())
        self.assertEqual([], root.xpath('os/boot | os/smbios | os/bootmenu'))
        self.assertEqual(INSTANCE_DIR + '/kernel', root.findtext('os/kernel'))
        validate(design.domain.to_xml())

    def test_xen_mode_needs_a_kernel(self):
        exc = self.assertRaises(exception.InvalidImageProperty, self.design,
                                kernel_path='', hw_vm_mode='xen')
        self.assertEqual(('hw_vm_mode', 'xen'),
                         (exc.kwargs['name'], exc.kwargs['value']))
        self.assertIn('kernel_id', str(exc))

    def test_vm_mode_not_offered(self):
        offered = sorted(set(self.guest_xpath('os_type/text()')))
        for mode in ('uml', 'exe'):
            self.assertNotIn(mode, offered)
            with self.subTest(hw_vm_mode=mode):
                exc = self.assertRefused('hw_vm_mode', mode, hw_vm_mode=mode)
                self.assertIn(', '.join(offered), str(exc))

    def test_disk_bus_unchecked(self):
        for bus, dev in (('scsi', 'sda'), ('ide', 'hda'), ('sata', 'sda')):
            with self.subTest(hw_disk_bus=bus):
                design = self.design(hw_disk_bus=bus)
                self.assertEqual(bus, design.disk_bus)
                disk = design.domain.disks[0]
                self.assertEqual((dev, bus), (disk.target_dev,
                                              disk.target_bus))
                text = design.domain.to_xml()
                validate(text)
                defined = self.define(text)
                self.assertEqual([bus],
                                 defined.xpath('devices/disk/target/@bus'))
        scsi = self.design(hw_disk_bus='scsi').domain
        self.assertEqual(['virtio-scsi'], [c.model for c in scsi.controllers])

    def test_video_model_as_requested(self):
        for model in ('vga', 'cirrus', 'qxl', 'virtio'):
            with self.subTest(hw_video_model=model):
                dom = self.design(hw_video_model=model).domain
                self.assertEqual([model], [v.model for v in dom.videos])
                validate(dom.to_xml())
        self.assertEqual([], list(self.design(
            hw_video_model='none').domain.videos))

    def test_machine_type_refused(self):
        exc = self.assertRefused('hw_machine_type', 'pc',
                                 hw_machine_type='pc')
        self.assertIn('no such machine type', str(exc))

    def test_machine_type_option_refused(self):
        arch = self.guest_xpath('arch/@name')[0]
        self.conf.set(hw_machine_type=['%s=pc' % arch])
        exc = self.assertRaises(exception.InvalidHostConfiguration,
                                self.design)
        self.assertIn('hw_machine_type = pc', str(exc))

    def test_architecture_refused(self):
        self.assertNotIn('x86_64', self.guest_xpath('arch/@name'))
        self.assertRefused('hw_architecture', 'x86_64',
                           hw_architecture='x86_64')

    def test_uefi_refused_bios_accepted(self):
        self.assertRefused('hw_firmware_type', 'uefi',
                           hw_firmware_type='uefi')
        dom = self.design(hw_firmware_type='bios').domain
        self.assertIsNone(dom.os.firmware)


class DescribedHostTest(base.BaseTestCase):
    """Regression guard: a QEMU host's domain capabilities still count."""

    def setUp(self):
        super(DescribedHostTest, self).setUp()
        self.conf = self.useFixture(support.ConfFixture())
        self.host = host_facts.from_files(QEMU_CAPS, QEMU_DOMCAPS)
        self.domcaps_root = etree.fromstring(corpus.read(QEMU_DOMCAPS))
        self.virt_type = self.domcaps_root.findtext('domain')

    def design(self, **props):
        return domain_builder.design_guest(
            support.guest_request(image=support.image_meta(**props)),
            self.conf.conf, self.host, virt_type=self.virt_type)

    def test_unlisted_disk_bus_refused(self):
        listed = self.domcaps_root.xpath(
            '/domainCapabilities/devices/disk/enum[@name="bus"]/value/text()')
        self.assertIn('virtio', listed)
        for bus in ('xen', 'uml'):
            self.assertNotIn(bus, listed)
            with self.subTest(hw_disk_bus=bus):
                exc = self.assertRaises(exception.InvalidImageProperty,
                                        self.design, hw_disk_bus=bus)
                self.assertEqual('hw_disk_bus', exc.kwargs['name'])
                self.assertIn("hw_disk_bus=%r" % bus, str(exc))
        self.assertEqual('virtio', self.design().disk_bus)

    def test_unlisted_video_model_refused(self):
        listed = self.domcaps_root.xpath(
            '/domainCapabilities/devices/video/enum[@name="modelType"]'
            '/value/text()')
        self.assertNotIn('xen', listed)
        exc = self.assertRaises(exception.InvalidImageProperty, self.design,
                                hw_video_model='xen')
        self.assertEqual('hw_video_model', exc.kwargs['name'])

    def test_machine_type_still_resolved(self):
        caps_root = etree.fromstring(corpus.read(QEMU_CAPS))
        pc = caps_root.xpath('/capabilities/guest[arch/@name="x86_64"]'
                             '/arch/machine[.="pc"]/@canonical')
        design = self.design()
        self.assertEqual(pc[0], design.machine_type)
        self.assertEqual(pc[0], design.domain.os.machine)
        self.assertEqual('hvm', design.domain.os.type)
