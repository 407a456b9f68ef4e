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

"""Two compute hosts on their own switches, for live migration.

Run by :mod:`.test_live_migrate_on_ovs` as :mod:`ovs_two_computes_host`
is (in OVS-A's namespaces, answering the same requests), with one more
key in its JSON argument: ``"addresses": {"host1": A1, "host2": A2}``,
each host's address on the management link between the two network
namespaces. The hosts are those of :mod:`two_libvirtds` instead of
:mod:`two_computes`, since an embedded QEMU root cannot take part in a
peer-to-peer migration:

==============  ============================  ============================
                ``host1``                     ``host2``
==============  ============================  ============================
libvirtd        in this process's (OVS-A's)   in OVS-B's namespaces, as
                namespaces, TLS on A1         for the cold migration, TLS
                                              on A2
QEMU's          A1                            A2
migration
address
==============  ============================  ============================

nova-compute of both hosts runs here, in OVS-A's network namespace, and
reaches ``host2``'s libvirtd over the management link; so does ``host1``'s
libvirtd for the peer-to-peer connection, and its QEMU for the migration
stream. Each host's ports are plugged as in :mod:`ovs_two_computes_host`.
``[compute] live_migration_wait_for_vif_plug`` is off: the test's agent
reports a port only once its tap exists, which on the destination is when
the guest starts moving (see :meth:`OvsLiveComputesCase.setUp`).

More requests: ``{"op": "port_bindings", "id": ID}`` -> ``{"hosts":
[...]}``, the hosts Neutron (nova's ``NeutronFixture``) has a binding of
the port for; ``{"op": "log_problems", "words": [...] (optional)}`` ->
``{"lines": [...]}``, the lines logged so far with one of the words
(default: ERROR and WARNING lines); ``{"op": "set_flags", "group": G,
"values": {...}}`` -> ``{"ok": true}``, options of both hosts;
``{"op": "instance_dir", "uuid": U, "host": H, "digest": [NAME...]
(optional)}`` -> ``{"files": [...], "disk_info": {...}, "sha256": {NAME:
HEX}}``, the names in that host's directory of the instance, its
``disk.info`` record and the SHA-256 of the files named in ``digest``
(``null`` for what is not there).
"""

import hashlib
import os
import sys

from oslo_serialization import jsonutils

from tests.fixtures import sshd
from tests.functional.nova import ovs_compute_host
from tests.functional.nova import ovs_two_computes_host
from tests.functional.nova import two_computes
from tests.functional.nova import two_libvirtds


class OvsLiveComputesCase(ovs_two_computes_host.OvsTwoComputesCase,
                          two_libvirtds.TwoLibvirtdsTestBase):
    """Both computes on libvirtds over TLS, each on its own switch."""

    @classmethod
    def read_arguments(cls, args):
        super(OvsLiveComputesCase, cls).read_arguments(args)
        cls.LIBVIRTD_ADDRESSES = dict(cls.host2_switch['addresses'])

    def setUp(self):
        super(OvsLiveComputesCase, self).setUp()
        # The test's agent reports a port once it has an OpenFlow port,
        # that is once the destination's QEMU made its tap, which happens
        # when the guest starts moving: nothing would come at plug time
        # (pre_live_migration), which nova waits for by default. As for
        # the networking back ends that send no such event.
        self.flags(live_migration_wait_for_vif_plug=False, group='compute')
        # host2's live migration plugs and unplugs on host2's switch too
        # (the base class gave its driver and hot-plug the switch's Vifs).
        driver = self.computes[two_computes.HOST2].driver
        driver._live.vifs = driver._vifs

    def _tls_port(self):
        # host2's address is in another network namespace: nothing here
        # can bind it, and nothing listens in OVS-B's namespace but OVS.
        return sshd.free_port(self.LIBVIRTD_ADDRESSES[two_computes.HOST1])

    def _libvirtd_fixture(self, host, other, port):
        fixture = super(OvsLiveComputesCase, self)._libvirtd_fixture(
            host, other, port)
        if host == two_computes.HOST2:
            fixture.enter = ovs_two_computes_host.enter_namespaces(
                self.host2_switch['pid'])
        return fixture

    def answer(self, request):
        if request['op'] == 'port_bindings':
            return {'hosts': sorted(
                self.neutron._port_bindings.get(request['id'], {}))}
        if request['op'] == 'set_flags':
            self.flags(group=request['group'], **request['values'])
            return {'ok': True}
        if request['op'] == 'log_problems':
            words = request.get('words') or [' ERROR ', ' WARNING ']
            return {'lines': [line for line in
                              self.stdlog.logger.output.splitlines()
                              if any(word in line for word in words)]}
        if request['op'] == 'instance_dir':
            return self._instance_dir(request['host'], request['uuid'],
                                      request.get('digest') or [])
        return super(OvsLiveComputesCase, self).answer(request)

    def _instance_dir(self, host, uuid, digest):
        path = os.path.join(self.paths[host], uuid)
        if not os.path.isdir(path):
            return {'files': None, 'disk_info': None, 'sha256': None}
        record = None
        info = os.path.join(path, 'disk.info')
        if os.path.exists(info):
            with open(info) as handle:
                record = jsonutils.loads(handle.read())
        sums = {}
        for name in digest:
            try:
                with open(os.path.join(path, name), 'rb') as handle:
                    sums[name] = hashlib.sha256(handle.read()).hexdigest()
            except FileNotFoundError:
                sums[name] = None
        return {'files': sorted(os.listdir(path)), 'disk_info': record,
                'sha256': sums}


if __name__ == '__main__':
    sys.exit(ovs_compute_host.main(OvsLiveComputesCase))
