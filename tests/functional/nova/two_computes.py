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

"""nova's services with two PyVirtDriver computes that act as two hosts.

============  ==========================  =============================
              ``host1``                   ``host2``
============  ==========================  =============================
libvirt       the embedded QEMU root      a private ``libvirtd``
                                          (:mod:`tests.fixtures.libvirtd`)
instances     ``<tmp>/instances``         ``<tmp>/instances-host2``
``my_ip``     127.0.0.2                   127.0.0.3
sshd          127.0.0.2, sees host1's     127.0.0.3, sees host2's
              directory at host2's path   directory at host1's path
============  ==========================  =============================

The driver reads ``[pyvirt] connection_uri``, ``[DEFAULT] instances_path``
and ``my_ip`` once, when it is built, so the options are set before each
compute starts and the two drivers keep their own values.

nova assumes that every compute host has the same instances path: a source
host copies a file to ``<dest ip>:<its own instances path>/<uuid>``. Each
host's sshd runs in a private mount namespace in which the host's real
instances directory is bind-mounted over the *other* host's path
(:class:`tests.fixtures.sshd.SshdFixture` ``binds``), so such a copy lands
in the destination's directory, as it would between two real hosts.

Both sshds listen on the same port (on their own address): ``[pyvirt]
remote_ssh_port`` is one setting for all hosts. One client key is accepted
by both, and one ``known_hosts`` file holds both host keys.

What one process shares and two hosts would not, and is made per host
here:

* the hypervisor host name (libvirt's ``getHostname()``, the same for both
  daemons on one machine): each compute's node is named after its service
  host (``host1``, ``host2``), so placement gets two providers and nova's
  ``_get_provider_uuid_by_host`` finds them;
* the compute node UUID: nova keeps the one it reads from
  ``<state_path>/compute_id`` in a process-wide global; here each node's
  UUID is derived from its name.

:mod:`tests.fixtures.two_hosts` lays out the same two hosts for tests that
drive ``PyVirtDriver`` directly; here nova's compute services build the
drivers, from nova's configuration, so the layout is set up again around
them.
"""

import os
import uuid

import fixtures
import libvirt
from oslo_utils import uuidutils

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt import driver as pyvirt_driver
from nova_pyvirt.hypervisor import host as pyvirt_host
from nova_pyvirt.migration import transport
from tests.fixtures import libvirtd as libvirtd_fixture
from tests.fixtures import sshd as sshd_fixture
from tests.functional.nova import base

HOST1 = 'host1'
HOST2 = 'host2'
ADDRESSES = {HOST1: '127.0.0.2', HOST2: '127.0.0.3'}
_NODE_NAMESPACE = uuid.UUID('5f0d7a9e-3c52-4a52-9d7e-6b1f2e0c4a11')


class _SshdOnPort(sshd_fixture.SshdFixture):
    """An :class:`SshdFixture` on a port chosen by the caller."""

    def __init__(self, port, **kwargs):
        super().__init__(**kwargs)
        self.wanted_port = port

    def _start(self):
        with fixtures.MonkeyPatch('tests.fixtures.sshd.free_port',
                                  lambda address: self.wanted_port):
            super()._start()


class PerHostIdentity(fixtures.Fixture):
    """Node name and node UUID per driver, as two processes would have.

    :param names: ``{libvirt URI: node name}``.
    """

    def __init__(self, names):
        super().__init__()
        self.names = dict(names)

    def _setUp(self):
        names = self.names
        get_hostname = pyvirt_host.Host.get_hostname
        get_available_resource = \
            pyvirt_driver.PyVirtDriver.get_available_resource

        def hostname(host):
            name = names.get(host.uri)
            return name if name is not None else get_hostname(host)

        def node_uuid(nodename):
            return str(uuid.uuid5(_NODE_NAMESPACE, nodename))

        def nodenames_by_uuid(driver, refresh=False):
            nodename = driver.get_available_nodes()[0]
            return {node_uuid(nodename): nodename}

        def available_resource(driver, nodename):
            resources = get_available_resource(driver, nodename)
            resources['uuid'] = node_uuid(nodename)
            return resources

        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.hypervisor.host.Host.get_hostname', hostname))
        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.driver.PyVirtDriver.get_nodenames_by_uuid',
            nodenames_by_uuid))
        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.driver.PyVirtDriver.get_available_resource',
            available_resource))


class TwoComputesTestBase(base.PyVirtTestBase):
    """API, conductor, scheduler, placement and two PyVirtDriver computes."""

    # The server's host (OS-EXT-SRV-ATTR:host) is shown to admins only.
    ADMIN_API = True
    COMPUTE_HOST = HOST1

    def _setup_compute_service(self):
        self._make_instance_paths()
        # Registered before the services: stopped after them.
        self.libvirtd = self.useFixture(self._host2_libvirtd())
        self.uris = {HOST1: self.conn.getURI(), HOST2: self.libvirtd.uri}
        self._start_sshds()
        self.useFixture(PerHostIdentity(
            {uri: host for host, uri in self.uris.items()}))
        self._record_reported_inventory()
        self.flags(allow_resize_to_same_host=False)
        first = None
        for host in (HOST1, HOST2):
            self.flags(my_ip=ADDRESSES[host], instances_path=self.paths[host])
            self.flags(connection_uri=self.uris[host], group='pyvirt')
            compute = self._start_pyvirt_compute(host)
            first = first or compute
        return first

    def _make_instance_paths(self):
        """``self.paths``: each host's own instances directory."""
        self.paths = {
            HOST1: self.instances_path,
            HOST2: os.path.join(self.tmp, 'instances-host2'),
        }
        for path in self.paths.values():
            os.makedirs(path, exist_ok=True)

    def _host2_libvirtd(self):
        """The fixture of ``host2``'s daemon (subclasses place it)."""
        return libvirtd_fixture.LibvirtdFixture()

    def _start_sshds(self):
        """One sshd per host address, on one port, with one client key."""
        port = sshd_fixture.common_free_port(
            [ADDRESSES[HOST1], ADDRESSES[HOST2]])
        self.sshds = {}
        for host, other in ((HOST1, HOST2), (HOST2, HOST1)):
            self.sshds[host] = self.useFixture(_SshdOnPort(
                port, address=ADDRESSES[host],
                binds={self.paths[other]: self.paths[host]}))
        client = self.sshds[HOST1]
        with open(client.client_key + '.pub') as handle:
            public_key = handle.read()
        with open(self.sshds[HOST2].authorized_keys, 'a') as handle:
            handle.write(public_key)
        known_hosts = os.path.join(self.tmp, 'known_hosts')
        with open(known_hosts, 'w') as out:
            for fixture in self.sshds.values():
                with open(fixture.known_hosts) as handle:
                    out.write(handle.read())
        options = client.pyvirt_options(port)
        options['remote_ssh_known_hosts_file'] = known_hosts
        self.flags(group='pyvirt', **options)
        # With exactly the drivers' settings, each host's sshd sees that
        # host's directory at the other host's path.
        remote = transport.transport_for(pyvirt_conf.CONF)
        for host, other in ((HOST1, HOST2), (HOST2, HOST1)):
            probe = '.probe-%s' % uuidutils.generate_uuid(dashed=False)
            open(os.path.join(self.paths[host], probe), 'w').close()
            self.assertTrue(remote.exists(
                ADDRESSES[host], os.path.join(self.paths[other], probe)),
                'sshd on %s does not show %s at %s' % (
                    ADDRESSES[host], self.paths[host], self.paths[other]))
            os.unlink(os.path.join(self.paths[host], probe))

    # -- per-host helpers ----------------------------------------------------

    def _connection(self, host):
        return self.computes[host].driver._host.get_connection()

    def _domain_on(self, host, server):
        return self._connection(host).lookupByUUIDString(server['id'])

    def assertNoDomainOn(self, host, server):
        exc = self.assertRaises(libvirt.libvirtError, self._domain_on, host,
                                server)
        self.assertEqual(libvirt.VIR_ERR_NO_DOMAIN, exc.get_error_code())

    def _instance_dir(self, host, server):
        return os.path.join(self.paths[host], server['id'])

    def _host_of(self, server):
        return server['OS-EXT-SRV-ATTR:host']

    def _node_provider(self, host):
        return self._get_provider_uuid_by_host(host)
