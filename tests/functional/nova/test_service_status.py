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

"""The compute service follows the libvirt connection, as nova's API shows.

The Host layer's own tests kill a real libvirtd and check that the driver's
connection handler is called with ``(False, reason)`` and later
``(True, None)``; here that handler runs inside nova-compute and the result
is read back through nova's os-services API.
"""

from tests.functional.nova import base


class ServiceStatusTest(base.PyVirtTestBase):

    def _service(self):
        services = self.admin_api.get_services(binary='nova-compute',
                                               host=self.COMPUTE_HOST)
        self.assertEqual(1, len(services))
        return services[0]

    def test_connection_loss_disables_and_reconnect_enables(self):
        self.assertEqual('enabled', self._service()['status'])
        reason = 'Connection to libvirt at qemu:///x lost: end of file'

        self.driver._connection_changed(False, reason)
        service = self._service()
        self.assertEqual('disabled', service['status'])
        self.assertEqual('AUTO: ' + reason, service['disabled_reason'])

        self.driver._connection_changed(True, None)
        service = self._service()
        self.assertEqual('enabled', service['status'])
        self.assertIsNone(service['disabled_reason'])

    def test_reconnect_keeps_an_operator_disable(self):
        self.admin_api.put_service(self._service()['id'], {
            'status': 'disabled', 'disabled_reason': 'maintenance'})
        self.driver._connection_changed(False, 'lost')
        self.driver._connection_changed(True, None)
        service = self._service()
        self.assertEqual('disabled', service['status'])
        self.assertEqual('maintenance', service['disabled_reason'])
