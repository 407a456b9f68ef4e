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

"""``init_host`` over remote URIs: TCP with SASL, TLS with client certs.

Each test starts a libvirtd of its own on a loopback address
(:class:`tests.fixtures.remote_libvirtd.RemoteLibvirtdFixture`) and builds
a real ``PyVirtDriver`` whose ``[pyvirt] connection_uri`` points at it. The
driver is given nothing but what libvirt's own lookup reads:

* **SASL** (``qemu+tcp://``): an ``auth.conf`` under the service user's
  ``$XDG_CONFIG_HOME/libvirt``. The driver runs in a child process started
  with that ``XDG_CONFIG_HOME`` (and ``HOME``), as nova-compute would be:
  libvirt finds the file through GLib, which reads ``XDG_CONFIG_HOME`` once
  and keeps it for the life of the process, so one test process could not
  give two tests two different ``auth.conf`` files. The child logs at
  DEBUG, everything, to its stderr, which the test searches for the
  password.
* **TLS** (``qemu+tls://...?pkipath=DIR``): the CA certificate, client
  certificate and key in ``DIR``, as libvirt names them. The driver runs in
  this process, its logs captured at DEBUG.

A wrong password and a missing client certificate must each fail
``init_host`` with :class:`nova_pyvirt.exception.LibvirtConnectionFailed`,
whose message names the URI, the auth scheme and libvirt's error.
"""

import logging
import os
import subprocess
import sys

import fixtures
from lxml import etree
from nova import exception as nova_exception
from nova import objects
from nova.virt import virtapi
from oslo_serialization import jsonutils
from oslo_utils import uuidutils
from oslotest import base
from testtools import content

from nova_pyvirt import driver as pyvirt_driver
from nova_pyvirt import exception as pyvirt_exception
from tests import design_support
from tests.fixtures import pki as pki_fixture
from tests.fixtures import remote_libvirtd

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
SASL_ADDRESS = '127.0.0.2'
TLS_ADDRESS = '127.0.0.3'
USER = 'nova-compute'
CHILD_TIMEOUT = 180

# The service: configure as nova-compute would, log everything at DEBUG to
# stderr, init_host, and print what it saw as one JSON line.
SERVICE = r'''
import json
import logging
import sys

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format='%(levelname)s %(name)s: %(message)s')

from lxml import etree
from nova import objects
from nova.virt import virtapi

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt import driver as pyvirt_driver

uri, instances_path = sys.argv[1:3]
CONF = pyvirt_conf.CONF
CONF([], project='nova', default_config_files=[])
CONF.set_override('virt_type', 'qemu', group='pyvirt')
CONF.set_override('connection_uri', uri, group='pyvirt')
CONF.set_override('instances_path', instances_path)
objects.register_all()
driver = pyvirt_driver.PyVirtDriver(virtapi.VirtAPI())
try:
    driver.init_host('test-host')
    host = driver._host
    caps = etree.fromstring(host.get_connection().getCapabilities())
    result = {'host_uuid': caps.findtext('host/uuid'),
              'domains': len(host.list_domains()),
              'hostname': host.get_hostname()}
except Exception as exc:
    result = {'error': [cls.__name__ for cls in type(exc).__mro__],
              'message': str(exc)}
finally:
    driver.cleanup_host('test-host')
print(json.dumps(result))
'''


def _skip_unless(test, **needs):
    reason = remote_libvirtd.unavailable(**needs)
    if reason:
        test.skipTest(reason)


class SaslConnectionTest(base.BaseTestCase):
    """``qemu+tcp://`` with ``auth_tcp = "sasl"`` and an ``auth.conf``."""

    def setUp(self):
        super(SaslConnectionTest, self).setUp()
        _skip_unless(self, sasl=True)
        # Unique, so that finding it anywhere in the output means a leak.
        self.password = 'pw-%s' % uuidutils.generate_uuid(dashed=False)
        self.daemon = self.useFixture(remote_libvirtd.RemoteLibvirtdFixture(
            address=SASL_ADDRESS, sasl_users={USER: self.password}))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.home = os.path.join(self.tmp, 'home')
        self.config_home = os.path.join(self.home, '.config')
        os.makedirs(self.config_home)

    def service(self):
        """Run the driver's init_host as a service of that user would."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('LIBVIRT_', 'XDG_'))}
        env.update(HOME=self.home, XDG_CONFIG_HOME=self.config_home,
                   PYTHONPATH=os.pathsep.join(
                       [REPO] + [p for p in env.get('PYTHONPATH', '')
                                 .split(os.pathsep) if p]))
        proc = subprocess.run(
            [sys.executable, '-W', 'ignore', '-c', SERVICE,
             self.daemon.tcp_uri(), os.path.join(self.tmp, 'instances')],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, cwd=self.tmp, text=True,
            timeout=CHILD_TIMEOUT)
        self.addDetail('service-stderr', content.text_content(
            proc.stderr))
        self.assertEqual(0, proc.returncode, proc.stderr[-4000:])
        # The DEBUG log was really on, and holds the connection attempt.
        self.assertIn('DEBUG nova_pyvirt.hypervisor.host: Connecting to '
                      'libvirt at %s' % self.daemon.tcp_uri(), proc.stderr)
        return jsonutils.loads(proc.stdout.strip().splitlines()[-1]), proc

    def assertNoSecret(self, proc, *secrets):
        for secret in secrets:
            self.assertNotIn(secret, proc.stdout)
            self.assertNotIn(secret, proc.stderr)

    def test_connects_with_auth_conf(self):
        remote_libvirtd.write_auth_conf(self.config_home, SASL_ADDRESS, USER,
                                        self.password)
        result, proc = self.service()
        self.assertNotIn('error', result, result.get('message'))
        # The daemon at the URI, no other: its own host UUID.
        self.assertEqual(self.daemon.host_uuid, result['host_uuid'])
        self.assertEqual(0, result['domains'])
        self.assertTrue(result['hostname'])
        self.assertNoSecret(proc, self.password)

    def test_wrong_password_fails_init_host(self):
        wrong = 'wrong-%s' % uuidutils.generate_uuid(dashed=False)
        auth_conf = remote_libvirtd.write_auth_conf(
            self.config_home, SASL_ADDRESS, USER, wrong)
        result, proc = self.service()
        self.assertIn('LibvirtConnectionFailed', result['error'])
        self.assertIn('HypervisorUnavailable', result['error'])
        message = result['message']
        self.assertIn('Cannot connect to libvirt at %s (auth scheme sasl): '
                      % self.daemon.tcp_uri(), message)
        self.assertIn('authentication failed', message)
        self.assertIn(auth_conf, message)
        self.assertNoSecret(proc, wrong, self.password)

    def test_missing_credentials_are_named(self):
        # No auth.conf at all: libvirt asks the driver, which answers
        # nothing and says what libvirt could not find.
        result, proc = self.service()
        message = result['message']
        self.assertIn('Cannot connect to libvirt at %s (auth scheme sasl): '
                      % self.daemon.tcp_uri(), message)
        self.assertIn('Failed to collect auth credentials', message)
        self.assertIn("libvirt's own lookup found no authname, password "
                      "for %s" % SASL_ADDRESS, message)
        self.assertNoSecret(proc, self.password)


class TlsConnectionTest(base.BaseTestCase):
    """``qemu+tls://...?pkipath=DIR`` with client certificates required."""

    def setUp(self):
        super(TlsConnectionTest, self).setUp()
        _skip_unless(self, tls=True)
        self.pki = self.useFixture(pki_fixture.PkiFixture())
        self.daemon = self.useFixture(remote_libvirtd.RemoteLibvirtdFixture(
            address=TLS_ADDRESS, pki=self.pki))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG,
            format='%(levelname)s %(name)s: %(message)s'))

    def make_driver(self, uri):
        conf = self.useFixture(design_support.ConfFixture())
        conf.set(virt_type='qemu', connection_uri=uri)
        conf.set(group='DEFAULT',
                 instances_path=os.path.join(self.tmp, 'instances'))
        objects.register_all()
        driver = pyvirt_driver.PyVirtDriver(virtapi.VirtAPI())
        self.addCleanup(driver.cleanup_host, 'test-host')
        return driver

    def assertNoKeyLogged(self, pkipath):
        key = os.path.join(pkipath, 'clientkey.pem')
        if os.path.exists(key):
            with open(key) as handle:
                body = handle.read().splitlines()[1]
            self.assertNotIn(body, self.logger.output)
        self.assertNotIn('PRIVATE KEY', self.logger.output)

    def test_connects_with_client_certificate(self):
        pkipath = self.pki.client_dir(os.path.join(self.tmp, 'pki'))
        uri = self.daemon.tls_uri(pkipath)
        driver = self.make_driver(uri)
        driver.init_host('test-host')
        host = driver._host
        caps = etree.fromstring(host.get_connection().getCapabilities())
        self.assertEqual(self.daemon.host_uuid, caps.findtext('host/uuid'))
        self.assertEqual([], host.list_domains())
        self.assertIn('DEBUG nova_pyvirt.hypervisor.host: Connecting to '
                      'libvirt at %s' % uri, self.logger.output)
        self.assertNoKeyLogged(pkipath)

    def test_missing_client_certificate_fails_init_host(self):
        pkipath = self.pki.client_dir(os.path.join(self.tmp, 'pki'),
                                      certificate=False)
        uri = self.daemon.tls_uri(pkipath)
        driver = self.make_driver(uri)
        error = self.assertRaises(pyvirt_exception.LibvirtConnectionFailed,
                                  driver.init_host, 'test-host')
        self.assertIsInstance(error, nova_exception.HypervisorUnavailable)
        message = str(error)
        self.assertIn('Cannot connect to libvirt at %s (auth scheme tls): '
                      % uri, message)
        # libvirt's own words, then what is missing.
        self.assertIn('TLS', message)
        self.assertIn('missing: client certificate %s' % os.path.join(
            pkipath, 'clientcert.pem'), message)
        self.assertIn(message, self.logger.output)
        self.assertNoKeyLogged(pkipath)
