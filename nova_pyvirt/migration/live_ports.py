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

"""The ports of a live migration: as Neutron bound them to the destination.

With Neutron's ``binding-extended`` extension nova binds every port to the
destination before the guest moves (an inactive binding, activated once
it runs there) and passes both bindings in ``migrate_data.vifs``. The
destination plugs, and on a rollback unplugs, its ports as *its* binding
describes them (:func:`destination_vifs`), as nova's libvirt driver does,
having offered to create the Open vSwitch ports itself
(:func:`offer_delegation`).

The guest's ``<interface>`` elements travel unchanged in the migrating
XML, so a port whose destination binding would need another interface
(another VIF type, hybrid plug on one host only, another bridge) cannot
move live with this driver: :func:`check_same_interfaces` refuses it
before anything moves, naming the port.
"""

from nova import exception
from nova.network import model as network_model
from nova.objects import migrate_data as migrate_data_obj

# What the guest's interface XML is made of, in a binding.
_INTERFACE_KEYS = ('type', 'vnic_type', 'details')


def offer_delegation(migrate_data, instance, network_api, context):
    """Tell nova this host creates its OVS ports itself, as nova's does.

    With multiple port bindings the destination's check returns a skeleton
    of ``migrate_data.vifs`` with os-vif's port creation delegated to the
    compute host (``supports_os_vif_delegation``), so that the binding
    nova makes for this host says so and ``pre_live_migration`` creates
    the Open vSwitch port before the guest arrives. Without the extension
    nothing is added: nova then uses the ports' single binding. A guest
    without ports has nothing to offer, and Neutron is not asked.
    """
    network_info = instance.get_network_info()
    if not network_info or \
            not network_api.has_port_binding_extension(context):
        return
    migrate_data.vifs = \
        migrate_data_obj.VIFMigrateData.create_skeleton_migrate_vifs(
            network_info)
    for binding in migrate_data.vifs:
        binding.supports_os_vif_delegation = True


def _bindings(migrate_data):
    if migrate_data is not None and 'vifs' in migrate_data:
        return migrate_data.vifs or []
    return []


def destination_vifs(network_info, migrate_data):
    """The ports as bound to the destination (else ``network_info``)."""
    bindings = _bindings(migrate_data)
    if not bindings:
        return network_info
    return network_model.NetworkInfo(
        [binding.get_dest_vif() for binding in bindings])


def check_same_interfaces(migrate_data):
    """Refuse ports whose two bindings would make different interfaces."""
    for binding in _bindings(migrate_data):
        if 'source_vif' not in binding:
            continue
        source = binding.source_vif
        dest = binding.get_dest_vif()
        differs = [key for key in _INTERFACE_KEYS
                   if (source.get(key) or None) != (dest.get(key) or None)]
        if differs:
            raise exception.MigrationError(
                reason='port %s is bound differently on the destination '
                       '(%s: %s here, %s there); its interface cannot '
                       'move live' % (
                           binding.port_id, ', '.join(differs),
                           ', '.join(str(source.get(k)) for k in differs),
                           ', '.join(str(dest.get(k)) for k in differs)))
