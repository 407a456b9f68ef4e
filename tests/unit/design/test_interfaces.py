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

"""``<interface>`` design from Neutron ports (nova VIFs), per vif_type.

Each test designs a whole domain with the port, asserts the interface's
values and has libvirt's Relax-NG schema accept the domain.
"""

from lxml import etree

from nova_pyvirt import exception
from tests import design_support as support
from tests.unit.design import test_guest
from tests.unit.design import test_undescribed_host

PORT_ID = support.PORT_ID
OTHER_ID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'
MAC = support.MAC
TAP = support.TAP
vif = support.vif


class InterfaceDesignTest(test_guest.DesignTestCase):

    def nic(self, port, flavor_=None, image=None):
        design = self.design(network_info=[port], flavor_=flavor_,
                             image=image)
        text = design.domain.to_xml()
        test_undescribed_host.validate(text)
        doc = etree.fromstring(text.encode())
        found = doc.findall('./devices/interface')
        self.assertEqual(1, len(found))
        return found[0]

    def test_ovs_direct(self):
        nic = self.nic(vif('ovs'))
        self.assertEqual('bridge', nic.get('type'))
        self.assertEqual(MAC, nic.find('mac').get('address'))
        self.assertEqual('br-int', nic.find('source').get('bridge'))
        self.assertEqual('openvswitch', nic.find('virtualport').get('type'))
        self.assertEqual(PORT_ID, nic.find('virtualport/parameters').get(
            'interfaceid'))
        self.assertEqual(TAP, nic.find('target').get('dev'))
        self.assertEqual('tap5e4f6a7b-8c', TAP)
        self.assertIsNone(nic.find('target').get('managed'))
        self.assertEqual('virtio', nic.find('model').get('type'))
        self.assertEqual('1450', nic.find('mtu').get('size'))
        self.assertIsNone(nic.find('driver'))

    def test_ovs_interfaceid_other_than_port_id(self):
        nic = self.nic(vif('ovs', ovs_interfaceid=OTHER_ID))
        self.assertEqual(OTHER_ID, nic.find(
            'virtualport/parameters').get('interfaceid'))

    def test_ovs_hybrid(self):
        nic = self.nic(vif('ovs', hybrid=True))
        self.assertEqual('bridge', nic.get('type'))
        self.assertEqual('qbr5e4f6a7b-8c', nic.find('source').get('bridge'))
        self.assertIsNone(nic.find('virtualport'))
        self.assertEqual(TAP, nic.find('target').get('dev'))
        self.assertEqual(MAC, nic.find('mac').get('address'))
        self.assertEqual('1450', nic.find('mtu').get('size'))

    def test_tap(self):
        nic = self.nic(vif('tap', details={}))
        self.assertEqual('ethernet', nic.get('type'))
        self.assertEqual(TAP, nic.find('target').get('dev'))
        self.assertEqual('no', nic.find('target').get('managed'))
        self.assertIsNone(nic.find('source'))
        self.assertIsNone(nic.find('virtualport'))
        self.assertEqual(MAC, nic.find('mac').get('address'))

    def test_no_mtu_when_network_has_none(self):
        self.assertIsNone(self.nic(vif('ovs', mtu=None)).find('mtu'))

    def test_model_from_image(self):
        nic = self.nic(vif('ovs'),
                       image=support.image_meta(hw_vif_model='e1000'))
        self.assertEqual('e1000', nic.find('model').get('type'))

    def test_model_the_host_lacks_is_refused(self):
        exc = self.assertRaises(
            exception.InvalidImageProperty, self.design,
            image=support.image_meta(hw_vif_model='spapr-vlan'),
            network_info=[vif('ovs')])
        self.assertIn('hw_vif_model', str(exc))

    def test_multiqueue_one_queue_per_vcpu(self):
        nic = self.nic(vif('ovs'), flavor_=support.flavor(vcpus=4),
                       image=support.image_meta(
                           hw_vif_multiqueue_enabled=True))
        self.assertEqual('vhost', nic.find('driver').get('name'))
        self.assertEqual('4', nic.find('driver').get('queues'))

    def test_multiqueue_from_flavor(self):
        nic = self.nic(vif('tap', details={}), flavor_=support.flavor(
            vcpus=3, extra_specs={'hw:vif_multiqueue_enabled': 'true'}))
        self.assertEqual('3', nic.find('driver').get('queues'))

    def test_multiqueue_capped_by_max_queues(self):
        self.conf.set(group='libvirt', max_queues=2)
        nic = self.nic(vif('ovs'), flavor_=support.flavor(vcpus=8),
                       image=support.image_meta(
                           hw_vif_multiqueue_enabled=True))
        self.assertEqual('2', nic.find('driver').get('queues'))

    def test_multiqueue_needs_two_vcpus_and_virtio(self):
        nic = self.nic(vif('ovs'), flavor_=support.flavor(vcpus=1),
                       image=support.image_meta(
                           hw_vif_multiqueue_enabled=True))
        self.assertIsNone(nic.find('driver'))
        nic = self.nic(vif('ovs'), flavor_=support.flavor(vcpus=4),
                       image=support.image_meta(
                           hw_vif_multiqueue_enabled=True,
                           hw_vif_model='e1000'))
        self.assertIsNone(nic.find('driver'))

    def test_unsupported_vif_type_names_port_and_type(self):
        for vif_type in ('bridge', 'vhostuser', 'hw_veb', 'binding_failed'):
            with self.subTest(vif_type=vif_type):
                exc = self.assertRaises(
                    exception.UnsupportedVifType, self.design,
                    network_info=[vif(vif_type)])
                self.assertIn(PORT_ID, str(exc))
                self.assertIn(vif_type, str(exc))

    def test_two_ports_in_order(self):
        second = vif('tap', id='port-2', address='fa:16:3e:00:00:02',
                     devname='tapport-2', details={})
        design = self.design(network_info=[vif('ovs'), second])
        test_undescribed_host.validate(design.domain.to_xml())
        doc = etree.fromstring(design.domain.to_xml().encode())
        self.assertEqual(
            [MAC, 'fa:16:3e:00:00:02'],
            [n.get('address') for n in doc.findall(
                './devices/interface/mac')])
