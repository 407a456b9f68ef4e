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

"""A compute host inside the OVS fixture's namespaces, driven over a pipe.

Run by :mod:`test_guest_on_ovs` with
:meth:`tests.fixtures.ovs.OvsFixture.command` (``python -m
tests.functional.network.guest_host``), so that this process, the
embedded QEMU driver it opens (``qemu:///embed``: libvirt runs in this
process), the QEMU it starts, the ``ovs-vsctl`` libvirt and os-vif run
and the privsep daemons all see the test's ``/run/openvswitch`` and make
their tap devices in the test's network namespace, not the machine's.

Why a child process rather than a libvirtd: the embedded driver needs no
daemon to start, stop and clean up, and a process joins the namespaces
with ``nsenter`` the same way :mod:`plug_ports` already does.

It reads one JSON request per line on stdin and answers one JSON line on
stdout (logs go to stderr)::

    {"op": "spawn", "network_info": [...]}  -> {"uuid": ..., "events": ...}
    {"op": "spawn", "network_info": [...],
     "config_drive": {"format": "iso9660" or "vfat", "hostname": ...,
                      "key_name": ..., "key_data": ..., "user_data": ...}}
                                            -> the same and
                                               "config_drive_size", the
                                               guest booted with the
                                               driver's config drive
    {"op": "console", "uuid": U}            -> {"console": "..."}
    {"op": "state", "uuid": U}              -> {"state": libvirt state}
    {"op": "diagnostics", "uuid": U}        -> {"nics": [NicDiagnostics
                                               fields, as a dict]}
    {"op": "attach_interface", "uuid": U, "vif": {...}}  -> {"seconds": ...}
    {"op": "detach_interface", "uuid": U, "vif": {...}}  -> {"seconds": ...}
    {"op": "destroy", "uuid": U}            -> {"ok": true}
    {"op": "quit"} or end of input          -> cleanup (every guest
                                               destroyed), exit

A failed request answers ``{"error": traceback}``.

Nova's compute manager is played by :class:`OvsAgentVirtAPI`, which
also plays Neutron's OVS agent: ``wait_for_instance_event`` runs the
driver's body (ports plugged, guest started paused) and then delivers
``network-vif-plugged`` for a port only once an interface with that
port's ``external_ids:iface-id`` is on the switch with an OpenFlow port
number, as the agent reports it to Neutron and Neutron to nova.
"""

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

from nova import conf as nova_conf
from nova import exception as nova_exception
from nova.network import model as network_model
from nova.virt import virtapi
from oslo_serialization import jsonutils

from nova_pyvirt.hypervisor import connection
from tests.fixtures import driver as driver_fixture
from tests.fixtures import embedded
from tests.functional.network import config_drive
from tests.functional.network import os_vif_host

CONF = nova_conf.CONF
VSCTL = '/usr/bin/ovs-vsctl'


def iface_ofports():
    """``{iface-id: ofport}`` of the interfaces on the switch."""
    out = subprocess.run(
        [VSCTL, '--format=json', '--columns=ofport,external_ids', 'list',
         'Interface'], capture_output=True, text=True, check=True).stdout
    found = {}
    for ofport, ids in jsonutils.loads(out)['data']:
        external = dict(ids[1])
        if 'iface-id' in external and isinstance(ofport, int):
            found[external['iface-id']] = ofport
    return found


class OvsAgentVirtAPI(virtapi.VirtAPI):
    """nova-compute's event waiting, with Neutron's OVS agent behind it."""

    def __init__(self):
        super(OvsAgentVirtAPI, self).__init__()
        self.delivered = []
        self.domain_state = None   # set by the caller: uuid -> state

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        yield
        deadline = time.monotonic() + timeout
        for name, tag in event_names:
            while tag not in iface_ofports():
                if time.monotonic() > deadline:
                    raise nova_exception.InstanceEventTimeout()
                time.sleep(0.1)
            state = (self.domain_state(instance.uuid)
                     if self.domain_state else None)
            self.delivered.append({'name': name, 'tag': tag,
                                   'domain_state': state})


class NamespaceDriverFixture(driver_fixture.DriverFixture):
    """The driver on an embedded QEMU root of its own, without cgroups.

    The OVS fixture's mount namespace has a sysfs of its network namespace
    on ``/sys``, with no cgroup file system under it: libvirt is told to
    use no cgroup controllers (as the two-daemon tests' libvirtds are).
    """

    def libvirt_uri(self):
        root = tempfile.mkdtemp(prefix='pyvirt-embed-ovs-',
                                dir=embedded.SYSTEM_TMP)
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        if os.path.isdir(embedded.PROBE_CACHE):
            shutil.copytree(embedded.PROBE_CACHE, os.path.join(root, 'cache'))
        first = 6000 + os.getpid() % 400 * 100
        uri = connection.prepare_embedded_root(root, {
            'remote_display_port_min': first,
            'remote_display_port_max': first + 99})
        with open(os.path.join(root, 'etc', 'qemu.conf'), 'a') as handle:
            handle.write('cgroup_controllers = [ ]\n')
        return uri


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    helper = sys.argv[1]
    agent = OvsAgentVirtAPI()
    fx = NamespaceDriverFixture(virt_api=agent)
    fx.setUp()
    try:
        os_vif_host.configure_os_vif(fx.conf.conf, helper)
        fx.conf.set(group=None, vif_plugging_timeout=120,
                    vif_plugging_is_fatal=True)
        agent.domain_state = lambda uuid: fx.driver._host.get_domain_by_uuid(
            uuid).state()[0]
        instances = {}
        for line in sys.stdin:
            request = jsonutils.loads(line)
            op = request['op']
            if op == 'quit':
                break
            try:
                reply = serve(fx, agent, instances, request)
            except Exception:
                reply = {'error': traceback.format_exc()}
            sys.stdout.write(jsonutils.dumps(reply) + '\n')
            sys.stdout.flush()
    finally:
        fx.cleanUp()


def spawn_with_config_drive(fx, network_info, drive):
    """``fx.spawn()`` of an instance that asks for a config drive.

    The driver builds it, in ``drive['format']``; returns the instance and
    the size of its drive in bytes.
    """
    instance, image_meta = fx.instance()
    config_drive.prepare_instance(instance, drive['hostname'],
                                  drive['key_name'], drive['key_data'],
                                  drive['user_data'])
    fx.network_info[instance.uuid] = network_info
    fx.image_meta[instance.uuid] = image_meta
    CONF.set_override('config_drive_format', drive['format'])
    try:
        with config_drive.no_cloud_services():
            fx.driver.spawn(fx.context, instance, image_meta, [], None, {},
                            network_info=network_info)
    finally:
        CONF.clear_override('config_drive_format')
    path = os.path.join(fx.driver._files(instance).path, 'disk.config')
    return instance, os.path.getsize(path)


def serve(fx, agent, instances, request):
    op = request['op']
    if op == 'spawn':
        network_info = network_model.NetworkInfo.hydrate(
            request['network_info'])
        agent.delivered[:] = []
        started = time.monotonic()
        reply = {}
        if request.get('config_drive'):
            instance, reply['config_drive_size'] = spawn_with_config_drive(
                fx, network_info, request['config_drive'])
        else:
            instance = fx.spawn(network_info=network_info)
        instances[instance.uuid] = instance
        reply.update(uuid=instance.uuid, events=list(agent.delivered),
                     seconds=time.monotonic() - started)
        return reply
    instance = instances[request['uuid']]
    if op == 'console':
        return {'console': fx.console(instance)}
    if op == 'state':
        return {'state': fx.domain(instance).state()[0]}
    if op == 'diagnostics':
        diags = fx.driver.get_instance_diagnostics(instance)
        return {'nics': [{field: getattr(nic, field) for field in nic.fields
                          if nic.obj_attr_is_set(field)}
                         for nic in diags.nic_details]}
    if op in ('attach_interface', 'detach_interface'):
        vif = network_model.VIF.hydrate(request['vif'])
        started = time.monotonic()
        if op == 'attach_interface':
            fx.driver.attach_interface(fx.context, instance,
                                       fx.image_meta[instance.uuid], vif)
        else:
            fx.driver.detach_interface(fx.context, instance, vif)
        return {'seconds': time.monotonic() - started}
    if op == 'destroy':
        fx.driver.destroy(fx.context, instance,
                          fx.network_info.get(instance.uuid, []), None)
        fx.instances.remove(instance)
        del instances[instance.uuid]
        return {'ok': True}
    raise ValueError('unknown op %r' % op)


if __name__ == '__main__':
    main()
