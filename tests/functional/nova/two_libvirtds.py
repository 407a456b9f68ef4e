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

"""Two PyVirtDriver computes, each on a libvirtd of its own, over TLS.

The live migration variant of :mod:`.two_computes`: an embedded QEMU root
cannot take part in a peer-to-peer migration, so both hosts are
:class:`~tests.fixtures.remote_libvirtd.RemoteLibvirtdFixture` daemons.

============  ==============================  ============================
              ``host1``                       ``host2``
============  ==============================  ============================
libvirtd      127.0.0.2, TLS                  127.0.0.3, TLS
host name     ``host1`` (UTS namespace)       ``host2`` (UTS namespace)
qemu.conf     ``migration_address/host`` =    ``migration_address/host`` =
              127.0.0.2                       127.0.0.3
instances     ``<tmp>/instances``             ``<tmp>/instances-host2``
============  ==============================  ============================

One :class:`~tests.fixtures.pki.PkiFixture` CA issues both daemons' server
certificates and every client certificate, so the daemons trust each
other for the peer-to-peer connection. Both listen on the same TLS port
(on their own address), as real hosts would: one
``[pyvirt] live_migration_uri`` template, ``qemu+tls://%s:PORT/system``,
fits both, with the ``pkipath=`` of the source daemon's own client
certificate (the source's libvirtd opens the URI, not nova-compute).
Each driver connects with ``connection_uri = qemu+tls://ADDRESS:PORT/
system?pkipath=<client dir>`` and announces its address as
``live_migration_inbound_addr``.

nova, and a real deployment, give every host the same instances path, and
the source's domain XML names its disks there. Each daemon runs in a mount
namespace in which its host's real instances directory is also
bind-mounted over the *other* host's path (as
:class:`~.two_computes.TwoComputesTestBase` does for the sshds), so a
guest that arrives with the source's paths opens the destination's files.
"""

import os

from tests.fixtures import pki as pki_fixture
from tests.fixtures import remote_libvirtd
from tests.fixtures import sshd as sshd_fixture
from tests.functional.nova import two_computes

HOST1 = two_computes.HOST1
HOST2 = two_computes.HOST2
ADDRESSES = two_computes.ADDRESSES


class TwoLibvirtdsTestBase(two_computes.TwoComputesTestBase):
    """API, conductor, scheduler, placement and two computes on libvirtds."""

    #: Each host's address: its libvirtd's, its migration address, my_ip.
    LIBVIRTD_ADDRESSES = ADDRESSES

    def setUp(self):
        reason = remote_libvirtd.unavailable(tls=True)
        if reason:
            self.skipTest(reason)
        super().setUp()

    def _tls_port(self):
        """One TLS port for both daemons, free on both addresses."""
        return sshd_fixture.common_free_port(
            [self.LIBVIRTD_ADDRESSES[HOST1], self.LIBVIRTD_ADDRESSES[HOST2]])

    def _libvirtd_fixture(self, host, other, port):
        """The daemon of ``host`` (subclasses may place it elsewhere)."""
        return remote_libvirtd.RemoteLibvirtdFixture(
            address=self.LIBVIRTD_ADDRESSES[host], pki=self.pki,
            hostname=host, tls_port=port, migration=True,
            binds=[(self.paths[host], self.paths[other])] +
            self._libvirtd_binds(host))

    def _setup_compute_service(self):
        self._make_instance_paths()
        self.pki = self.useFixture(pki_fixture.PkiFixture())
        port = self._tls_port()
        # Registered before the services: stopped after them.
        self.libvirtds = {}
        for host, other in ((HOST1, HOST2), (HOST2, HOST1)):
            self.libvirtds[host] = self.useFixture(
                self._libvirtd_fixture(host, other, port))
        client = self.pki.client_dir(os.path.join(self.tmp, 'client-pki'))
        self.uris = {host: daemon.tls_uri(pkipath=client)
                     for host, daemon in self.libvirtds.items()}
        self.useFixture(two_computes.PerHostIdentity(
            {uri: host for host, uri in self.uris.items()}))
        self._record_reported_inventory()
        first = None
        for host in (HOST1, HOST2):
            address = self.LIBVIRTD_ADDRESSES[host]
            self.flags(my_ip=address, instances_path=self.paths[host])
            self.flags(
                connection_uri=self.uris[host],
                live_migration_uri='qemu+tls://%%s:%d/system?pkipath=%s' % (
                    port, self.libvirtds[host].client_pki_dir),
                live_migration_inbound_addr=address,
                group='pyvirt')
            compute = self._start_pyvirt_compute(host)
            first = first or compute
        return first

    def _libvirtd_binds(self, host):
        """More ``(source, target)`` bind mounts in ``host``'s daemon.

        None here; a test gives one host something the other lacks.
        """
        return []
