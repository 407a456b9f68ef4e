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

nova-compute's driver is connected over the unix socket of a private
libvirtd (:class:`tests.fixtures.libvirtd.LibvirtdFixture`). The daemon is
stopped by its PID, which closes the connection for real: libvirt reports
the close to the driver, which disables the compute service with the
reason. The daemon is started again; the driver's background reconnection
finds it and enables the service. Both are read back through nova's
os-services API.
"""

import time

from testtools import content

from tests.fixtures import libvirtd as libvirtd_fixture
from tests.functional.nova import base

#: Seconds for the service to follow the connection: the close arrives at
#: once, the background reconnection tries every
#: nova_pyvirt.hypervisor.host.RECONNECT_INTERVAL (10 s).
FOLLOW_TIMEOUT = 60


class ServiceStatusTest(base.PyVirtTestBase):

    def _setup_compute_service(self):
        # Registered before the compute: stopped after it.
        self.libvirtd = self.useFixture(libvirtd_fixture.LibvirtdFixture())
        self.flags(connection_uri=self.libvirtd.uri, group='pyvirt')
        return super()._setup_compute_service()

    def _service(self):
        services = self.admin_api.get_services(binary='nova-compute',
                                               host=self.COMPUTE_HOST)
        self.assertEqual(1, len(services))
        return services[0]

    def _wait_for_service(self, status):
        deadline = time.monotonic() + FOLLOW_TIMEOUT
        while True:
            service = self._service()
            if service['status'] == status:
                return service
            if time.monotonic() > deadline:
                self.fail('compute service not %s within %d s: %s' % (
                    status, FOLLOW_TIMEOUT, service))
            time.sleep(base.POLL)

    def _drop_connection(self):
        """Stop libvirtd by its PID; the driver's connection closes."""
        pid = self.libvirtd.pid
        self.libvirtd.stop()
        self.assertFalse(self.libvirtd.running(), pid)

    def test_connection_loss_disables_and_reconnect_enables(self):
        self.assertEqual(self.libvirtd.uri, self.driver._host.uri)
        self.assertEqual('enabled', self._service()['status'])

        self._drop_connection()

        service = self._wait_for_service('disabled')
        reason = service['disabled_reason']
        self.assertTrue(reason.startswith('AUTO: '), reason)
        self.assertIn(self.libvirtd.uri, reason)
        self.addDetail('disabled_reason', content.text_content(reason))

        self.libvirtd.start()

        service = self._wait_for_service('enabled')
        self.assertIsNone(service['disabled_reason'])
        # The driver talks to the new daemon.
        self.assertEqual(1, self.driver._host.get_connection().isAlive())

    def test_reconnect_keeps_an_operator_disable(self):
        self.admin_api.put_service(self._service()['id'], {
            'status': 'disabled', 'disabled_reason': 'maintenance'})

        self._drop_connection()
        self.libvirtd.start()
        # The reconnection is reported (the driver's log says so) and the
        # operator's reason stays.
        deadline = time.monotonic() + FOLLOW_TIMEOUT
        up = 'libvirt connection to %s is up' % self.libvirtd.uri
        while self.stdlog.logger.output.count(up) < 2:
            if time.monotonic() > deadline:
                self.fail('no reconnection to %s within %d s' % (
                    self.libvirtd.uri, FOLLOW_TIMEOUT))
            time.sleep(base.POLL)

        service = self._service()
        self.assertEqual('disabled', service['status'])
        self.assertEqual('maintenance', service['disabled_reason'])
