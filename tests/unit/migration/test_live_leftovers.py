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

"""A live migration rolled back while the destination's libvirt is down.

Storage is real (the instance directory ``pre_live_migration`` made under
a temporary instances path); libvirt's domains are
:class:`virt_fakes.FakeDomain`. libvirt being out of reach is the one
fault mocked here (``get_domain_by_uuid`` raises what the driver's
``Host`` raises then); the functional test
``test_live_migration_failures`` kills a real libvirtd instead.
"""

import os
from unittest import mock

import libvirt
from oslo_serialization import jsonutils
from oslotest import base

from nova import exception

from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.migration import live_leftovers
from tests.unit.migration import test_live_rollback
from tests.unit import virt_fakes

VOL_BOOT = virt_fakes.VOL_BOOT
VOL_DATA = virt_fakes.VOL_DATA


def _refused():
    return pyvirt_exception.LibvirtConnectionFailed(
        uri='qemu+tls://127.0.0.3/system', scheme='tls',
        error="unable to connect to server at '127.0.0.3:16514': "
              "Connection refused")


def _socket_closed():
    exc = libvirt.libvirtError('internal error: client socket is closed')
    exc.err = (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_RPC,
               'internal error: client socket is closed',
               libvirt.VIR_ERR_ERROR, None, None, None, 0, 0)
    return exc


class RollbackWithoutLibvirtTest(virt_fakes.VolumeBootedTestCase):

    def setUp(self):
        super().setUp()
        self.marker = os.path.join(self.directory, live_leftovers.MARKER)
        self.data = test_live_rollback._migrate_data()
        self.driver.pre_live_migration(
            self.fx.context, self.instance, self.bdi, [],
            jsonutils.dumps([{'name': 'disk.swap', 'type': 'raw',
                              'virt_disk_size': 1 << 20, 'disk_size': 0,
                              'backing_file': '', 'device': 'disk',
                              'bus': None}]), self.data)
        self.lookup = self.host.get_domain_by_uuid

    def _libvirt_down(self, error):
        self.host.get_domain_by_uuid = mock.Mock(side_effect=error)

    def _libvirt_back(self):
        self.host.get_domain_by_uuid = self.lookup

    def _rollback(self, **kw):
        self.driver.rollback_live_migration_at_destination(
            self.fx.context, self.instance, [], self.bdi,
            destroy_disks=True, migrate_data=self.data, **kw)

    def test_rollback_marks_the_directory_and_disconnects(self):
        for error in (_refused(), _socket_closed()):
            self._libvirt_down(error)
            self._rollback()
            # The volume connections went; the disks wait for libvirt.
            self.assertEqual(set(), self.volumes.connected)
            self.assertTrue(os.path.exists(os.path.join(self.directory,
                                                        'disk.swap')))
            with open(self.marker) as handle:
                self.assertEqual(str(error), jsonutils.loads(
                    handle.read())['reason'])

    def test_other_libvirt_errors_reach_nova(self):
        self._libvirt_down(virt_fakes.libvirt_error('permission denied'))
        self.assertRaises(libvirt.libvirtError, self._rollback)
        self.assertFalse(os.path.exists(self.marker))

    def test_shared_instance_path_is_never_marked(self):
        self.data.is_shared_instance_path = True
        self._libvirt_down(_refused())
        self._rollback()
        self.assertFalse(os.path.exists(self.marker))
        self.assertEqual([], live_leftovers.marked(
            self.driver._disks.instances_path))

    def test_directory_goes_when_libvirt_answers(self):
        self._libvirt_down(_refused())
        self._rollback()
        # Still down when the driver tries: nothing is removed.
        self.assertEqual([], self.driver._live.finish_marked_rollbacks())
        self.assertTrue(os.path.exists(self.marker))
        self._libvirt_back()
        # The driver's Host reports the connection made again.
        self.host.uri = 'qemu+tls://127.0.0.3/system'
        self.driver._connection_changed(True, None)
        self.assertFalse(os.path.exists(self.directory))

    def test_an_arriving_guest_keeps_the_directory_until_it_is_gone(self):
        self._libvirt_down(_refused())
        self._rollback()
        self._libvirt_back()
        domain = self.host.add(self.instance.uuid, active=True)
        domain.state = lambda: (libvirt.VIR_DOMAIN_PAUSED,
                                libvirt.VIR_DOMAIN_PAUSED_MIGRATION)
        self.assertEqual([], self.driver._live.finish_marked_rollbacks())
        self.assertTrue(os.path.exists(self.marker))
        # libvirt killed the unfinished incoming migration.
        del self.host.domains[self.instance.uuid]
        self.assertEqual([self.instance.uuid],
                         self.driver._live.finish_marked_rollbacks())
        self.assertFalse(os.path.exists(self.directory))

    def test_image_cache_pass_retries(self):
        self._libvirt_down(_refused())
        self._rollback()
        self._libvirt_back()
        self.driver.manage_image_cache(self.fx.context, [])
        self.assertFalse(os.path.exists(self.directory))

    def test_a_guest_that_lives_here_keeps_its_directory(self):
        self._libvirt_down(_refused())
        self._rollback()
        self._libvirt_back()
        for active in (True, False):
            self.host.add(self.instance.uuid, active=active)
            live_leftovers.mark(self.driver._live._files(self.instance), 'x')
            self.assertEqual([], self.driver._live.finish_marked_rollbacks())
            # Kept, and never looked at again.
            self.assertTrue(os.path.exists(os.path.join(self.directory,
                                                        'disk.swap')))
            self.assertFalse(os.path.exists(self.marker))
            self.assertTrue(self.host.domains[self.instance.uuid].defined)

    def test_reachable_libvirt_removes_at_once(self):
        self._rollback()
        self.assertFalse(os.path.exists(self.directory))


class ConnectionErrorTest(base.BaseTestCase):

    def test_rpc_errors_mean_unreachable(self):
        self.assertTrue(connection.is_connection_error(_socket_closed()))
        self.assertTrue(connection.is_connection_error(
            virt_fakes.libvirt_error('no connection',
                                     libvirt.VIR_ERR_NO_CONNECT)))

    def test_domain_errors_do_not(self):
        self.assertFalse(connection.is_connection_error(
            virt_fakes.libvirt_error('no domain', libvirt.VIR_ERR_NO_DOMAIN)))
        self.assertFalse(connection.is_connection_error(
            exception.InstanceNotFound(instance_id='x')))
