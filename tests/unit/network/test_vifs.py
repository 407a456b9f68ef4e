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

"""The network package's plugging, with os-vif's plug/unplug recorded.

nova's converter runs for real, so these tests see the os-vif objects the
ovs plugin would get; only the calls that need root (os-vif's plug and
unplug, nova's tap privsep) are replaced.
"""

from unittest import mock

import fixtures
from oslotest import base

from nova.network import model as network_model
from nova.network import os_vif_util
from os_vif import objects as osv_objects

from nova_pyvirt import exception
from nova_pyvirt.network import vifs
from tests import design_support as support

PORT_ID = support.PORT_ID


class Recorder(object):
    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def plug(self, vif, info):
        self.calls.append(('plug', vif.id, type(vif).__name__, info.uuid))
        if vif.id == self.fail_on:
            raise RuntimeError('plug of %s failed' % vif.id)

    def unplug(self, vif, info):
        self.calls.append(('unplug', vif.id, type(vif).__name__, info.uuid))


class VifsTest(base.BaseTestCase):

    def setUp(self):
        super(VifsTest, self).setUp()
        self.useFixture(support.ConfFixture())
        # os_vif.initialize() registers these; it is replaced below.
        osv_objects.register_all()
        self.instance = support.instance(flavor=support.flavor())
        self.recorder = Recorder()
        self.useFixture(fixtures.MockPatch('os_vif.plug', self.recorder.plug))
        self.useFixture(fixtures.MockPatch('os_vif.unplug',
                                           self.recorder.unplug))
        self.init = self.useFixture(
            fixtures.MockPatch('os_vif.initialize')).mock
        self.useFixture(fixtures.MockPatchObject(vifs, '_initialized',
                                                 False))
        self.create_tap = self.useFixture(fixtures.MockPatch(
            'nova.privsep.linux_net.create_tap_dev')).mock
        self.delete_dev = self.useFixture(fixtures.MockPatch(
            'nova.privsep.linux_net.delete_net_dev')).mock
        self.vifs = vifs.Vifs()

    def port(self, n, vif_type='ovs', hybrid=False):
        pid = '%08d-0000-4000-8000-000000000000' % n
        return support.vif(
            vif_type, hybrid=hybrid, id=pid, ovs_interfaceid=pid,
            devname=('tap' + pid)[:network_model.NIC_NAME_LEN],
            address='fa:16:3e:00:00:%02x' % n)

    def test_direct_ovs_goes_to_os_vif_as_vif_openvswitch(self):
        port = self.port(1)
        self.vifs.plug_all(self.instance, [port])
        self.assertEqual([('plug', port['id'], 'VIFOpenVSwitch',
                           self.instance.uuid)], self.recorder.calls)
        self.init.assert_called_once_with()

    def test_hybrid_ovs_goes_to_os_vif_as_vif_bridge(self):
        port = self.port(1, hybrid=True)
        self.vifs.plug_all(self.instance, [port])
        self.assertEqual('VIFBridge', self.recorder.calls[0][2])

    def test_converter_output(self):
        # What os-vif's ovs plugin is given: bridge, port id, delegation.
        obj = os_vif_util.nova_to_osvif_vif(self.port(1))
        self.assertIsInstance(obj, osv_objects.vif.VIFOpenVSwitch)
        self.assertEqual('br-int', obj.network.bridge)
        self.assertEqual(self.port(1)['id'], obj.port_profile.interface_id)
        self.assertTrue(obj.port_profile.create_port)
        hybrid = os_vif_util.nova_to_osvif_vif(self.port(1, hybrid=True))
        self.assertEqual('qbr00000001-00', hybrid.bridge_name)

    def test_os_vif_initialized_once(self):
        self.vifs.plug_all(self.instance, [self.port(1), self.port(2)])
        self.vifs.unplug_all(self.instance, [self.port(1)])
        self.init.assert_called_once_with()

    def test_tap_created_and_deleted_by_name(self):
        port = self.port(3, 'tap')
        self.vifs.plug_all(self.instance, [port], support.image_meta())
        self.create_tap.assert_called_once_with(
            port['devname'], port['address'], multiqueue=False)
        self.vifs.unplug_all(self.instance, [port])
        self.delete_dev.assert_called_once_with(port['devname'])
        self.assertEqual([], self.recorder.calls)

    def test_tap_multiqueue(self):
        port = self.port(3, 'tap')
        self.instance.flavor = support.flavor(vcpus=4)
        self.vifs.plug_all(self.instance, [port], support.image_meta(
            hw_vif_multiqueue_enabled=True))
        self.create_tap.assert_called_once_with(
            port['devname'], port['address'], multiqueue=True)

    def test_unsupported_type_refused_before_anything_is_plugged(self):
        bad = self.port(2, 'vhostuser')
        exc = self.assertRaises(
            exception.UnsupportedVifType, self.vifs.plug_all,
            self.instance, [self.port(1), bad, self.port(3, 'tap')])
        self.assertIn(bad['id'], str(exc))
        self.assertIn('vhostuser', str(exc))
        self.assertEqual([], self.recorder.calls)
        self.create_tap.assert_not_called()
        self.init.assert_not_called()

    def test_failure_midway_unplugs_earlier_ports_in_reverse(self):
        ports = [self.port(1), self.port(2, hybrid=True), self.port(3)]
        self.recorder.fail_on = ports[2]['id']
        self.assertRaises(RuntimeError, self.vifs.plug_all, self.instance,
                          ports)
        self.assertEqual(
            [('plug', ports[0]['id']), ('plug', ports[1]['id']),
             ('plug', ports[2]['id']), ('unplug', ports[1]['id']),
             ('unplug', ports[0]['id'])],
            [c[:2] for c in self.recorder.calls])

    def test_unplug_all_goes_on_past_a_failure(self):
        ports = [self.port(1), self.port(2)]
        calls = []

        def unplug(vif, info):
            calls.append(vif.id)
            if len(calls) == 1:
                raise RuntimeError('boom')
        with mock.patch('os_vif.unplug', unplug):
            self.vifs.unplug_all(self.instance, ports)
        self.assertEqual([ports[0]['id'], ports[1]['id']], calls)

    def test_unplug_skips_types_never_plugged(self):
        self.vifs.unplug_all(self.instance, [self.port(1, 'vhostuser')])
        self.assertEqual([], self.recorder.calls)
        self.delete_dev.assert_not_called()
