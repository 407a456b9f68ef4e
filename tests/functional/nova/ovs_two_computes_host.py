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

"""nova's stack with two compute hosts, each on its own Open vSwitch.

Run by :mod:`tests.functional.nova.test_migrate_on_ovs` in the namespaces
of the first switch (OVS-A), as :mod:`ovs_compute_host` (whose requests it
answers, ``host`` naming ``host1`` or ``host2``), with the second switch
(OVS-B) as one more argument: ``HELPER '{"pid": P, "db_sock": S}'``, the
PID of the process holding OVS-B's namespaces and the real path of its
database socket. The two computes are those of :mod:`two_computes`:

* ``host1``'s libvirt is this process's embedded QEMU driver, so its
  QEMU and tap devices are in OVS-A's network namespace and libvirt's
  ``ovs-vsctl`` finds OVS-A at ``/run/openvswitch``, as for the one
  compute of :mod:`ovs_compute_host`;
* ``host2``'s libvirtd is started inside OVS-B's mount and network
  namespaces (:class:`~tests.fixtures.libvirtd.LibvirtdFixture`
  ``enter``), and makes its own mount namespace from OVS-B's: there
  ``/run/openvswitch`` is OVS-B's run directory and ``/sys`` a sysfs of
  OVS-B's network namespace, so its QEMU and taps are made in that
  namespace and libvirt adds them to OVS-B's ``br-int``.

One more request, for a resize: ``{"op": "flavors"}`` -> ``{"flavor": ID,
"new_flavor": ID}`` (the server's flavor, and a bigger one). RPC casts
are casts, as in :class:`ovs_compute_host.OvsComputeCase`.

The two sshds (``127.0.0.2``, ``127.0.0.3``) and both drivers' ssh clients
are in this process's network namespace (the test brings its loopback
up): the copy of a migration is between directories, and does not care
which namespace carries it.

**What one process shares and two hosts would not**, beyond what
:mod:`two_computes` lists, and is made per host here:

* os-vif's ``ovs`` plugin: os-vif loads one, connected to the OVSDB of
  ``[os_vif_ovs] ovsdb_connection`` (OVS-A's). ``host2``'s driver gets
  its own instance of the plugin (:func:`host_plugin`), with the same
  options but connected to OVS-B's socket, through :class:`SwitchVifs`.
  For a port bound as ML2/OVS binds it without hybrid plug (a
  ``VIFOpenVSwitch``), os-vif makes sure ``br-int`` exists, creates the
  port when Neutron delegated that (``delegate_create``, as nova's
  Neutron API sets) and, on unplug, deletes it. A second instance is not
  enough by itself: ovsdbapp, os-vif's native OVSDB backend, keeps its
  connection per class, not per instance, so the second plugin would talk
  to OVS-A (it created ``host2``'s ports on OVS-A's ``br-int``);
  :class:`HostSwitch` gives it a class, and so a connection, of its own;
* os-vif's privsep daemon: one per process, in OVS-A's network
  namespace. Of what the plugin does through it for such a port, setting
  the MTU of the tap and deleting the tap are network-device operations
  of the host; ``host2``'s plugin does them in OVS-B's namespace instead
  (:class:`HostSwitch`). Without this, ``host2`` confirming a migration
  to ``host1`` would delete the running guest's tap on ``host1``, which
  has the same name.

Not simulated for ``host2``: hybrid plug (its ``qbr`` bridge and
``qvb``/``qvo`` veth pair would be made by the one privsep daemon, in
OVS-A's namespace) and ``vif_type`` tap (nova's privsep daemon, the same
problem); :class:`SwitchVifs` refuses both rather than plug them on the
wrong host.
"""

import subprocess
import sys

from os_vif import objects as osv_objects
from oslo_config import cfg
from oslo_serialization import jsonutils
from ovsdbapp.backend.ovs_idl import connection
from vif_plug_ovs import constants as ovs_constants
from vif_plug_ovs import ovs as ovs_plugin
from vif_plug_ovs.ovsdb import impl_idl
from vif_plug_ovs.ovsdb import ovsdb_lib

from nova.network import model as network_model
from nova.network import os_vif_util

from nova_pyvirt.network import vifs
from tests.fixtures import libvirtd as libvirtd_fixture
from tests.fixtures import ovs as ovs_fixture
from tests.functional.nova import ovs_compute_host
from tests.functional.nova import two_computes

CONF = ovs_compute_host.CONF
_VHOSTUSER = (ovs_constants.OVS_VHOSTUSER_INTERFACE_TYPE,
              ovs_constants.OVS_VHOSTUSER_CLIENT_INTERFACE_TYPE)


def enter_namespaces(pid):
    """Wraps an argv to run in the mount and network namespaces of pid."""
    def wrap(argv):
        return [ovs_fixture.NSENTER, '--target', str(pid), '--mount',
                '--net', '--'] + list(argv)
    return wrap


class HostSwitch(ovsdb_lib.BaseOVS):
    """os-vif's OVSDB helper, for a host in another network namespace.

    The OVSDB part is os-vif's own, on an OVSDB connection of its own; the
    network-device part, which os-vif does through its privsep daemon in
    this process's namespace, is done in the namespace of PID
    ``netns_pid`` (with ``ip``, as root).
    """

    def __init__(self, config, netns_pid):
        super(HostSwitch, self).__init__(config)
        self.netns_pid = netns_pid

    @property
    def ovsdb(self):
        if self._ovsdb is None and self.interface == 'native':
            # ovsdbapp keeps the connection of its native backend in a
            # class attribute, set by the first instance only: another
            # NeutronOvsdbIdl would talk to the switch os-vif connected to
            # first. A subclass of this host's own has its own.
            idl_class = type('HostOvsdbIdl', (impl_idl.NeutronOvsdbIdl,),
                             {'_ovsdb_connection': None})
            self._ovsdb = idl_class(connection.Connection(
                idl=impl_idl.idl_factory(self), timeout=self.timeout))
        return super(HostSwitch, self).ovsdb

    def _ip(self, *args):
        return subprocess.run(
            [ovs_fixture.NSENTER, '--target', str(self.netns_pid), '--net',
             '--', ovs_fixture.IP] + list(args),
            capture_output=True, text=True)

    def _exists(self, dev):
        return self._ip('link', 'show', 'dev', dev).returncode == 0

    def update_device_mtu(self, txn, dev, mtu, interface_type=None):
        if not mtu or interface_type in _VHOSTUSER:
            # No network device of the host is touched.
            return super(HostSwitch, self).update_device_mtu(
                txn, dev, mtu, interface_type=interface_type)
        # As os-vif's linux_net.set_device_mtu: only a device that exists.
        if self._exists(dev):
            result = self._ip('link', 'set', 'dev', dev, 'mtu', str(mtu))
            if result.returncode != 0:
                raise RuntimeError('setting the MTU of %s: %s' % (
                    dev, result.stderr.strip()))

    def delete_ovs_vif_port(self, bridge, dev, delete_netdev=True,
                            qos_type=None):
        super(HostSwitch, self).delete_ovs_vif_port(
            bridge, dev, delete_netdev=False, qos_type=qos_type)
        # As os-vif's linux_net.delete_net_dev: only a device that exists.
        if delete_netdev and self._exists(dev):
            result = self._ip('link', 'del', 'dev', dev)
            if result.returncode != 0:
                raise RuntimeError('deleting %s: %s' % (
                    dev, result.stderr.strip()))


def host_plugin(db_sock, netns_pid):
    """os-vif's ``ovs`` plugin for a host whose switch is ``db_sock``.

    Its options are the process's ``[os_vif_ovs]`` (as os-vif loaded
    them), but for the OVSDB it connects to.
    """
    conf = cfg.ConfigOpts()
    conf.register_opts(ovs_plugin.OvsPlugin.CONFIG_OPTS, group='os_vif_ovs')
    for opt in ovs_plugin.OvsPlugin.CONFIG_OPTS:
        conf.set_override(opt.dest, getattr(CONF.os_vif_ovs, opt.dest),
                          group='os_vif_ovs')
    conf.set_override('ovsdb_connection', 'unix:' + db_sock,
                      group='os_vif_ovs')
    conf(args=[], default_config_files=[], default_config_dirs=[])
    plugin = ovs_plugin.OvsPlugin(conf.os_vif_ovs)
    plugin.ovsdb = HostSwitch(conf.os_vif_ovs, netns_pid)
    return plugin


class SwitchVifs(vifs.Vifs):
    """The driver's ports, plugged into a host's own switch.

    :class:`~nova_pyvirt.network.vifs.Vifs`, with Open vSwitch ports
    given to ``plugin`` rather than to the plugin os-vif loaded for the
    process. Only direct plug (a ``VIFOpenVSwitch``) is simulated; see the
    module docstring.
    """

    def __init__(self, plugin):
        super(SwitchVifs, self).__init__()
        self.plugin = plugin

    def _os_vif(self, instance, vif):
        if vif.get('type') != network_model.VIF_TYPE_OVS:
            raise AssertionError('vif_type %s is not simulated on this '
                                 'host' % vif.get('type'))
        os_vif_vif = os_vif_util.nova_to_osvif_vif(vif)
        if not isinstance(os_vif_vif, osv_objects.vif.VIFOpenVSwitch):
            raise AssertionError('%s is not simulated on this host'
                                 % type(os_vif_vif).__name__)
        return os_vif_vif, os_vif_util.nova_to_osvif_instance(instance)

    def plug(self, instance, vif, image_meta=None):
        vifs.check_supported([vif])
        self.plugin.plug(*self._os_vif(instance, vif))

    def unplug(self, instance, vif):
        self.plugin.unplug(*self._os_vif(instance, vif))


class OvsTwoComputesCase(ovs_compute_host.OvsComputeCase,
                         two_computes.TwoComputesTestBase):
    """Both computes on their own switch; answers as OvsComputeCase."""

    #: ``{"pid": P, "db_sock": S}`` of host2's switch.
    host2_switch = None

    @classmethod
    def read_arguments(cls, args):
        if len(args) != 1:
            raise SystemExit('expected host2\'s switch as JSON, got %r'
                             % (args,))
        cls.host2_switch = jsonutils.loads(args[0])

    def _host2_libvirtd(self):
        return libvirtd_fixture.LibvirtdFixture(
            enter=enter_namespaces(self.host2_switch['pid']))

    def setUp(self):
        super(OvsTwoComputesCase, self).setUp()
        self.new_flavor_id = self._create_guest_flavor(
            name='pyvirt-guest-bigger', disk=2)
        driver = self.computes[two_computes.HOST2].driver
        driver._vifs = SwitchVifs(host_plugin(
            self.host2_switch['db_sock'], self.host2_switch['pid']))
        driver._hotplug.vifs = driver._vifs

    def answer(self, request):
        if request['op'] == 'flavors':
            return {'flavor': self.flavor_id,
                    'new_flavor': self.new_flavor_id}
        return super(OvsTwoComputesCase, self).answer(request)


if __name__ == '__main__':
    sys.exit(ovs_compute_host.main(OvsTwoComputesCase))
