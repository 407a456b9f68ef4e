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

"""A libvirtd that stops answering: calls fail in bounded time.

The driver's :class:`~nova_pyvirt.hypervisor.host.Host` holds a TLS
connection to a libvirtd of the test's own
(:class:`tests.fixtures.remote_libvirtd.RemoteLibvirtdFixture`), which is
then stopped with SIGSTOP: its socket stays open and says nothing, as a
hung daemon or a host gone from the network without closing its
connections. libvirt's keepalive probes, which the driver turns on, close
the connection: the call waiting on the daemon fails with libvirt's
keepalive error instead of waiting for ever, and the Host reports the
connection lost; once the daemon runs again the Host connects anew.
"""

import os
import threading
import time

import fixtures
import libvirt
from oslotest import base

from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host as host_mod
from tests.fixtures import pki as pki_fixture
from tests.fixtures import remote_libvirtd

ADDRESS = '127.0.0.3'
#: What libvirt's probes allow, with a margin for a busy machine.
BOUND = connection.KEEPALIVE_INTERVAL * (connection.KEEPALIVE_COUNT + 1) + 15


class KeepaliveTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        reason = remote_libvirtd.unavailable(tls=True)
        if reason:
            self.skipTest(reason)
        self.pki = self.useFixture(pki_fixture.PkiFixture())
        self.daemon = self.useFixture(remote_libvirtd.RemoteLibvirtdFixture(
            address=ADDRESS, pki=self.pki))
        tmp = self.useFixture(fixtures.TempDir()).path
        self.uri = self.daemon.tls_uri(
            self.pki.client_dir(os.path.join(tmp, 'pki')))

    def test_call_to_a_silent_daemon_fails_and_reconnects(self):
        events = []
        host = host_mod.Host(
            self.uri, conn_event_handler=lambda up, why: events.append(
                (up, why)), reconnect_interval=None)
        host.initialize()
        self.addCleanup(host.cleanup)
        self.assertTrue(host.get_hostname())

        results = []

        def call():
            try:
                results.append(host.get_connection().getLibVersion())
            except libvirt.libvirtError as exc:
                results.append(exc)

        self.daemon.pause()
        self.addCleanup(self.daemon.resume)
        started = time.monotonic()
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(BOUND)
        took = time.monotonic() - started
        self.assertFalse(caller.is_alive(),
                         'the call still waits after %d s' % BOUND)
        error = results[0]
        print('call to a stopped libvirtd failed after %.1f s: %s' % (
            took, error))
        self.assertIsInstance(error, libvirt.libvirtError)
        self.assertIn('keepalive', str(error))
        self.assertTrue(connection.is_connection_error(error))
        deadline = time.monotonic() + 10
        while not any(up is False for up, _why in events) and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn('keepalive timeout',
                      [why for up, why in events if up is False][0])

        self.daemon.resume()
        self.assertGreater(host.get_connection().getLibVersion(), 7000000)
