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

"""The iSCSI volume driver and the libvirt secrets it keeps CHAP in.

The ``qemu`` transport's XML is checked here (and against libvirt's
schema); the functional tests run it against tgtd and a real guest. Secrets
are kept by :class:`FakeSecretConnection`, which behaves as libvirt's
secret driver does for the calls made (libvirt's test driver has no
secrets; the functional tests use a real libvirtd).

The ``kernel`` transport cannot log in on the project's machines (no
``iscsi_tcp`` module), so it is tested at os-brick's boundary only: the
connector that ``InitiatorConnector.factory`` returns is a test double.
"""

import logging
import os
import socket
import subprocess
import types
from unittest import mock

import fixtures
import libvirt
from lxml import etree
from nova import exception
from os_brick import exception as brick_exception
from oslo_concurrency import processutils
from oslo_utils import uuidutils
from oslotest import base

from nova_pyvirt.design import disks as design_disks
from nova_pyvirt.design import request
from nova_pyvirt import volume
from nova_pyvirt.volume import iscsi
from nova_pyvirt.volume import secrets
from nova_pyvirt import xml
from tests import design_support

VOLUME_ID = '3c1d2b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d'
IQN = 'iqn.2010-10.org.openstack:volume-%s' % VOLUME_ID
INSTANCE = types.SimpleNamespace(uuid='11111111-2222-4333-8444-555555555555')
OTHER = types.SimpleNamespace(uuid='99999999-2222-4333-8444-555555555555')
USER = 'HnPxY4vTqe'
PASSWORD = 'Sup3r-s3cret-CHAP-pw'
ROOT_HELPER = 'sudo nova-rootwrap /etc/nova/rootwrap.conf'
SCHEMAS = '/usr/share/libvirt/schemas/'
USAGE = 'nova-pyvirt:iscsi:%s:%s' % (VOLUME_ID, INSTANCE.uuid)


def connection_info(portal='192.0.2.10:3260', chap=False, **data):
    values = {'target_discovered': False, 'target_portal': portal,
              'target_iqn': IQN, 'target_lun': 1, 'volume_id': VOLUME_ID,
              'access_mode': 'rw', 'encrypted': False}
    if chap:
        values.update(auth_method='CHAP', auth_username=USER,
                      auth_password=PASSWORD)
    values.update(data)
    return {'driver_volume_type': 'iscsi', 'serial': VOLUME_ID,
            'data': values}


def libvirt_error(code, message='libvirt error'):
    error = libvirt.libvirtError(message)
    error.err = (code, None, message, None, None, None, None, None, None)
    return error


class FakeSecret(object):

    def __init__(self, conn, definition):
        self.conn = conn
        self.definition = definition
        self.uuid = uuidutils.generate_uuid()
        self.stored = None
        self.fail_set_value = None

    def UUIDString(self):
        return self.uuid

    def usageID(self):
        return self.definition.usage_target

    def setValue(self, value, flags=0):
        if self.fail_set_value is not None:
            raise self.fail_set_value
        if not isinstance(value, bytes):
            raise TypeError('libvirt takes bytes')
        self.stored = value

    def value(self, flags=0):
        if self.definition.private:
            raise libvirt_error(libvirt.VIR_ERR_OPERATION_DENIED,
                                'secret is private')
        return self.stored

    def undefine(self):
        if self.conn.secrets.pop(self.uuid, None) is None:
            raise libvirt_error(libvirt.VIR_ERR_NO_SECRET, 'no secret')


class FakeSecretConnection(object):
    """libvirt's secret calls, as the QEMU driver's daemon answers them."""

    def __init__(self, supported=True):
        self.supported = supported
        self.secrets = {}
        self.defined_xml = []
        self.fail_next_set_value = None

    def _check(self):
        if not self.supported:
            raise libvirt_error(libvirt.VIR_ERR_NO_SUPPORT,
                                'this function is not supported by the '
                                'connection driver')

    def secretLookupByUsage(self, usage_type, usage_id):
        self._check()
        for secret in self.secrets.values():
            if (usage_type == libvirt.VIR_SECRET_USAGE_TYPE_ISCSI and
                    secret.definition.usage_type == 'iscsi' and
                    secret.usageID() == usage_id):
                return secret
        raise libvirt_error(libvirt.VIR_ERR_NO_SECRET,
                            'no secret with matching usage')

    def secretDefineXML(self, text, flags=0):
        self._check()
        self.defined_xml.append(text)
        definition = xml.parse(text)
        for secret in self.secrets.values():
            if secret.usageID() == definition.usage_target:
                raise libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR,
                                    'usage already defined')
        secret = FakeSecret(self, definition)
        secret.fail_set_value = self.fail_next_set_value
        self.fail_next_set_value = None
        self.secrets[secret.uuid] = secret
        return secret

    def listAllSecrets(self, flags=0):
        self._check()
        return list(self.secrets.values())


class FakeHost(object):

    def __init__(self, conn=None, uri='qemu:///system'):
        self.conn = conn if conn is not None else FakeSecretConnection()
        self.uri = uri
        self.connections = 0

    def get_connection(self):
        self.connections += 1
        return self.conn


def validate(schema, text):
    path = SCHEMAS + schema
    if not os.path.exists(path):
        raise AssertionError('%s is missing (libvirt-daemon-system)' % path)
    rng = etree.RelaxNG(file=path)
    doc = etree.fromstring(text.encode())
    if not rng.validate(doc):
        raise AssertionError('%s rejects:\n%s\n%s' % (
            schema, rng.error_log, text))


def as_domain_xml(disk):
    """A minimal domain holding ``disk``, for domain.rng."""
    domain = xml.Domain.from_xml(
        "<domain type='kvm'><name>i-1</name><memory>131072</memory>"
        "<os><type arch='x86_64'>hvm</type></os><devices/></domain>")
    domain.devices.append(disk)
    return domain.to_xml()


class ISCSITestCase(base.BaseTestCase):

    transport = 'qemu'

    def setUp(self):
        super(ISCSITestCase, self).setUp()
        self.conf = self.useFixture(design_support.ConfFixture())
        self.conf.set(iscsi_transport=self.transport)
        self.host = FakeHost()
        self.driver = iscsi.ISCSIVolumeDriver(self.conf.conf, self.host)
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def tearDown(self):
        # Whatever a test did, no credential reached a log.
        self.assertNotIn(PASSWORD, self.log.output)
        super(ISCSITestCase, self).tearDown()


class RegistryTest(ISCSITestCase):

    def test_registered_for_iscsi(self):
        self.assertIs(iscsi.ISCSIVolumeDriver, volume._DRIVERS['iscsi'])


class SplitPortalTest(base.BaseTestCase):

    def test_shapes(self):
        for portal, expected in (
                ('192.0.2.10:3260', ('192.0.2.10', 3260)),
                ('192.0.2.10:3261', ('192.0.2.10', 3261)),
                ('192.0.2.10', ('192.0.2.10', 3260)),
                ('storage.example.org:860', ('storage.example.org', 860)),
                ('[2001:db8::10]:3261', ('2001:db8::10', 3261)),
                ('[2001:db8::10]', ('2001:db8::10', 3260)),
                ('2001:db8::10', ('2001:db8::10', 3260)),
                (' 192.0.2.10:3260 ', ('192.0.2.10', 3260))):
            self.assertEqual(expected, iscsi.split_portal(portal), portal)

    def test_invalid(self):
        for portal in (None, '', ':3260', '192.0.2.10:', '192.0.2.10:0',
                       '192.0.2.10:65536', '192.0.2.10:port',
                       '[2001:db8::10', '[2001:db8::10]3260',
                       '[2001:db8::10]:', 'a/b:3260', 'user@192.0.2.10:3260'):
            self.assertRaises(ValueError, iscsi.split_portal, portal)


class TargetsTest(ISCSITestCase):

    def test_single_portal(self):
        self.assertEqual(
            [iscsi.Target('192.0.2.10:3260', '192.0.2.10', 3260, IQN, 1)],
            self.driver.targets(connection_info()))

    def test_lun_as_text(self):
        target, = self.driver.targets(connection_info(target_lun='7'))
        self.assertEqual(7, target.lun)
        self.assertEqual('%s/7' % IQN, target.source_name)

    def test_multipath_lists_main_portal_first_without_duplicates(self):
        info = connection_info(
            portal='192.0.2.11:3260',
            target_portals=['192.0.2.10:3260', '192.0.2.11:3260',
                            '[2001:db8::10]:3260'],
            target_iqns=[IQN + '-a', IQN, IQN + '-c'],
            target_luns=[1, '1', 3])
        self.assertEqual(
            [('192.0.2.11:3260', IQN, 1), ('192.0.2.10:3260', IQN + '-a', 1),
             ('[2001:db8::10]:3260', IQN + '-c', 3)],
            [(t.portal, t.iqn, t.lun) for t in self.driver.targets(info)])

    def test_portals_without_iqn_lists_share_the_main_target(self):
        info = connection_info(target_portals=['192.0.2.10:3260',
                                               '192.0.2.12:3260'])
        self.assertEqual(
            [('192.0.2.10', IQN, 1), ('192.0.2.12', IQN, 1)],
            [(t.host, t.iqn, t.lun) for t in self.driver.targets(info)])

    def test_lists_without_main_portal(self):
        info = connection_info(target_portals=['192.0.2.12:3260'],
                               target_iqns=[IQN], target_luns=[2])
        del info['data']['target_portal']
        self.assertEqual([('192.0.2.12', IQN, 2)], [
            (t.host, t.iqn, t.lun) for t in self.driver.targets(info)])

    def test_invalid(self):
        for data in (dict(portal='nonsense:port'), dict(portal=None),
                     dict(target_iqn=None), dict(target_iqn='iqn.x y'),
                     dict(target_iqn='iqn.a/b'), dict(target_lun=None),
                     dict(target_lun=-1), dict(target_lun='one'),
                     dict(target_lun=True),
                     dict(target_portals=['192.0.2.10:3260'],
                          target_iqns=[IQN, IQN], target_luns=[1])):
            exc = self.assertRaises(exception.InvalidVolume,
                                    self.driver.targets,
                                    connection_info(**data))
            self.assertIn('iSCSI volume %s' % VOLUME_ID, str(exc))


class ChapTest(ISCSITestCase):

    def test_methods(self):
        self.assertIsNone(self.driver.chap(connection_info()))
        self.assertIsNone(self.driver.chap(connection_info(
            auth_method='None')))
        self.assertEqual((USER, PASSWORD),
                         self.driver.chap(connection_info(chap=True)))
        self.assertEqual((USER, PASSWORD), self.driver.chap(
            connection_info(chap=True, auth_method='chap')))

    def test_unsupported_or_incomplete(self):
        for data in (dict(auth_method='MD5'), dict(auth_username=None),
                     dict(auth_password='')):
            exc = self.assertRaises(exception.InvalidVolume,
                                    self.driver.chap,
                                    connection_info(chap=True, **data))
            self.assertNotIn(PASSWORD, str(exc))


class QemuDiskSourceTest(ISCSITestCase):

    def test_network_disk(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        disk = self.driver.disk_source(info, INSTANCE)
        self.assertEqual(xml.canonical(etree.fromstring(
            "<disk type='network'><driver type='raw'/>"
            "<source protocol='iscsi' name='%s/1'>"
            "<host name='192.0.2.10' port='3260'/></source></disk>" % IQN)),
            xml.canonical(disk.element))
        # Nothing was asked of libvirt: no secret without CHAP.
        self.assertEqual(0, self.host.connections)
        self.assertEqual('192.0.2.10:3260', info['data'][iscsi.PORTAL_KEY])

    def test_ipv6_portal(self):
        disk = self.driver.disk_source(
            connection_info(portal='[2001:db8::10]:3261'), INSTANCE)
        self.assertEqual([('2001:db8::10', '3261')],
                         [(h.name, h.port) for h in disk.source_hosts])

    def test_chap_names_the_secret_by_usage(self):
        info = connection_info(chap=True)
        disk = self.driver.disk_source(info, INSTANCE)
        self.assertEqual((USER, 'iscsi', USAGE, None), (
            disk.source_auth.username, disk.source_auth.secret_type,
            disk.source_auth.secret_usage, disk.source_auth.secret_uuid))
        self.assertIsNone(disk.auth)
        self.assertNotIn(PASSWORD, disk.to_xml())

    def test_guest_disk_validates_against_libvirt_schema(self):
        for info in (connection_info(), connection_info(chap=True),
                     connection_info(portal='[2001:db8::10]:3261',
                                     chap=True)):
            source = self.driver.disk_source(info, INSTANCE)
            spec = request.VolumeDisk(VOLUME_ID, source, read_only=True)
            disk = design_disks.volume_disk(spec, 'virtio', 'vdb')
            validate('domain.rng', as_domain_xml(disk))
            self.assertEqual((VOLUME_ID, 'none', 'raw'), (
                disk.serial, disk.driver_cache, disk.driver_type))

    def test_each_attachment_has_its_own_secret(self):
        info = connection_info(chap=True)
        mine = self.driver.disk_source(info, INSTANCE).source_auth
        theirs = self.driver.disk_source(info, OTHER).source_auth
        self.assertNotEqual(mine.secret_usage, theirs.secret_usage)

    def test_secret_needs_a_volume_id(self):
        info = connection_info(chap=True)
        del info['serial']
        del info['data']['volume_id']
        self.assertRaises(exception.InvalidVolume, self.driver.disk_source,
                          info, INSTANCE)


class QemuSecretLifecycleTest(ISCSITestCase):

    def secret(self):
        secret, = self.host.conn.secrets.values()
        return secret

    def test_connect_stores_password_in_private_persistent_secret(self):
        info = connection_info(chap=True)
        self.driver.connect(info, INSTANCE)
        secret = self.secret()
        self.assertEqual(PASSWORD.encode(), secret.stored)
        definition = secret.definition
        self.assertEqual((False, True, 'iscsi', USAGE), (
            definition.ephemeral, definition.private, definition.usage_type,
            definition.usage_target))
        self.assertIn(VOLUME_ID, definition.description)
        for text in self.host.conn.defined_xml:
            self.assertNotIn(PASSWORD, text)
            validate('secret.rng', text)
        self.assertRaises(libvirt.libvirtError, secret.value)

    def test_connect_is_idempotent_and_updates_the_value(self):
        info = connection_info(chap=True)
        self.driver.connect(info, INSTANCE)
        uuid_before = self.secret().uuid
        info['data']['auth_password'] = PASSWORD + '-new'
        self.driver.connect(info, INSTANCE)
        self.assertEqual(uuid_before, self.secret().uuid)
        self.assertEqual((PASSWORD + '-new').encode(), self.secret().stored)
        self.assertEqual(1, len(self.host.conn.defined_xml))

    def test_disconnect_removes_only_its_secret_and_is_idempotent(self):
        info = connection_info(chap=True)
        self.driver.connect(info, INSTANCE)
        self.driver.connect(info, OTHER)
        self.assertEqual(2, len(self.host.conn.secrets))
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual([secrets.volume_usage_id('iscsi', VOLUME_ID,
                                                  OTHER.uuid)],
                         [s.usageID() for s in
                          self.host.conn.secrets.values()])
        self.driver.disconnect(info, INSTANCE)
        self.driver.disconnect(info, OTHER)
        self.assertEqual({}, self.host.conn.secrets)

    def test_disconnect_without_chap_asks_libvirt_nothing(self):
        info = connection_info()
        self.driver.connect(info, INSTANCE)
        self.driver.disconnect(info, INSTANCE)
        self.assertEqual(0, self.host.connections)

    def test_failed_value_leaves_no_secret(self):
        self.host.conn.fail_next_set_value = libvirt_error(
            libvirt.VIR_ERR_INTERNAL_ERROR, 'cannot write secret')
        exc = self.assertRaises(secrets.SecretError, self.driver.connect,
                                connection_info(chap=True), INSTANCE)
        self.assertIn('cannot write secret', str(exc))
        self.assertNotIn(PASSWORD, str(exc))
        self.assertEqual({}, self.host.conn.secrets)

    def test_libvirt_without_secrets(self):
        self.host.conn.supported = False
        self.host.uri = 'qemu:///embed?root=/srv/embed'
        info = connection_info(chap=True)
        exc = self.assertRaises(secrets.SecretsUnavailable,
                                self.driver.connect, info, INSTANCE)
        self.assertIn('qemu:///embed?root=/srv/embed', str(exc))
        self.assertNotIn(PASSWORD, str(exc))
        # Nothing can have been stored: disconnecting is a no-op.
        self.driver.disconnect(info, INSTANCE)

    def test_unreachable_portals_fail_before_any_secret(self):
        dead = ['127.0.0.1:%d' % closed_port() for _ in range(2)]
        info = connection_info(chap=True, portal=dead[0],
                               target_portals=dead)
        exc = self.assertRaises(exception.VolumeAttachFailed,
                                self.driver.connect, info, INSTANCE)
        for portal in dead:
            self.assertIn(portal, str(exc))
        self.assertEqual({}, self.host.conn.secrets)


def closed_port():
    sock = socket.socket()
    try:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


class PortalChoiceTest(ISCSITestCase):
    """Real loopback sockets: one portal listens, the other refuses."""

    def setUp(self):
        super(PortalChoiceTest, self).setUp()
        self.listener = socket.socket()
        self.addCleanup(self.listener.close)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(4)
        self.alive = '127.0.0.1:%d' % self.listener.getsockname()[1]
        self.dead = '127.0.0.1:%d' % closed_port()

    def test_first_reachable_portal_is_used(self):
        info = connection_info(portal=self.dead,
                               target_portals=[self.dead, self.alive],
                               target_iqns=[IQN, IQN], target_luns=[1, 1])
        self.driver.connect(info, INSTANCE)
        self.assertEqual(self.alive, info['data'][iscsi.PORTAL_KEY])
        disk = self.driver.disk_source(info, INSTANCE)
        self.assertEqual([self.alive], ['%s:%s' % (h.name, h.port)
                                        for h in disk.source_hosts])
        self.assertIn('unreachable: %s' % self.dead, self.log.output)

    def test_order_is_kept_when_all_answer(self):
        info = connection_info(portal=self.alive,
                               target_portals=[self.alive, self.dead])
        self.driver.connect(info, INSTANCE)
        self.assertEqual(self.alive, info['data'][iscsi.PORTAL_KEY])

    def test_single_portal_is_not_probed(self):
        with mock.patch.object(socket, 'create_connection') as probe:
            self.driver.connect(connection_info(portal=self.dead), INSTANCE)
        probe.assert_not_called()

    def test_without_connect_the_main_portal_is_used(self):
        info = connection_info(portal=self.dead,
                               target_portals=[self.dead, self.alive])
        disk = self.driver.disk_source(info, INSTANCE)
        self.assertEqual([self.dead], ['%s:%s' % (h.name, h.port)
                                       for h in disk.source_hosts])


class QemuExtendTest(ISCSITestCase):

    def setUp(self):
        super(QemuExtendTest, self).setUp()
        self.execute = self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', return_value=('3221225472\n', ''))).mock

    def test_reads_capacity_with_password_in_environment_only(self):
        info = connection_info(chap=True)
        self.assertEqual(3 * 1024 ** 3,
                         self.driver.extend(info, INSTANCE, 2 * 1024 ** 3))
        args, kwargs = self.execute.call_args
        self.assertEqual(('iscsi-readcapacity16', '-s',
                          'iscsi://%s@192.0.2.10:3260/%s/1' % (USER, IQN)),
                         args)
        self.assertEqual(PASSWORD,
                         kwargs['env_variables']['LIBISCSI_CHAP_PASSWORD'])
        self.assertNotIn(PASSWORD, ' '.join(args))
        self.assertIn('timeout', kwargs)

    def test_without_chap_no_password_is_passed_on(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'LIBISCSI_CHAP_PASSWORD', 'from-the-service-environment'))
        info = connection_info(portal='[2001:db8::10]:3261')
        self.driver.extend(info, INSTANCE, 1)
        args, kwargs = self.execute.call_args
        self.assertEqual('iscsi://[2001:db8::10]:3261/%s/1' % IQN, args[2])
        self.assertNotIn('LIBISCSI_CHAP_PASSWORD', kwargs['env_variables'])

    def test_smaller_target_is_reported_and_returned(self):
        self.assertEqual(3 * 1024 ** 3, self.driver.extend(
            connection_info(), INSTANCE, 4 * 1024 ** 3))
        self.assertIn('less than the 4294967296 requested', self.log.output)

    def test_uses_the_portal_connect_chose(self):
        info = connection_info(target_portals=['192.0.2.10:3260',
                                               '192.0.2.12:3260'])
        info['data'][iscsi.PORTAL_KEY] = '192.0.2.12:3260'
        self.driver.extend(info, INSTANCE, 1)
        self.assertEqual('iscsi://192.0.2.12:3260/%s/1' % IQN,
                         self.execute.call_args[0][2])

    def test_without_libiscsi_tools_trusts_the_request(self):
        self.execute.side_effect = FileNotFoundError(
            2, 'No such file or directory')
        self.assertEqual(5, self.driver.extend(connection_info(chap=True),
                                               INSTANCE, 5))
        self.assertIn('not installed', self.log.output)

    def test_login_failure(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=10, stderr='Login Failed. Failed to log in to target. '
            'Status: Authentication failure(513)\n')
        exc = self.assertRaises(exception.VolumeExtendFailed,
                                self.driver.extend,
                                connection_info(chap=True), INSTANCE, 1)
        self.assertIn('Authentication failure', str(exc))
        self.assertIn(VOLUME_ID, str(exc))
        self.assertNotIn(PASSWORD, str(exc))

    def test_timeout_kills_the_tool(self):
        process = mock.Mock()

        def execute(*args, **kwargs):
            kwargs['on_execute'](process)
            raise subprocess.TimeoutExpired(args, kwargs['timeout'])

        self.execute.side_effect = execute
        exc = self.assertRaises(exception.VolumeExtendFailed,
                                self.driver.extend,
                                connection_info(chap=True), INSTANCE, 1)
        self.assertIn('did not answer', str(exc))
        process.kill.assert_called_once_with()
        process.wait.assert_called_once_with()

    def test_garbage_output(self):
        self.execute.return_value = ('Total size:12\n', '')
        self.assertRaises(exception.VolumeExtendFailed, self.driver.extend,
                          connection_info(), INSTANCE, 1)


class KernelTransportTest(ISCSITestCase):
    """os-brick's ISCSIConnector, replaced at its boundary."""

    transport = 'kernel'

    def setUp(self):
        super(KernelTransportTest, self).setUp()
        self.connector = mock.Mock()
        self.connector.connect_volume.return_value = {
            'type': 'block', 'scsi_wwn': '360000000000000000e00000000010001',
            'path': '/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-%s-lun-1'
                    % IQN}
        self.connector.extend_volume.return_value = 2 * 1024 ** 3
        self.factory = self.useFixture(fixtures.MockPatch(
            'os_brick.initiator.connector.InitiatorConnector.factory',
            return_value=self.connector)).mock
        self.useFixture(fixtures.MockPatch(
            'nova.utils.get_root_helper', return_value=ROOT_HELPER))

    def test_connect_logs_in_with_os_brick(self):
        info = connection_info(chap=True)
        self.driver.connect(info, INSTANCE)
        self.factory.assert_called_once_with('ISCSI', ROOT_HELPER,
                                             use_multipath=False)
        # os-brick gets cinder's data as is, CHAP included.
        self.connector.connect_volume.assert_called_once_with(info['data'])
        path = self.connector.connect_volume.return_value['path']
        self.assertEqual(path, info['data']['device_path'])
        disk = self.driver.disk_source(info, INSTANCE)
        self.assertEqual(xml.canonical(etree.fromstring(
            "<disk type='block'><driver type='raw'/>"
            "<source dev='%s'/></disk>" % path)),
            xml.canonical(disk.element))
        # The kernel initiator keeps CHAP itself: no libvirt secret.
        self.assertEqual(0, self.host.connections)

    def test_connect_without_device(self):
        self.connector.connect_volume.return_value = {'type': 'block'}
        info = connection_info()
        exc = self.assertRaises(exception.VolumeAttachFailed,
                                self.driver.connect, info, INSTANCE)
        self.assertIn(VOLUME_ID, str(exc))
        self.assertNotIn('device_path', info['data'])

    def test_connect_failure_propagates(self):
        self.connector.connect_volume.side_effect = (
            brick_exception.VolumeDeviceNotFound(device=IQN))
        self.assertRaises(brick_exception.VolumeDeviceNotFound,
                          self.driver.connect, connection_info(), INSTANCE)

    def test_invalid_connection_info_is_refused_before_os_brick(self):
        self.assertRaises(exception.InvalidVolume, self.driver.connect,
                          connection_info(target_lun='x'), INSTANCE)
        self.connector.connect_volume.assert_not_called()

    def test_disk_source_needs_a_connected_device(self):
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.disk_source, connection_info(),
                                INSTANCE)
        self.assertIn('device_path', str(exc))

    def test_disconnect(self):
        info = connection_info(chap=True)
        self.driver.connect(info, INSTANCE)
        self.driver.disconnect(info, INSTANCE)
        self.connector.disconnect_volume.assert_called_once_with(
            info['data'], None)
        self.assertEqual(0, self.host.connections)

    def test_disconnect_of_a_gone_device_is_fine(self):
        self.connector.disconnect_volume.side_effect = (
            brick_exception.VolumeDeviceNotFound(device='/dev/sdx'))
        self.driver.disconnect(connection_info(), INSTANCE)
        self.assertIn('no device to disconnect', self.log.output)

    def test_extend(self):
        info = connection_info()
        self.assertEqual(2 * 1024 ** 3,
                         self.driver.extend(info, INSTANCE, 2 * 1024 ** 3))
        self.connector.extend_volume.assert_called_once_with(info['data'])

    def test_extend_without_new_size(self):
        self.connector.extend_volume.return_value = None
        self.assertRaises(exception.VolumeExtendFailed, self.driver.extend,
                          connection_info(), INSTANCE, 1)

    def test_connector_is_made_once(self):
        self.driver.connect(connection_info(), INSTANCE)
        self.driver.disconnect(connection_info(), INSTANCE)
        self.assertEqual(1, self.factory.call_count)


class SecretsModuleTest(base.BaseTestCase):

    def setUp(self):
        super(SecretsModuleTest, self).setUp()
        self.host = FakeHost()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def test_secret_xml(self):
        text = secrets.secret_xml('iscsi', USAGE, 'CHAP of volume x')
        validate('secret.rng', text)
        self.assertEqual(xml.canonical(etree.fromstring(
            "<secret ephemeral='no' private='yes'>"
            "<description>CHAP of volume x</description>"
            "<usage type='iscsi'><target>%s</target></usage>"
            "</secret>" % USAGE)), xml.canonical(etree.fromstring(text)))
        volume_text = secrets.secret_xml('volume', '/srv/volume.img')
        validate('secret.rng', volume_text)
        self.assertEqual('/srv/volume.img',
                         xml.parse(volume_text).usage_volume)
        self.assertRaises(ValueError, secrets.secret_xml, 'nfs', 'x')

    def test_usage_id(self):
        self.assertEqual(USAGE, secrets.volume_usage_id(
            'iscsi', VOLUME_ID, INSTANCE.uuid))
        self.assertRaises(ValueError, secrets.volume_usage_id, 'iscsi',
                          'a/b', INSTANCE.uuid)

    def test_create_lookup_remove(self):
        uuid_ = secrets.create(self.host, 'iscsi', USAGE, PASSWORD)
        found = secrets.lookup(self.host, 'iscsi', USAGE)
        self.assertEqual(uuid_, found.UUIDString())
        self.assertEqual(PASSWORD.encode(), found.stored)
        self.assertTrue(secrets.remove(self.host, 'iscsi', USAGE))
        self.assertIsNone(secrets.lookup(self.host, 'iscsi', USAGE))
        self.assertFalse(secrets.remove(self.host, 'iscsi', USAGE))
        self.assertIn(uuid_, self.log.output)
        self.assertNotIn(PASSWORD, self.log.output)

    def test_bytes_value(self):
        secrets.create(self.host, 'iscsi', USAGE, b'\x00\xffraw')
        self.assertEqual(b'\x00\xffraw', secrets.lookup(
            self.host, 'iscsi', USAGE).stored)

    def test_empty_value_is_refused(self):
        self.assertRaises(secrets.SecretError, secrets.create, self.host,
                          'iscsi', USAGE, '')
        self.assertEqual({}, self.host.conn.secrets)

    def test_other_lookup_errors_are_raised(self):
        conn = mock.Mock()
        conn.secretLookupByUsage.side_effect = libvirt_error(
            libvirt.VIR_ERR_INTERNAL_ERROR, 'broken')
        self.assertRaises(libvirt.libvirtError, secrets.lookup,
                          FakeHost(conn), 'iscsi', USAGE)

    def test_define_refused(self):
        conn = FakeSecretConnection()
        conn.secretDefineXML = mock.Mock(side_effect=libvirt_error(
            libvirt.VIR_ERR_XML_ERROR, 'bad secret'))
        exc = self.assertRaises(secrets.SecretError, secrets.create,
                                FakeHost(conn), 'iscsi', USAGE, PASSWORD)
        self.assertIn('bad secret', str(exc))
        self.assertNotIn(PASSWORD, str(exc))

    def test_secret_gone_while_removing(self):
        secrets.create(self.host, 'iscsi', USAGE, PASSWORD)
        secret = secrets.lookup(self.host, 'iscsi', USAGE)
        self.host.conn.secrets.clear()   # undefined by someone else
        with mock.patch.object(secrets, 'lookup', return_value=secret):
            self.assertFalse(secrets.remove(self.host, 'iscsi', USAGE))
