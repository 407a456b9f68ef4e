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
describes them (:func:`destination_vifs`), as nova's libvirt driver does.

The guest's ``<interface>`` elements travel unchanged in the migrating
XML, so a port whose destination binding would need another interface
(another VIF type, hybrid plug on one host only, another bridge) cannot
move live with this driver: :func:`check_same_interfaces` refuses it
before anything moves, naming the port.
"""

from nova import exception
from nova.network import model as network_model

# What the guest's interface XML is made of, in a binding.
_INTERFACE_KEYS = ('type', 'vnic_type', 'details')


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
