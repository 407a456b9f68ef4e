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

"""Opening a connection: credentials, auth schemes and failure messages.

The functional tests (``tests/functional/libvirt/test_remote_connection``)
run these against real SASL and TLS daemons; here each piece is held on
its own: which scheme a URI uses, which files libvirt reads, what the
credential callback answers, and how a failure reads.
"""

import logging
import os
from unittest import mock

import fixtures
import libvirt
from oslotest import base

from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host as host_mod


def _error(message, unanswered=None):
    # libvirtError takes the thread's last libvirt error over its argument.
    libvirt.virResetLastError()
    error = libvirt.libvirtError(message)
    if unanswered is not None:
        error.unanswered_credentials = tuple(unanswered)
    return error


class AuthSchemeTest(base.BaseTestCase):

    def test_schemes(self):
        for uri, scheme in (
                ('qemu+tls://host.example/system', 'tls'),
                ('qemu://host.example/system', 'tls'),
                ('qemu+tcp://127.0.0.2:16509/system', 'sasl'),
                ('qemu+ssh://nova@host.example/system', 'ssh'),
                ('qemu+libssh2://host.example/system', 'ssh'),
                ('qemu:///system', 'unix socket'),
                ('qemu+unix:///system?socket=/run/x/sock', 'unix socket'),
                ('qemu+ext:///system?command=/bin/x', 'external command'),
                ('qemu:///embed?root=/var/lib/x', 'none'),
                ('test:///default', 'none'),
                ('test:///tmp/node.xml', 'none')):
            self.assertEqual(scheme, connection.auth_scheme(uri), uri)

    def test_tls_with_sasl_on_top(self):
        self.assertEqual('tls+sasl', connection.auth_scheme(
            'qemu+tls://host.example/system', ['authname', 'password']))


class RedactUriTest(base.BaseTestCase):

    def test_password_replaced(self):
        self.assertEqual(
            'qemu+tcp://nova:***@127.0.0.2:16509/system',
            connection.redact_uri(
                'qemu+tcp://nova:s3cret@127.0.0.2:16509/system'))

    def test_uris_without_password_unchanged(self):
        for uri in ('qemu+ssh://nova@host/system', 'qemu:///system',
                    'qemu+tls://host/system?pkipath=/etc/x',
                    'qemu:///embed?root=/var/lib/x'):
            self.assertEqual(uri, connection.redact_uri(uri))


class CredentialCallbackTest(base.BaseTestCase):

    def test_answers_nothing_and_notes_what_was_asked(self):
        credentials = [
            [libvirt.VIR_CRED_AUTHNAME, 'Please enter your authentication '
             'name', 'Authentication Name', None, None],
            [libvirt.VIR_CRED_PASSPHRASE, 'Please enter your password',
             'Password', None, None]]
        unanswered = []
        self.assertEqual(-1, connection._no_interaction(credentials,
                                                        unanswered))
        self.assertEqual(['authname', 'password'], unanswered)
        self.assertEqual([None, None], [c[4] for c in credentials])

    def test_authorization_id_not_declared(self):
        # Declared, SASL would ask for it and auth.conf would not answer.
        self.assertNotIn(libvirt.VIR_CRED_USERNAME,
                         connection.CREDENTIAL_TYPES)
        for wanted in (libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE):
            self.assertIn(wanted, connection.CREDENTIAL_TYPES)

    def test_failed_open_carries_unanswered(self):
        # libvirtError() in a later test would take this one's message.
        self.addCleanup(libvirt.virResetLastError)
        # Nothing listens on port 1: refused before any authentication.
        error = self.assertRaises(
            libvirt.libvirtError, connection.open_connection,
            'qemu+tcp://127.0.0.1:1/system')
        self.assertEqual((), error.unanswered_credentials)


class FilesTest(base.BaseTestCase):

    def setUp(self):
        super(FilesTest, self).setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.system = os.path.join(self.tmp, 'etc-auth.conf')
        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.hypervisor.connection.SYSTEM_AUTH_CONF',
            self.system))

    def touch(self, *parts):
        path = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'w').close()
        return path

    def test_auth_conf_order(self):
        uri = 'qemu+tcp://h/system'
        env = {'XDG_CONFIG_HOME': os.path.join(self.tmp, 'config'),
               'HOME': os.path.join(self.tmp, 'home')}
        self.assertIsNone(connection.auth_conf_path(uri, env))
        self.touch('etc-auth.conf')
        self.assertEqual(self.system, connection.auth_conf_path(uri, env))
        user = self.touch('config', 'libvirt', 'auth.conf')
        self.assertEqual(user, connection.auth_conf_path(uri, env))
        self.assertEqual('/x/auth.conf', connection.auth_conf_path(
            uri + '?authfile=/x/auth.conf', env))
        env['LIBVIRT_AUTH_FILE'] = '/y/auth.conf'
        self.assertEqual('/y/auth.conf', connection.auth_conf_path(
            uri + '?authfile=/x/auth.conf', env))

    def test_auth_conf_under_home_without_xdg(self):
        env = {'HOME': os.path.join(self.tmp, 'home')}
        path = self.touch('home', '.config', 'libvirt', 'auth.conf')
        self.assertEqual(path, connection.auth_conf_path('qemu+tcp://h/x',
                                                         env))

    def test_tls_files_from_pkipath(self):
        self.assertEqual(
            [('CA certificate', '/p/cacert.pem'),
             ('client certificate', '/p/clientcert.pem'),
             ('client key', '/p/clientkey.pem')],
            connection.tls_client_files('qemu+tls://h/system?pkipath=/p'))

    def test_tls_files_default(self):
        home = os.path.join(self.tmp, 'home')
        system = [path for _role, _name, path in connection.TLS_CLIENT_FILES]
        user_ca = self.touch('home', '.pki', 'libvirt', 'cacert.pem')
        user_cert = self.touch('home', '.pki', 'libvirt', 'clientcert.pem')
        with mock.patch.object(os, 'geteuid', return_value=0):
            self.assertEqual(system, [
                path for _role, path in connection.tls_client_files(
                    'qemu+tls://h/system', {'HOME': home})])

        def user_files():
            with mock.patch.object(os, 'geteuid', return_value=1000):
                return [path for _role, path in connection.tls_client_files(
                    'qemu+tls://h/system', {'HOME': home})]

        # Not root: the CA from ~/.pki/libvirt; the certificate and key
        # only together, like libvirt.
        self.assertEqual([user_ca] + system[1:], user_files())
        user_key = self.touch('home', '.pki', 'libvirt', 'clientkey.pem')
        self.assertEqual([user_ca, user_cert, user_key], user_files())


class DescribeFailureTest(FilesTest):

    def test_sasl_credentials_missing(self):
        scheme, detail = connection.describe_failure(
            'qemu+tcp://127.0.0.2:16509/system',
            _error('authentication failed: Failed to collect auth '
                   'credentials', ['authname', 'password']),
            {'HOME': os.path.join(self.tmp, 'home')})
        self.assertEqual('sasl', scheme)
        self.assertEqual(
            "authentication failed: Failed to collect auth credentials "
            "(libvirt's own lookup found no authname, password for "
            "127.0.0.2 (no auth.conf exists))", detail)

    def test_sasl_wrong_password_names_the_file(self):
        path = self.touch('config', 'libvirt', 'auth.conf')
        scheme, detail = connection.describe_failure(
            'qemu+tcp://127.0.0.2:16509/system',
            _error('authentication failed: authentication failed', []),
            {'XDG_CONFIG_HOME': os.path.join(self.tmp, 'config')})
        self.assertEqual('sasl', scheme)
        self.assertEqual('authentication failed: authentication failed '
                         '(SASL credentials for 127.0.0.2 from %s)' % path,
                         detail)

    def test_tls_missing_client_certificate(self):
        pki = os.path.join(self.tmp, 'pki')
        self.touch('pki', 'cacert.pem')
        scheme, detail = connection.describe_failure(
            'qemu+tls://127.0.0.3:16514/system?pkipath=%s' % pki,
            _error('Unable to read TLS confirmation: Input/output error'))
        self.assertEqual('tls', scheme)
        self.assertEqual(
            'Unable to read TLS confirmation: Input/output error '
            '(missing: client certificate %(pki)s/clientcert.pem, client '
            'key %(pki)s/clientkey.pem)' % {'pki': pki}, detail)

    def test_tls_files_present(self):
        pki = os.path.join(self.tmp, 'pki')
        for name in ('cacert.pem', 'clientcert.pem', 'clientkey.pem'):
            self.touch('pki', name)
        scheme, detail = connection.describe_failure(
            'qemu+tls://127.0.0.3/system?pkipath=%s' % pki,
            _error("authentication failed: Failed to verify peer's "
                   "certificate"))
        self.assertEqual(
            "authentication failed: Failed to verify peer's certificate "
            "(client certificate %s/clientcert.pem)" % pki, detail)

    def test_other_schemes_keep_libvirt_message(self):
        self.assertEqual(
            ('unix socket', 'Failed to connect socket'),
            connection.describe_failure('qemu:///system',
                                        _error('Failed to connect socket')))


class HostConnectionFailureTest(base.BaseTestCase):

    def test_init_error_names_uri_and_scheme_without_password(self):
        logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.addCleanup(libvirt.virResetLastError)
        host = host_mod.Host('qemu+tcp://nova:s3cret@127.0.0.1:1/system')
        self.addCleanup(host.cleanup)
        error = self.assertRaises(pyvirt_exception.LibvirtConnectionFailed,
                                  host.initialize)
        message = str(error)
        self.assertTrue(message.startswith(
            'Cannot connect to libvirt at '
            'qemu+tcp://nova:***@127.0.0.1:1/system (auth scheme sasl): '),
            message)
        self.assertIn('127.0.0.1', message)
        self.assertEqual('qemu+tcp://nova:***@127.0.0.1:1/system', host.uri)
        self.assertIn(message, logger.output)
        self.assertNotIn('s3cret', message)
        self.assertNotIn('s3cret', logger.output)
