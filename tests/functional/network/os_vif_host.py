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

"""What the compute-host processes of the network tests share.

:mod:`guest_host` and :mod:`hotplug_guest` both run the driver inside
the OVS fixture's namespaces and configure os-vif the same way; the
tests make ports for hot-plugging with :func:`new_port_values`.
"""

import os
import sys

from nova.network import model as network_model
from oslo_utils import uuidutils

HELPER = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')


def configure_os_vif(conf, helper=HELPER):
    """os-vif and privsep as a compute host sets them.

    os-vif's ``ovs`` plugin reads its options when os-vif loads it (by
    the first plug), so they are registered (as the plugin does) and set
    before that, pointing it at the fixture's OVS
    (``/run/openvswitch`` in its mount namespace).
    """
    import nova.privsep  # noqa: F401  (registers [nova_sys_admin])
    from vif_plug_ovs import ovs as ovs_plugin

    from nova_pyvirt.network import vifs
    conf.register_opts(ovs_plugin.OvsPlugin.CONFIG_OPTS, group='os_vif_ovs')
    conf.set_override('ovsdb_connection', 'unix:/run/openvswitch/db.sock',
                      group='os_vif_ovs')
    for group in ('vif_plug_ovs_privileged', 'nova_sys_admin'):
        conf.set_override('helper_command', helper, group=group)
    vifs.initialize_os_vif()


def new_port_values(port_id=None):
    """``id``, ``ovs_interfaceid``, ``address``, ``devname`` of a new port.

    The MAC and the tap's name derive from the port's id, as Neutron's
    and nova's do, so two ports never share them.
    """
    port_id = port_id or uuidutils.generate_uuid()
    return {'id': port_id, 'ovs_interfaceid': port_id,
            'address': 'fa:16:3e:%s:%s:%s' % (port_id[0:2], port_id[2:4],
                                              port_id[4:6]),
            'devname': ('tap' + port_id)[:network_model.NIC_NAME_LEN]}
