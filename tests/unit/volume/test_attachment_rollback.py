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

"""Volume connections when attaching fails: nothing stays connected.

The volume drivers are :class:`~tests.unit.virt_fakes.VolumeBackend`'s,
which record every connect and disconnect; the guest is a real
:class:`Guest` over a :class:`~tests.unit.virt_fakes.FakeDomain` whose
``attachDeviceFlags`` can fail like libvirt's.
"""

import libvirt
from oslotest import base

from nova import exception

from nova_pyvirt.volume import attachment
from tests import design_support
from tests.unit import virt_fakes

VOL_A = 'c0000000-0000-4000-8000-00000000000a'
VOL_B = 'c0000000-0000-4000-8000-00000000000b'
VOL_C = 'c0000000-0000-4000-8000-00000000000c'
INSTANCE = design_support.instance()


class VolumesRollbackTest(base.BaseTestCase):
    """attachment.Volumes on its own."""

    def setUp(self):
        super().setUp()
        self.backend = virt_fakes.VolumeBackend()
        self.useFixture(self.backend.registered())
        conf = self.useFixture(design_support.ConfFixture()).conf
        self.volumes = attachment.Volumes(conf, virt_fakes.FakeHost())

    def info(self, vol_id):
        return virt_fakes.VolumeBackend.connection_info(vol_id)

    def test_disk_source_fails_after_connecting(self):
        error = exception.DiskNotFound(location='/dev/sdx')
        self.backend.fail[('disk_source', VOL_A)] = error

        raised = self.assertRaises(
            exception.DiskNotFound, self.volumes.connect,
            self.info(VOL_A), INSTANCE)

        self.assertIs(error, raised)
        self.assertEqual([('connect', VOL_A), ('disconnect', VOL_A)],
                         self.backend.journal)
        self.assertEqual(set(), self.backend.connected)

    def test_connect_fails(self):
        error = exception.VolumeNotFound(volume_id=VOL_A)
        self.backend.fail[('connect', VOL_A)] = error

        raised = self.assertRaises(exception.VolumeNotFound,
                                   self.volumes.connect, self.info(VOL_A),
                                   INSTANCE)

        self.assertIs(error, raised)
        self.assertEqual([('connect', VOL_A)], self.backend.journal)

    def test_connect_all_undoes_the_earlier_volumes(self):
        error = exception.VolumeNotFound(volume_id=VOL_C)
        self.backend.fail[('connect', VOL_C)] = error
        bdi = virt_fakes.VolumeBackend.block_device_info(VOL_A, VOL_B, VOL_C)

        raised = self.assertRaises(exception.VolumeNotFound,
                                   self.volumes.connect_all, bdi, INSTANCE)

        self.assertIs(error, raised)
        self.assertEqual([('connect', VOL_A), ('connect', VOL_B),
                          ('connect', VOL_C), ('disconnect', VOL_A),
                          ('disconnect', VOL_B)], self.backend.journal)
        self.assertEqual(set(), self.backend.connected)

    def test_connect_all_rollback_survives_a_failing_disconnect(self):
        error = exception.VolumeNotFound(volume_id=VOL_C)
        self.backend.fail[('connect', VOL_C)] = error
        self.backend.fail[('disconnect', VOL_A)] = RuntimeError('logout')
        bdi = virt_fakes.VolumeBackend.block_device_info(VOL_A, VOL_B, VOL_C)

        raised = self.assertRaises(exception.VolumeNotFound,
                                   self.volumes.connect_all, bdi, INSTANCE)

        self.assertIs(error, raised)
        self.assertEqual({VOL_A}, self.backend.connected)
        self.assertIn(('disconnect', VOL_B), self.backend.journal)

    def test_disconnect_all_goes_on_after_a_failure(self):
        bdi = virt_fakes.VolumeBackend.block_device_info(VOL_A, VOL_B)
        self.volumes.connect_all(bdi, INSTANCE)
        self.backend.fail[('disconnect', VOL_A)] = RuntimeError('logout')

        self.volumes.disconnect_all(bdi, INSTANCE)

        self.assertEqual({VOL_A}, self.backend.connected)


class DriverAttachRollbackTest(base.BaseTestCase):
    """PyVirtDriver.attach_volume and detach_volume."""

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(virt_fakes.DriverFixture())
        self.instance = self.fx.instance()
        self.domain = self.fx.host.add(self.instance.uuid, active=True)
        self.info = virt_fakes.VolumeBackend.connection_info(VOL_A)
        self.backend = self.fx.volumes

    def attach(self, **kw):
        self.fx.driver.attach_volume(self.fx.context, self.info,
                                     self.instance, '/dev/vdb',
                                     disk_bus='virtio', **kw)

    def detach(self):
        self.fx.driver.detach_volume(self.fx.context, self.info,
                                     self.instance, '/dev/vdb')

    def test_success(self):
        self.attach()
        self.assertEqual({VOL_A}, self.backend.connected)
        self.assertEqual(1, len(self.domain.devices))
        self.assertIn(VOL_A, self.domain.devices[0])

    def test_encrypted_volume_is_refused_before_connecting(self):
        self.assertRaises(exception.VolumeEncryptionNotSupported,
                          self.attach, encryption={'provider': 'luks'})
        self.assertEqual([], self.backend.journal)
        self.assertEqual([], self.domain.calls)

    def test_missing_guest_is_found_before_connecting(self):
        self.domain.defined = False
        self.assertRaises(exception.InstanceNotFound, self.attach)
        self.assertEqual([], self.backend.journal)

    def test_connect_fails(self):
        error = exception.VolumeNotFound(volume_id=VOL_A)
        self.backend.fail[('connect', VOL_A)] = error

        raised = self.assertRaises(exception.VolumeNotFound, self.attach)

        self.assertIs(error, raised)
        self.assertEqual([('connect', VOL_A)], self.backend.journal)
        self.assertNotIn('attachDeviceFlags', self.domain.calls)

    def test_libvirt_refuses_the_device(self):
        self.domain.attach_error = virt_fakes.libvirt_error(
            'unable to open /dev/fake: permission denied')

        raised = self.assertRaises(exception.VolumeAttachFailed, self.attach)

        self.assertIn('unable to open /dev/fake: permission denied',
                      str(raised))
        self.assertIn(VOL_A, str(raised))
        self.assertEqual([('connect', VOL_A), ('disconnect', VOL_A)],
                         self.backend.journal)
        self.assertEqual([], self.domain.devices)
        # The guest itself is left as it was.
        self.assertTrue(self.domain.active)
        self.assertTrue(self.domain.defined)

    def test_other_errors_are_reraised_as_they_came(self):
        error = RuntimeError('no domain capabilities')
        self.fx.host.get_domain_capabilities = self._raise(error)

        raised = self.assertRaises(RuntimeError, self.attach)

        self.assertIs(error, raised)
        self.assertEqual(set(), self.backend.connected)
        self.assertIn(('disconnect', VOL_A), self.backend.journal)
        self.assertNotIn('attachDeviceFlags', self.domain.calls)

    def test_attach_flags_follow_the_guest_state(self):
        calls = []
        self.domain.attachDeviceFlags = lambda xml, flags: calls.append(
            flags)
        self.attach()
        self.domain.active = False
        self.attach()
        self.assertEqual([libvirt.VIR_DOMAIN_AFFECT_LIVE |
                          libvirt.VIR_DOMAIN_AFFECT_CONFIG,
                          libvirt.VIR_DOMAIN_AFFECT_CONFIG], calls)

    def test_detach_that_times_out_keeps_the_connection(self):
        self.fx.conf.set(live_device_detach_timeout=1)
        self.attach()
        self.fx.host.device_removed = lambda uuid, alias: False

        self.assertRaises(exception.DeviceDetachFailed, self.detach)

        # The guest may still write to it: the host must not let go.
        self.assertEqual({VOL_A}, self.backend.connected)
        self.assertNotIn(('disconnect', VOL_A), self.backend.journal)

    def test_detach_from_a_deleted_guest_still_disconnects(self):
        self.attach()
        self.domain.defined = False

        self.detach()

        self.assertEqual(set(), self.backend.connected)

    @staticmethod
    def _raise(error):
        def fail(*args, **kw):
            raise error
        return fail
