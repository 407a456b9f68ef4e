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

"""nova's integrated test base, with PyVirtDriver on real embedded libvirt.

Differences from nova's own libvirt functional base
(``nova/tests/functional/libvirt/base.py``), which fakes libvirt:

* the compute service loads ``pyvirt.PyVirtDriver``, connected to the
  worker process's embedded QEMU driver (:mod:`tests.fixtures.embedded`;
  libvirt allows one embedded root per process), guests run under TCG;
* ``libvirt`` is imported by this module, before
  ``nova.test.TestCase.setUp`` installs ``ImportModulePoisonFixture`` (that
  fixture only stops *new* imports, so the real module stays usable);
* nova's other guards stay: ``SysFsPoisonFixture`` (no reads under
  ``/sys``), ``GenericPoisonFixture`` (no ``os.uname``) and
  ``PrivsepNoHelperFixture`` (no privsep daemon); the driver needs none of
  them, and libvirt reads the host in C, where they do not reach;
* what the driver reports to placement is recorded as it happens
  (:meth:`PyVirtTestBase._record_reported_inventory`): the memory libvirt
  reports can change between two calls on some hosts;
* images are served with real bytes: the test guest's kernel, ramdisk and
  qcow2 root disk (:func:`tests.fixtures.nova_harness.register_guest_images`);
* servers boot with ``networks='none'``: nova's NeutronFixture never sends
  ``network-vif-plugged`` events.
"""

import copy
import os
import time

import fixtures
import libvirt  # before nova.test's ImportModulePoisonFixture runs
from lxml import etree

from nova.tests.functional import integrated_helpers

from nova_pyvirt import conf as pyvirt_conf  # noqa: F401 -- [pyvirt] opts
from tests.fixtures import embedded
from tests.fixtures import nova_harness

#: Seconds to wait for a guest to print a console line (``ready`` came 3 to
#: 13 s after nova reported the server ACTIVE on a busy 2-core machine).
BOOT_TIMEOUT = int(os.environ.get('PYVIRT_GUEST_BOOT_TIMEOUT', '120'))
#: Seconds to wait for a server to reach a status through the API.
STATUS_TIMEOUT = int(os.environ.get('PYVIRT_NOVA_STATUS_TIMEOUT', '180'))
POLL = 0.5

GUEST_READY = 'PYVIRT-GUEST: ready'
GUEST_ACPI_SHUTDOWN = 'PYVIRT-GUEST: acpi shutdown'


class PyVirtTestBase(integrated_helpers._IntegratedTestBase):
    """API, conductor, scheduler, placement and one PyVirtDriver compute."""

    # lock_path is configured explicitly in _setup_services.
    REQUIRES_LOCKING = False
    # 2.53+: hypervisor ids are compute node (resource provider) uuids.
    microversion = 'latest'

    COMPUTE_HOST = 'compute'

    def setUp(self):
        # nova's import-time patches (mock autospec, exception format
        # errors), kept to nova's tests by nova_harness.import_nova_tests.
        self.useFixture(nova_harness.NovaTestGlobals())
        # Registered first, removed last: after the domains are gone.
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.instances_path = os.path.join(self.tmp, 'instances')
        self.conn = embedded.get()
        self.shim = nova_harness.ensure_driver_shim()
        super().setUp()
        self.images = nova_harness.register_guest_images(
            self.glance, nova_harness.guest_image_dir())

    def _setup_services(self):
        self.flags(api_paste_config=nova_harness.api_paste_config(),
                   group='wsgi')
        self.flags(compute_driver='pyvirt.PyVirtDriver',
                   instances_path=self.instances_path)
        self.flags(virt_type='qemu', connection_uri=self.conn.getURI(),
                   group='pyvirt')
        self.flags(lock_path=os.path.join(self.tmp, 'locks'),
                   group='oslo_concurrency')
        self.flags(server_listen='127.0.0.1', group='vnc')
        # Cleanups run in reverse: this one after the services stopped.
        self.useFixture(nova_harness.DomainCleanup(self.conn))
        super()._setup_services()

    def _setup_compute_service(self):
        self._record_reported_inventory()
        return self._start_pyvirt_compute(self.COMPUTE_HOST)

    def _start_pyvirt_compute(self, host):
        """nova-compute ``host`` with the driver, as configured now."""
        compute = self._start_compute(host)
        # The driver's Host owns a connection and a dispatcher thread; stop
        # them even if the driver's cleanup_host does not.
        self.addCleanup(compute.driver._host.cleanup)
        self._check_provider_created(compute)
        return compute

    def _check_provider_created(self, compute):
        """Fail here, with the compute's error, if placement got nothing.

        Otherwise the first boot fails later as "No valid host was found".
        """
        nodename = compute.driver.get_available_nodes()[0]
        rps = self.placement.get(
            '/resource_providers?name=%s' % nodename).body[
            'resource_providers']
        if rps:
            return
        log = self.stdlog.logger.output.splitlines()
        first = next((i for i, line in enumerate(log) if ' ERROR ' in line),
                     None)
        self.fail('compute %s (node %s) created no resource provider in '
                  'placement; first error in the log:\n%s' % (
                      compute.host, nodename,
                      '\n'.join(log[first:first + 40]) if first is not None
                      else '(none)'))

    def _record_reported_inventory(self):
        """Keep the inventory the driver last put in nova's provider tree.

        A spy: the driver's ``update_provider_tree`` runs unchanged, and
        what it left for ``nodename`` is copied to
        ``self.reported_inventory[nodename]``. The resource tracker sends
        exactly that to placement.
        """
        from nova_pyvirt import driver as pyvirt_driver

        original = pyvirt_driver.PyVirtDriver.update_provider_tree
        self.reported_inventory = {}

        def update_provider_tree(driver, provider_tree, nodename, *args,
                                 **kwargs):
            result = original(driver, provider_tree, nodename, *args,
                              **kwargs)
            self.reported_inventory[nodename] = copy.deepcopy(
                provider_tree.data(nodename).inventory)
            return result

        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.driver.PyVirtDriver.update_provider_tree',
            update_provider_tree))

    # -- helpers ---------------------------------------------------------

    @property
    def driver(self):
        return self.computes[self.COMPUTE_HOST].driver

    @property
    def nodename(self):
        return self.driver.get_available_nodes()[0]

    def _create_guest_flavor(self, name='pyvirt-guest', memory_mb=128,
                             vcpu=1, disk=1):
        return self._create_flavor(name=name, memory_mb=memory_mb, vcpu=vcpu,
                                   disk=disk, ephemeral=0, swap=0)

    def _boot_guest(self, flavor_id, name='pyvirt-server'):
        body = self._build_server(name=name, image_uuid=self.images['root'],
                                  flavor_id=flavor_id, networks='none')
        server = self.api.post_server({'server': body})
        return self._wait_for_status(server, 'ACTIVE')

    def _wait_for_status(self, server, status, timeout=STATUS_TIMEOUT):
        """Poll the API until the server has ``status``; fail fast on ERROR.

        The wait is long because builds run in the background: a TCG boot
        on a busy machine takes many seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            server = self.api.get_server(server['id'])
            if server['status'] == status:
                return server
            if server['status'] == 'ERROR':
                self.fail('server %s went to ERROR instead of %s: %s' % (
                    server['id'], status, server.get('fault')))
            if time.monotonic() > deadline:
                self.fail('server %s not %s within %d s: %s' % (
                    server['id'], status, timeout, server))
            time.sleep(POLL)

    def _domain(self, server):
        """The server's libvirt domain, through the driver's connection.

        An embedded root is opened once per process: the test looks at
        the domain through the connection the driver itself uses.
        """
        conn = self.driver._host.get_connection()
        return conn.lookupByUUIDString(server['id'])

    def _domain_state(self, server):
        return self._domain(server).state()[0]

    def _domain_xml(self, server):
        return etree.fromstring(self._domain(server).XMLDesc(0))

    def assertNoDomain(self, server):
        exc = self.assertRaises(libvirt.libvirtError, self._domain, server)
        self.assertEqual(libvirt.VIR_ERR_NO_DOMAIN, exc.get_error_code())

    def _console(self, server):
        return self.api.post_server_action(
            server['id'], {'os-getConsoleOutput': {}})['output']

    def _wait_for_console(self, server, line, after=None,
                          timeout=BOOT_TIMEOUT):
        """Poll os-getConsoleOutput until ``line`` is printed.

        With ``after``, ``line`` must come after the last ``after`` line in
        the output (so an older boot's line does not count if the console
        log is appended to rather than restarted).
        """
        deadline = time.monotonic() + timeout
        while True:
            output = self._console(server)
            start = output.rfind(after) if after else -1
            if output.find(line, start + 1) >= 0:
                return output
            if time.monotonic() > deadline:
                self.fail('%r not on the console of %s within %d s; '
                          'console:\n%s' % (line, server['id'], timeout,
                                            output))
            time.sleep(POLL)

    def _provider_uuid(self):
        rps = self.placement.get(
            '/resource_providers?name=%s' % self.nodename).body[
            'resource_providers']
        self.assertEqual(1, len(rps), rps)
        return rps[0]['uuid']
