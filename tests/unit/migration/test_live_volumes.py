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

"""What a live migration gives the destination: its volumes and ports.

The volume drivers are the real iSCSI one: the ``kernel`` transport (a
block device whose path differs per host) and the ``qemu`` transport
(QEMU's client, with the portal each host chose and a CHAP secret named
by usage). Through the driver, on fake domains, the destination's
connections travel in ``migrate_data.bdms`` and reach ``migrateToURI3``.
"""

import types
from unittest import mock

import libvirt
from lxml import etree
from oslotest import base

from nova import exception
from nova.network import model as network_model
from nova import objects
from nova.objects import migrate_data as migrate_data_obj

from nova_pyvirt.migration import live_ports
from nova_pyvirt.migration import live_volumes
from nova_pyvirt.volume import iscsi
from tests import design_support
from tests.unit import virt_fakes

VOL = '3c1d2b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d'
IQN = 'iqn.2010-10.org.openstack:volume-%s' % VOL
INSTANCE = types.SimpleNamespace(uuid='11111111-2222-4333-8444-555555555555')
SOURCE_PATH = '/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-%s-lun-1' % IQN
DEST_PATH = '/dev/disk/by-path/ip-192.0.2.11:3260-iscsi-%s-lun-1' % IQN

GUEST = """<domain type='qemu'>
  <name>instance-00000001</name>
  <uuid>%s</uuid>
  <memory unit='KiB'>131072</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/nova/instances/x/disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='%%s' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      %%s
      <target dev='vdb' bus='virtio'/>
      <serial>%s</serial>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05'
               function='0x0'/>
    </disk>
  </devices>
</domain>""" % (INSTANCE.uuid, VOL)


def _info(**data):
    values = {'target_portal': '192.0.2.10:3260', 'target_iqn': IQN,
              'target_lun': 1, 'volume_id': VOL}
    values.update(data)
    return {'driver_volume_type': 'iscsi', 'serial': VOL, 'data': values}


def _bdm(info):
    return live_volumes.destination_bdms({'block_device_mapping': [{
        'connection_info': info, 'mount_device': '/dev/vdb',
        'disk_bus': 'virtio', 'device_type': 'disk', 'boot_index': None}]})


def _volume_disk(xml_text):
    root = etree.fromstring(xml_text.encode())
    return [d for d in root.findall('./devices/disk')
            if d.findtext('serial') == VOL][0]


class DestinationXMLTest(base.BaseTestCase):

    def _driver(self, transport):
        conf = self.useFixture(design_support.ConfFixture())
        conf.set(iscsi_transport=transport)
        return iscsi.ISCSIVolumeDriver(conf.conf, mock.Mock())

    def _rewrite(self, guest, bdms, transport):
        driver = self._driver(transport)
        return live_volumes.destination_xml(
            guest, bdms, lambda info: driver.disk_source(info, INSTANCE))

    def test_bdm_info_carries_the_destination_connection(self):
        bdms = _bdm(_info(device_path=DEST_PATH))
        self.assertEqual(1, len(bdms))
        self.assertEqual((VOL, 'virtio', 'vdb', 'disk'), (
            bdms[0].serial, bdms[0].bus, bdms[0].dev, bdms[0].type))
        self.assertEqual(DEST_PATH,
                         bdms[0].connection_info['data']['device_path'])
        # It travels between the hosts as nova's object.
        data = migrate_data_obj.LibvirtLiveMigrateData(bdms=bdms)
        again = migrate_data_obj.LibvirtLiveMigrateData.obj_from_primitive(
            data.obj_to_primitive())
        self.assertEqual(DEST_PATH, again.bdms[0].connection_info['data'][
            'device_path'])

    def test_kernel_device_path_of_the_destination(self):
        guest = GUEST % ('block', "<source dev='%s'/>" % SOURCE_PATH)
        result = self._rewrite(guest, _bdm(_info(device_path=DEST_PATH)),
                               'kernel')
        disk = _volume_disk(result)
        self.assertEqual('block', disk.get('type'))
        self.assertEqual(DEST_PATH, disk.find('source').get('dev'))
        # The guest's side of the disk is untouched.
        self.assertEqual('vdb', disk.find('target').get('dev'))
        self.assertEqual('0x05', disk.find('address').get('slot'))
        self.assertEqual('none', disk.find('driver').get('cache'))
        self.assertEqual(['driver', 'source', 'target', 'serial',
                          'address'], [c.tag for c in disk])
        # The local disk is left alone.
        root = etree.fromstring(result.encode())
        self.assertEqual('/var/lib/nova/instances/x/disk', root.find(
            './devices/disk/source').get('file'))

    def test_qemu_portal_the_destination_chose_and_chap(self):
        source = ("<source protocol='iscsi' name='%s/1'>"
                  "<host name='192.0.2.10' port='3260'/>"
                  "<auth username='user'><secret type='iscsi' usage='u'/>"
                  "</auth></source>" % IQN)
        guest = GUEST % ('network', source)
        info = _info(target_portals=['192.0.2.10:3260', '192.0.2.11:3260'],
                     target_iqns=[IQN, IQN], target_luns=[1, 1],
                     auth_method='CHAP', auth_username='user',
                     auth_password='secret-password')
        info['data'][iscsi.PORTAL_KEY] = '192.0.2.11:3260'
        result = self._rewrite(guest, _bdm(info), 'qemu')
        disk = _volume_disk(result)
        self.assertEqual('network', disk.get('type'))
        self.assertEqual([('192.0.2.11', '3260')], [
            (h.get('name'), h.get('port'))
            for h in disk.findall('source/host')])
        secret = disk.find('source/auth/secret')
        self.assertEqual(('iscsi', 'nova-pyvirt:iscsi:%s:%s' % (
            VOL, INSTANCE.uuid)), (secret.get('type'), secret.get('usage')))
        self.assertNotIn('secret-password', result)

    def test_file_source_becomes_a_block_device(self):
        # Another host's connection may be another kind of source.
        guest = GUEST % ('file', "<source file='/mnt/nfs/volume-%s'/>" % VOL)
        disk = _volume_disk(self._rewrite(
            guest, _bdm(_info(device_path=DEST_PATH)), 'kernel'))
        self.assertEqual('block', disk.get('type'))
        self.assertEqual({'dev': DEST_PATH}, dict(disk.find('source').attrib))

    def test_volume_without_a_disk_is_refused(self):
        guest = GUEST % ('block', "<source dev='%s'/>" % SOURCE_PATH)
        other = _info(device_path=DEST_PATH)
        other['serial'] = other['data']['volume_id'] = 'other-volume'
        exc = self.assertRaises(exception.MigrationError, self._rewrite,
                                guest, _bdm(other), 'kernel')
        self.assertIn('other-volume', str(exc))


class DriverVolumeMigrationTest(virt_fakes.VolumeBootedTestCase):
    """pre_live_migration hands the connections back; the source uses them."""

    def _data(self):
        data = migrate_data_obj.LibvirtLiveMigrateData(
            block_migration=False, target_connect_addr='127.0.0.3',
            is_shared_instance_path=True, is_shared_block_storage=True,
            filename='', disk_over_commit=False)
        data.migration = objects.Migration()
        return data

    def _spawn(self):
        self.driver.spawn(self.fx.context, self.instance,
                          self.instance.image_meta, [], None, {},
                          network_info=[], block_device_info=self.bdi)
        domain = self.fx.host.domains[self.instance.uuid]
        # The fake's XML shows attached devices: the two volumes' disks.
        for vol, dev in ((virt_fakes.VOL_BOOT, 'vdb'),
                         (virt_fakes.VOL_DATA, 'vdc')):
            domain.devices.append(
                "<disk type='block' device='disk'><source dev='/dev/src-%s'/>"
                "<target dev='%s' bus='virtio'/><serial>%s</serial></disk>"
                % (vol, dev, vol))
        return domain

    def test_destination_sources_reach_libvirt(self):
        domain = self._spawn()
        data = self.driver.pre_live_migration(
            self.fx.context, self.instance, self.bdi, [], '[]', self._data())
        self.assertEqual([virt_fakes.VOL_BOOT, virt_fakes.VOL_DATA],
                         [b.serial for b in data.bdms])
        post, recover = mock.Mock(), mock.Mock()
        self.driver.live_migration(self.fx.context, self.instance, 'host2',
                                   post, recover, False, data)
        recover.assert_not_called()
        post.assert_called_once()
        _name, _uri, params, _flags = [c for c in domain.calls
                                       if c[0] == 'migrateToURI3'][0]
        dest_xml = params[libvirt.VIR_MIGRATE_PARAM_DEST_XML]
        self.assertEqual(dest_xml,
                         params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML])
        root = etree.fromstring(dest_xml.encode())
        sources = {d.findtext('serial'): d.find('source').get('dev')
                   for d in root.findall('./devices/disk')}
        for vol in (virt_fakes.VOL_BOOT, virt_fakes.VOL_DATA):
            self.assertEqual('/dev/fake/%s' % vol, sources[vol])

    def test_volume_the_guest_lacks_stops_before_anything_moves(self):
        domain = self._spawn()
        data = self.driver.pre_live_migration(
            self.fx.context, self.instance, self.bdi, [], '[]', self._data())
        data.bdms[1].serial = 'not-attached'
        post, recover = mock.Mock(), mock.Mock()
        self.driver.live_migration(self.fx.context, self.instance, 'host2',
                                   post, recover, False, data)
        post.assert_not_called()
        recover.assert_called_once_with(self.fx.context, self.instance,
                                        'host2', data)
        self.assertFalse([c for c in domain.calls
                          if c[0] == 'migrateToURI3'])
        self.assertTrue(domain.isActive())


class DestinationPortsTest(base.BaseTestCase):
    """Ports plugged as bound to the destination (multiple bindings)."""

    def _vif(self, **values):
        vif = {'id': 'port-1', 'address': 'fa:16:3e:00:00:01',
               'type': 'ovs', 'vnic_type': 'normal',
               'details': {'port_filter': True, 'ovs_hybrid_plug': False,
                           'bridge_name': 'br-int'},
               'devname': 'tapport-1', 'profile': {},
               'network': {'id': 'net', 'bridge': 'br-int', 'subnets': [],
                           'meta': {}}}
        vif.update(values)
        return network_model.VIF(**vif)

    def _data(self, dest_details=None, vif_type='ovs'):
        source = self._vif()
        binding = migrate_data_obj.VIFMigrateData(
            port_id='port-1', source_vif=source, vif_type=vif_type,
            vnic_type='normal', host='host2')
        binding.vif_details = dest_details or source['details']
        binding.profile = {}
        return migrate_data_obj.LibvirtLiveMigrateData(vifs=[binding])

    def test_destination_binding_is_plugged(self):
        details = {'port_filter': True, 'ovs_hybrid_plug': False,
                   'bridge_name': 'br-int', 'datapath_type': 'netdev'}
        vifs = live_ports.destination_vifs([self._vif()],
                                           self._data(details))
        self.assertEqual(['port-1'], [v['id'] for v in vifs])
        self.assertEqual('netdev', vifs[0]['details']['datapath_type'])

    def test_without_bindings_network_info_is_plugged(self):
        network_info = [self._vif()]
        self.assertIs(network_info, live_ports.destination_vifs(
            network_info, migrate_data_obj.LibvirtLiveMigrateData()))
        self.assertIs(network_info, live_ports.destination_vifs(
            network_info, None))

    def test_same_interface_passes(self):
        live_ports.check_same_interfaces(self._data())

    def test_another_interface_is_refused_naming_the_port(self):
        exc = self.assertRaises(
            exception.MigrationError, live_ports.check_same_interfaces,
            self._data({'port_filter': True, 'ovs_hybrid_plug': True,
                        'bridge_name': 'br-int'}))
        self.assertIn('port port-1', str(exc))
        self.assertIn('details', str(exc))
        exc = self.assertRaises(
            exception.MigrationError, live_ports.check_same_interfaces,
            self._data(vif_type='tap'))
        self.assertIn('type: ovs here, tap there', str(exc))

    def test_no_ports_no_question_to_neutron(self):
        data = migrate_data_obj.LibvirtLiveMigrateData()
        instance = mock.Mock()
        instance.get_network_info.return_value = network_model.NetworkInfo()
        network_api = mock.Mock()
        live_ports.offer_delegation(data, instance, network_api, 'ctx')
        network_api.has_port_binding_extension.assert_not_called()
        self.assertNotIn('vifs', data)

    def test_delegation_is_offered_with_multiple_bindings(self):
        data = migrate_data_obj.LibvirtLiveMigrateData()
        instance = mock.Mock()
        instance.get_network_info.return_value = network_model.NetworkInfo(
            [self._vif()])
        network_api = mock.Mock()
        network_api.has_port_binding_extension.return_value = False
        live_ports.offer_delegation(data, instance, network_api, 'ctx')
        self.assertNotIn('vifs', data)
        network_api.has_port_binding_extension.return_value = True
        live_ports.offer_delegation(data, instance, network_api, 'ctx')
        network_api.has_port_binding_extension.assert_called_with('ctx')
        self.assertEqual(['port-1'], [v.port_id for v in data.vifs])
        self.assertTrue(data.vifs[0].supports_os_vif_delegation)
