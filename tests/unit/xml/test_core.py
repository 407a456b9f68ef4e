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

"""Behaviour of the declarative core: fields, ordering, errors, equality."""

import copy

from lxml import etree
from oslotest import base

from nova_pyvirt import xml
from nova_pyvirt.xml import devices
from nova_pyvirt.xml import domain as domain_mod


class FieldTest(base.BaseTestCase):

    def test_keyword_constructor_and_typed_reads(self):
        disk = devices.Disk(type='file', device='disk', driver_name='qemu',
                            driver_type='qcow2', source_file='/d/disk',
                            target_dev='vda', target_bus='virtio',
                            serial='vol-1', readonly=True, boot_order=1)
        root = etree.fromstring(disk.to_xml().encode())
        self.assertEqual('qcow2', root.find('driver').get('type'))
        self.assertEqual('/d/disk', root.find('source').get('file'))
        self.assertEqual('vol-1', root.findtext('serial'))
        self.assertIsNotNone(root.find('readonly'))
        self.assertEqual('1', root.find('boot').get('order'))
        self.assertEqual(1, disk.boot_order)
        self.assertEqual('/d/disk', disk.source_path)

    def test_children_are_written_in_declared_order(self):
        disk = devices.Disk(serial='s', target_dev='vda', driver_name='qemu')
        disk.source_file = '/x'
        self.assertEqual(['driver', 'source', 'target', 'serial'],
                         [c.tag for c in disk.element])

    def test_yes_no_rejects_maybe(self):
        graphics = devices.Graphics(type='vnc')
        exc = self.assertRaises(xml.XMLValueError, setattr, graphics,
                                'autoport', 'maybe')
        self.assertIn('autoport', str(exc))
        self.assertIn("'maybe'", str(exc))

    def test_int_rejects_x(self):
        dom = xml.Domain()
        exc = self.assertRaises(xml.XMLValueError, setattr, dom, 'vcpu', 'x')
        self.assertIn('Domain.vcpu', str(exc))
        self.assertIsNone(dom.element.find('vcpu'))

    def test_bad_stored_value_names_the_field(self):
        dom = xml.parse('<domain><vcpu>lots</vcpu></domain>')
        exc = self.assertRaises(xml.XMLValueError, getattr, dom, 'vcpu')
        self.assertIn('Domain.vcpu', str(exc))
        self.assertIn('lots', str(exc))

    def test_enum_rejects_unknown_value(self):
        disk = devices.Disk()
        exc = self.assertRaises(xml.XMLValueError, setattr, disk,
                                'driver_cache', 'sometimes')
        self.assertIn('driver_cache', str(exc))

    def test_unknown_keyword_is_an_error(self):
        exc = self.assertRaises(TypeError, devices.Disk, colour='red')
        self.assertIn('colour', str(exc))

    def test_wrong_root(self):
        exc = self.assertRaises(xml.XMLDocumentError, xml.Domain.from_xml,
                                '<pool type="dir"/>')
        self.assertIn('pool', str(exc))
        exc = self.assertRaises(xml.XMLDocumentError, xml.parse, '<nope/>')
        self.assertIn('nope', str(exc))
        self.assertRaises(xml.XMLDocumentError, xml.parse, '<domain>')

    def test_clearing_a_field_prunes_empty_parents(self):
        disk = devices.Disk(driver_cache='none')
        disk.driver_cache = None
        self.assertIsNone(disk.element.find('driver'))

    def test_unknown_markup_survives_edits(self):
        text = ('<domain type="kvm"><name>a</name><future x="1"><y/></future>'
                '<devices><disk type="file"><gizmo/></disk></devices>'
                '</domain>')
        dom = xml.parse(text)
        dom.disks[0].target_dev = 'vda'
        dom.name = 'b'
        out = etree.fromstring(dom.to_xml().encode())
        self.assertIsNotNone(out.find('future/y'))
        self.assertIsNotNone(out.find('devices/disk/gizmo'))
        self.assertEqual('b', out.findtext('name'))

    def test_scaled_memory_honours_units(self):
        dom = xml.parse("<domain><memory unit='GiB'>2</memory>"
                        "<currentMemory unit='MB'>1000</currentMemory>"
                        "</domain>")
        self.assertEqual(2 * 1024 * 1024, dom.memory_kib)
        self.assertEqual(976562, dom.current_memory_kib)
        dom.memory_kib = 4096
        self.assertEqual('KiB', dom.element.find('memory').get('unit'))
        self.assertEqual('4096', dom.element.findtext('memory'))

    def test_children_list_append_remove_and_device_order(self):
        dom = xml.Domain(type='qemu', name='x')
        dom.devices.append(devices.MemBalloon(model='virtio'))
        dom.devices.append(devices.Disk(type='file', target_dev='vda'))
        dom.emulator = '/usr/bin/qemu-system-x86_64'
        dom.interfaces.append(devices.Interface(type='network'))
        self.assertEqual(['emulator', 'disk', 'interface', 'memballoon'],
                         [c.tag for c in dom.element.find('devices')])
        # <emulator> is a child of <devices> too, seen as a plain view.
        self.assertEqual(4, len(dom.devices))
        self.assertIsInstance(dom.devices[1], devices.Disk)
        self.assertIsInstance(dom.devices[3], devices.MemBalloon)
        dom.disks.remove(devices.Disk(type='file', target_dev='vda'))
        self.assertEqual(0, len(dom.disks))
        self.assertRaises(xml.XMLValueError, dom.disks.append,
                          devices.Interface())

    def test_child_assignment_replaces_in_place(self):
        dom = xml.Domain(name='x', on_crash='destroy')
        dom.clock = domain_mod.Clock(offset='utc')
        dom.os = domain_mod.OS(type='hvm', arch='x86_64', boot_devices=['hd'])
        self.assertEqual(['name', 'os', 'clock', 'on_crash'],
                         [c.tag for c in dom.element])
        dom.clock = domain_mod.Clock(offset='localtime')
        self.assertEqual(1, len(dom.element.findall('clock')))
        self.assertEqual('localtime', dom.clock.offset)
        dom.os.kernel = '/k'
        self.assertEqual('/k', dom.element.findtext('os/kernel'))

    def test_values_list(self):
        os_ = domain_mod.OS(boot_devices=['hd', 'cdrom'])
        self.assertEqual(['hd', 'cdrom'], os_.boot_devices)
        os_.boot_devices = ['network']
        self.assertEqual(['network'],
                         [b.get('dev') for b in os_.element.findall('boot')])

    def test_switch_refuses_a_type_without_path(self):
        disk = devices.Disk(type='network')
        exc = self.assertRaises(xml.XMLValueError, setattr, disk,
                                'source_path', '/x')
        self.assertIn('network', str(exc))

    def test_nova_metadata_namespace(self):
        dom = xml.Domain(name='x')
        dom.nova_instance = domain_mod.NovaInstance(
            name='vm1', flavor=domain_mod.NovaFlavor(name='m1', vcpus=2))
        out = dom.to_xml()
        self.assertIn('xmlns:nova="http://openstack.org/xmlns/libvirt/nova/'
                      '1.1"', out)
        self.assertIn('<nova:name>vm1</nova:name>', out)
        again = xml.parse(out)
        self.assertEqual('m1', again.nova_instance.flavor.name)
        self.assertEqual(2, again.nova_instance.flavor.vcpus)

    def test_equality_is_canonical(self):
        a = xml.parse('<domain type="kvm">\n  <name>a</name>\n</domain>')
        b = xml.parse("<domain type='kvm'><name>a</name></domain>")
        self.assertEqual(a, b)
        b.name = 'b'
        self.assertNotEqual(a, b)

    def test_copy_is_detached(self):
        dom = xml.Domain(name='a')
        clone = dom.copy()
        clone.name = 'b'
        self.assertEqual('a', dom.name)

    def test_copy_module(self):
        text = '<domain><name>a</name><vcpu>1</vcpu></domain>'
        for dom in (xml.Domain(name='a', vcpu=1), xml.parse(text)):
            shallow = copy.copy(dom)
            self.assertIs(dom.element, shallow.element)
            deep = copy.deepcopy(dom)
            self.assertIsNot(dom.element, deep.element)
            self.assertEqual(dom, deep)
            self.assertNotIn('_keep', vars(deep))
            deep.name = 'b'
            self.assertEqual('a', dom.name)

    def test_clock_timer_lookup_and_hyperv(self):
        clock = domain_mod.Clock(offset='utc', timers=[
            domain_mod.Timer(name='pit', tickpolicy='delay'),
            domain_mod.Timer(name='hpet', present=False)])
        self.assertFalse(clock.timer('hpet').present)
        self.assertEqual('delay', clock.timer('pit').tickpolicy)
        features = domain_mod.Features(acpi=True, hyperv=domain_mod.HyperV(
            relaxed=True, spinlocks=True, spinlocks_retries=8191))
        self.assertEqual('on', features.element.find(
            'hyperv/relaxed').get('state'))
        self.assertEqual('8191', features.element.find(
            'hyperv/spinlocks').get('retries'))


class SerializationTest(base.BaseTestCase):

    PRETTY = ('<domain type="kvm">\n  <name>a</name>\n  <devices>\n'
              '    <disk type="file">\n      <target dev="vda"/>\n'
              '    </disk>\n  </devices>\n</domain>')

    def _snapshot(self, element):
        return etree.tostring(element.getroottree())

    def test_to_xml_does_not_change_the_stored_tree(self):
        odd = '<domain>\n<name>a</name>   <uuid>u</uuid></domain>'
        compact = self.PRETTY.replace('\n', '').replace('  ', '')
        for text in (self.PRETTY, compact, odd):
            dom = xml.parse(text)
            before = self._snapshot(dom.element)
            dom.to_xml()
            dom.to_xml(pretty=False)
            dom.disks[0].to_xml() if len(dom.disks) else None
            repr(dom)
            self.assertEqual(before, self._snapshot(dom.element), text)
        dom = xml.Domain(name='a', vcpu=1)
        before = self._snapshot(dom.element)
        dom.to_xml()
        self.assertEqual(before, self._snapshot(dom.element))

    def test_pretty_output_is_the_same_whatever_the_input_layout(self):
        compact = xml.parse(self.PRETTY.replace('\n', '').replace('  ', ''))
        pretty = xml.parse(self.PRETTY)
        self.assertEqual(self.PRETTY, compact.to_xml())
        self.assertEqual(self.PRETTY, pretty.to_xml())
        self.assertNotIn('\n', pretty.to_xml(pretty=False))
        self.assertEqual('<disk type="file">\n  <target dev="vda"/>\n</disk>',
                         pretty.disks[0].to_xml())

    def test_edited_leaf_with_whitespace_is_indented(self):
        dom = xml.parse('<domain>\n  <devices>\n  </devices>\n</domain>')
        dom.devices.append(devices.Input(type='tablet'))
        self.assertEqual('<domain>\n  <devices>\n    <input type="tablet"/>\n'
                         '  </devices>\n</domain>', dom.to_xml())

    def test_whitespace_before_cdata_is_content(self):
        text = ('<domain><description>  <![CDATA[<x>]]></description>'
                '<name>a</name></domain>')
        dom = xml.parse(text)
        self.assertEqual('  <x>', dom.description)
        self.assertEqual(xml.canonical(etree.fromstring(text)),
                         xml.canonical(etree.fromstring(dom.to_xml())))

    def test_top_level_comments_are_kept(self):
        dom = xml.parse('<!-- a --><domain><name>a</name></domain>')
        self.assertEqual('<!-- a -->\n<domain>\n  <name>a</name>\n</domain>',
                         dom.to_xml())


class LiveTreeTest(base.BaseTestCase):
    """Reads always reflect the tree, whatever edited it."""

    TEXT = ("<domain type='kvm'><name>a</name><uuid>u</uuid><devices>"
            "<disk type='file'><driver name='qemu'/><target dev='vda'/>"
            "</disk></devices></domain>")

    def test_raw_edits_are_seen_by_typed_reads(self):
        for dom in (xml.parse(self.TEXT), xml.Domain.from_xml(self.TEXT),
                    xml.Domain.wrap(etree.fromstring(self.TEXT))):
            disk = dom.disks[0]
            self.assertEqual('qemu', disk.driver_name)
            # A new first <driver> wins; removing it brings the old back.
            other = etree.Element('driver', name='other')
            disk.element.insert(0, other)
            self.assertEqual('other', disk.driver_name)
            disk.element.remove(other)
            self.assertEqual('qemu', disk.driver_name)
            disk.element.find('driver').tag = 'old-driver'
            self.assertIsNone(disk.driver_name)
            disk.element.find('old-driver').tag = 'driver'
            disk.element.find('driver').set('name', 'tcg')
            self.assertEqual('tcg', disk.driver_name)
            # Root children: many siblings, removed and re-added.
            root = dom.element
            for i in range(12):
                root.insert(1, etree.Element('x%d' % i))
            self.assertEqual('a', dom.name)
            root.remove(root.find('name'))
            self.assertIsNone(dom.name)
            root.append(etree.Element('name'))
            root[-1].text = 'b'
            self.assertEqual('b', dom.name)
            root.find('devices').append(etree.Element('disk', type='block'))
            self.assertEqual(['file', 'block'], [d.type for d in dom.disks])
            root.remove(root.find('devices'))
            self.assertEqual([], list(dom.disks))
            dom.disks.append(devices.Disk(type='file'))
            self.assertEqual(1, len(dom.element.findall('devices/disk')))

    def test_typed_edits_after_raw_edits(self):
        dom = xml.parse(self.TEXT)
        dom.element.insert(0, etree.Element('name'))
        dom.name = 'first'
        self.assertEqual(['first', 'a'],
                         [e.text for e in dom.element.findall('name')])
        del dom.name
        self.assertEqual(['a'],
                         [e.text for e in dom.element.findall('name')])


class ConstructionTest(base.BaseTestCase):

    def test_keywords_and_assignments_build_the_same_tree(self):
        def values():
            return [('type', 'network'), ('serial', 's1'),
                    ('driver_name', 'q'), ('source_protocol', 'rbd'),
                    ('target_dev', 'vdb'), ('driver_cache', 'none'),
                    ('boot_order', 2), ('readonly', True),
                    ('source_hosts', [devices.DiskSourceHost(name='h')]),
                    ('driver_type', 'raw'), ('model', None), ('alias', 'a')]
        built = devices.Disk(**dict(values()))
        assigned = devices.Disk()
        for name, value in values():
            setattr(assigned, name, value)
        self.assertEqual(assigned.to_xml(), built.to_xml())
        self.assertEqual(['driver', 'source', 'target', 'readonly', 'serial',
                          'boot', 'alias'], [c.tag for c in built.element])

    def test_keyword_errors_name_the_field(self):
        exc = self.assertRaises(xml.XMLValueError, devices.Disk,
                                boot_order='x')
        self.assertIn('Disk.boot_order', str(exc))
        exc = self.assertRaises(xml.XMLValueError, devices.Disk,
                                driver_cache='sometimes')
        self.assertIn('Disk.driver_cache', str(exc))
        exc = self.assertRaises(xml.XMLValueError, devices.Input,
                                type='joystick')
        self.assertIn('Input.type', str(exc))
        exc = self.assertRaises(xml.XMLValueError, devices.Disk,
                                readonly='yes')
        self.assertIn('Disk.readonly', str(exc))
        exc = self.assertRaises(xml.XMLValueError, xml.Domain,
                                memory_kib='lots')
        self.assertIn('Domain.memory_kib', str(exc))
        self.assertIsNone(devices.Disk(readonly=False).element.find(
            'readonly'))

    def test_keywords_for_properties_and_late_fields(self):
        class Thing(xml.XMLObject):
            TAG = 'thing'
            size = xml.fields.Field('@size', xml.fields.INT)

            @property
            def double(self):
                return self.size * 2

            @double.setter
            def double(self, value):
                self.size = value // 2

        self.assertEqual('<thing size="3"/>', Thing(double=6).to_xml())
        Thing.colour = xml.fields.Field('./colour')
        self.assertEqual('<thing>\n  <colour>red</colour>\n</thing>',
                         Thing(colour='red').to_xml())
        self.assertRaises(TypeError, Thing, shape='round')

    def test_placement_among_unknown_siblings_and_comments(self):
        disk = devices.Disk.wrap(etree.fromstring(
            '<disk><gizmo/><!--c--><target dev="vda"/></disk>'))
        disk.driver_name = 'qemu'
        disk.serial = 'x'
        self.assertEqual(['gizmo', 'c', 'driver', 'target', 'serial'],
                         [c.tag if isinstance(c.tag, str) else c.text
                          for c in disk.element])

    def test_namespaced_children_declare_the_prefix_once(self):
        dom = xml.Domain(name='x')
        dom.nova_instance = domain_mod.NovaInstance(
            name='vm', owner=domain_mod.NovaOwner(user_uuid='u'))
        dom.nova_instance.flavor = domain_mod.NovaFlavor(name='f', vcpus=1)
        out = dom.to_xml()
        self.assertEqual(1, out.count('xmlns:nova='))
        self.assertIn('<nova:vcpus>1</nova:vcpus>', out)

    def test_integers(self):
        dom = xml.parse('<domain><vcpu> 0x10 </vcpu><iothreads> 3 '
                        '</iothreads></domain>')
        self.assertEqual(16, dom.vcpu)
        self.assertEqual(3, dom.iothreads)
        dom.vcpu = 4
        self.assertEqual('4', dom.element.findtext('vcpu'))
        self.assertRaises(xml.XMLValueError, setattr, dom, 'vcpu', True)


class VirtualportParametersTest(base.BaseTestCase):

    def test_read_write_clear(self):
        nic = devices.Interface(type='bridge', virtualport_type='openvswitch')
        self.assertIsNone(nic.virtualport_interfaceid)
        nic.virtualport_interfaceid = 'i1'
        nic.virtualport_profileid = 'p'
        self.assertEqual({'interfaceid': 'i1', 'profileid': 'p'},
                         dict(nic.element.find('virtualport/parameters')
                              .attrib))
        self.assertEqual('i1', nic.virtualport_interfaceid)
        nic.virtualport_interfaceid = None
        self.assertEqual({'profileid': 'p'},
                         dict(nic.element.find('virtualport/parameters')
                              .attrib))
        nic.virtualport_profileid = None
        self.assertIsNone(nic.element.find('virtualport/parameters'))
        self.assertEqual('openvswitch', nic.virtualport_type)
        self.assertRaises(xml.XMLValueError, setattr, nic,
                          'virtualport_managerid', 'x=y')
