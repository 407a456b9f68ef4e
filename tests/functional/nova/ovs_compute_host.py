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

"""nova's whole functional stack inside the OVS fixture's namespaces.

Run by :mod:`tests.functional.nova.test_server_on_ovs` with
:meth:`tests.fixtures.ovs.OvsFixture.command` (``python -m
tests.functional.nova.ovs_compute_host HELPER``): nova's API, conductor,
scheduler, placement and the ``PyVirtDriver`` compute service run in this
process (:class:`OvsComputeCase`, a :class:`base.PyVirtTestBase`), so the
embedded QEMU driver, QEMU, libvirt's and os-vif's ``ovs-vsctl`` and the
privsep daemons see the test's ``/run/openvswitch`` and make their devices
in the test's network namespace. See the test module for why.

Differences from :class:`base.PyVirtTestBase`:

* the embedded libvirt root uses no cgroup controllers: the OVS
  fixture's mount namespace has a sysfs of its network namespace on
  ``/sys``, without the cgroup file system;
* nova's ``SysFsPoisonFixture`` and ``PrivsepNoHelperFixture`` are undone
  once the services run: os-vif plugs ports for real here, through its
  privsep daemon (started with ``HELPER``), as on a compute host;
* ``[DEFAULT] vif_plugging_timeout`` (which nova's ``NeutronFixture`` sets
  to 0) and ``vif_plugging_is_fatal`` are set by the ``configure``
  request, before the server is booted.

The test drives it over a pipe: one JSON request per line on stdin, one
JSON answer per line on the original stdout (everything else this process
prints goes to stderr)::

    {"op": "configure", "vif_plugging_timeout": N,
     "vif_plugging_is_fatal": B,
     "config_drive_format": F (optional)}        -> {"ok": true}
    {"op": "create_port", "id": ID, "mac": MAC, "ip": IP,
     "details": {binding:vif_details}}           -> {"port": {...}}
    {"op": "boot", "port_id": ID, "host": H,
     "fields": {more server fields} (optional)}  -> {"server": {...}}
    {"op": "api", "method": "GET"|"POST"|"DELETE", "url": U,
     "body": B, "admin": B}                      -> {"status": S, "body": B}
    {"op": "port", "id": ID}                     -> {"port": {...}}
    {"op": "domain_state", "uuid": U, "host": H} -> {"state": S or null}
    {"op": "domain_macs", "uuid": U, "host": H}  -> {"live": [MAC...],
                                                     "persistent": [MAC...]}
    {"op": "domains", "host": H}                 -> {"uuids": [...]}
    {"op": "quit"} or end of input               -> cleanup, exit

``host`` (optional) names a compute service: ``boot`` asks nova for that
host, the domain requests look at that host's libvirt (default: the only
compute). A failed request answers ``{"error": traceback}``; an API error
answers ``{"status": S, "body": text}``.
"""

import builtins
import glob
import os
import sys
import traceback

import fixtures
from lxml import etree
from oslo_privsep import daemon as privsep_daemon
from oslo_serialization import jsonutils
import testtools

from nova import conf as nova_conf
from nova.tests.functional.api import client as api_client

from nova_pyvirt.hypervisor import connection
from tests.fixtures import embedded
from tests.functional.network import os_vif_host
from tests.functional.nova import base

CONF = nova_conf.CONF

# The real functions, before nova.test's fixtures poison them.
_REAL = {
    'os.path.isdir': os.path.isdir,
    'builtins.open': builtins.open,
    'glob.iglob': glob.iglob,
    'os.listdir': os.listdir,
    'glob.glob': glob.glob,
    'oslo_privsep.daemon.RootwrapClientChannel':
        privsep_daemon.RootwrapClientChannel,
}


def _without_cgroups(prepare):
    def prepare_embedded_root(root, settings=None):
        uri = prepare(root, settings)
        with open(os.path.join(root, 'etc', 'qemu.conf'), 'a') as handle:
            handle.write('cgroup_controllers = [ ]\n')
        return uri
    return prepare_embedded_root


class OvsComputeCase(base.PyVirtTestBase):
    """The services; :meth:`serve` answers the test's requests."""

    helper = None
    replies = None
    # A rebuild or a revert waits for network-vif-plugged, which the
    # test's agent sends through the same pipe as the request that started
    # it: that request must return first, so RPC casts are casts, as
    # between real services (nova's harness makes them calls by default).
    CAST_AS_CALL = False

    @classmethod
    def read_arguments(cls, args):
        """Take the arguments after the helper's path (here: none)."""
        if args:
            raise SystemExit('unexpected arguments %r' % (args,))

    def setUp(self):
        super().setUp()
        for name, real in _REAL.items():
            self.useFixture(fixtures.MonkeyPatch(name, real))
        os_vif_host.configure_os_vif(CONF, self.helper)
        self.flavor_id = self._create_guest_flavor()

    def serve(self):
        for line in sys.stdin:
            request = jsonutils.loads(line)
            if request['op'] == 'quit':
                break
            try:
                reply = self.answer(request)
            except api_client.OpenStackApiException as exc:
                reply = {'status': exc.response.status_code,
                         'body': exc.response.text}
            except Exception:
                reply = {'error': traceback.format_exc()}
            self.replies.write(jsonutils.dumps(reply) + '\n')
            self.replies.flush()

    def answer(self, request):
        op = request['op']
        if op == 'configure':
            self.flags(vif_plugging_timeout=request['vif_plugging_timeout'],
                       vif_plugging_is_fatal=request['vif_plugging_is_fatal'])
            if request.get('config_drive_format'):
                self.flags(config_drive_format=request[
                    'config_drive_format'])
            return {'ok': True}
        if op == 'create_port':
            return {'port': self.create_port(request)}
        if op == 'boot':
            body = self._build_server(
                name='pyvirt-ovs-server', image_uuid=self.images['root'],
                flavor_id=self.flavor_id,
                networks=[{'port': request['port_id']}],
                host=request.get('host'))
            body.update(request.get('fields') or {})
            return {'server': self.api.post_server({'server': body})}
        if op == 'api':
            client = self.admin_api if request.get('admin') else self.api
            method = request['method']
            if method == 'GET':
                response = client.api_get(request['url'])
            elif method == 'POST':
                response = client.api_post(
                    request['url'], request.get('body'),
                    check_response_status=[200, 201, 202, 204, 207])
            elif method == 'DELETE':
                response = client.api_delete(request['url'])
            else:
                raise ValueError('unknown method %r' % method)
            return {'status': response.status, 'body': response.body}
        if op == 'port':
            return {'port': self.neutron.show_port(request['id'])['port']}
        if op == 'domain_state':
            conn = self.connection(request.get('host'))
            try:
                dom = conn.lookupByUUIDString(request['uuid'])
            except base.libvirt.libvirtError:
                return {'state': None}
            return {'state': dom.state()[0]}
        if op == 'domain_macs':
            # The guest's NICs as libvirt has them: in the running guest
            # and in the definition it would start from next time.
            dom = self.connection(request.get('host')).lookupByUUIDString(
                request['uuid'])
            return {key: etree.fromstring(dom.XMLDesc(flags)).xpath(
                '/domain/devices/interface/mac/@address')
                for key, flags in (
                    ('live', 0),
                    ('persistent', base.libvirt.VIR_DOMAIN_XML_INACTIVE))}
        if op == 'domains':
            conn = self.connection(request.get('host'))
            return {'uuids': [dom.UUIDString()
                              for dom in conn.listAllDomains()]}
        raise ValueError('unknown op %r' % op)

    def connection(self, host=None):
        """The libvirt connection of ``host``'s driver (default: the one)."""
        driver = self.computes[host or self.COMPUTE_HOST].driver
        return driver._host.get_connection()

    def create_port(self, request):
        """A port on the fixture's network_1, as ML2/OVS reports it.

        Its status is DOWN until the agent wires it, so nova's network
        info says ``active: False`` and the driver waits for its event on
        boot. The same port serves an ``os-interface`` attach: nova binds
        an existing port with ``update_port`` (``device_id``,
        ``binding:host_id``) on boot and on attach alike, which the
        fixture stores as given, and unbinds it the same way on detach.
        """
        network = self.neutron.network_1
        subnet = self.neutron.subnet_1
        port = {
            'id': request['id'],
            'name': '',
            'description': '',
            'network_id': network['id'],
            'admin_state_up': True,
            'status': 'DOWN',
            'mac_address': request['mac'],
            'fixed_ips': [{'ip_address': request['ip'],
                           'subnet_id': subnet['id']}],
            'tenant_id': self.neutron.tenant_id,
            'project_id': self.neutron.tenant_id,
            'device_id': '',
            'device_owner': '',
            'binding:profile': {},
            'binding:vif_details': request['details'],
            'binding:vif_type': 'ovs',
            'binding:vnic_type': 'normal',
            'port_security_enabled': True,
            'security_groups': [self.neutron.security_group['id']],
        }
        self.neutron._ports[port['id']] = port
        return port


def main(case_class=None):
    """Serve the test's requests with ``case_class`` (an OvsComputeCase).

    Its ``helper`` is the first argument; further arguments are the
    class's to read (:meth:`OvsComputeCase.read_arguments`).
    """
    case_class = case_class or OvsComputeCase
    # Replies go to the original stdout only; whatever else writes to
    # stdout (logging set-ups, prints) goes to stderr.
    replies = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    embedded.connection.prepare_embedded_root = _without_cgroups(
        connection.prepare_embedded_root)
    case_class.helper = sys.argv[1]
    case_class.read_arguments(sys.argv[2:])
    case_class.replies = replies
    case = case_class('serve')
    result = testtools.TestResult()
    case.run(result)
    problems = result.errors + result.failures
    for _test, error in problems:
        sys.stderr.write(error + '\n')
    if problems:
        try:
            replies.write(jsonutils.dumps({'error': problems[0][1]}) + '\n')
            replies.flush()
        except OSError:
            pass
    embedded._cleanup()
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
