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

"""Keepalive probes on the connections the driver opens.

libvirt's own drivers, no daemon: ``test:///default`` has no keepalive
and refuses it, which must not fail the open. A daemon that stops
answering is in ``tests/functional/libvirt/test_connection_keepalive``.
"""

from unittest import mock

import libvirt
from oslotest import base

from nova_pyvirt.hypervisor import connection


class KeepaliveTest(base.BaseTestCase):

    def test_driver_without_a_daemon_opens_all_the_same(self):
        conn = connection.open_connection('test:///default')
        self.addCleanup(conn.close)
        self.assertEqual('test:///default', conn.getURI())

    def test_probes_are_asked_for(self):
        conn = mock.Mock()
        with mock.patch.object(libvirt, 'openAuth', return_value=conn):
            self.assertIs(conn, connection._open('qemu+tls://h/system',
                                                 False))
        conn.setKeepAlive.assert_called_once_with(
            connection.KEEPALIVE_INTERVAL, connection.KEEPALIVE_COUNT)

    def test_other_refusals_fail_the_open(self):
        conn = mock.Mock()
        error = libvirt.libvirtError('no event loop')
        error.err = (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_RPC,
                     'no event loop', libvirt.VIR_ERR_ERROR, None, None,
                     None, 0, 0)
        conn.setKeepAlive.side_effect = error
        with mock.patch.object(libvirt, 'openAuth', return_value=conn):
            self.assertRaises(libvirt.libvirtError, connection._open,
                              'qemu+tls://h/system', False)
        conn.close.assert_called_once_with()
