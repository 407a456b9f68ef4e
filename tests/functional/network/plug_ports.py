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

"""Plug or unplug ports with the driver's network code, as nova-compute.

Run by the functional tests inside :class:`tests.fixtures.ovs.OvsFixture`'s
namespaces (``python -m tests.functional.network.plug_ports``), where
``/run/openvswitch`` is the test's OVS, so what runs is the code under
test with os-vif's and nova's own privsep daemons (started by
``privsep-helper``, as a compute host does), not a stand-in::

    plug_ports CONFIG_FILE plug|unplug NETWORK_INFO_JSON INSTANCE_UUID

Prints ``done`` on success; a failure exits non-zero with the traceback.
"""

import sys

from nova.network import model as network_model
from nova import objects
from oslo_serialization import jsonutils

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt.network import vifs

# The options a compute host sets for os-vif and privsep, pointing at the
# OVS and the privsep-helper of this environment.
CONFIG = """[os_vif_ovs]
ovsdb_connection = unix:/run/openvswitch/db.sock
ovsdb_timeout = 30

[vif_plug_ovs_privileged]
helper_command = %(helper)s

[nova_sys_admin]
helper_command = %(helper)s
"""


def main(argv):
    config_file, action, network_info_file, instance_uuid = argv
    pyvirt_conf.CONF(['--config-file', config_file], project='nova')
    objects.register_all()
    with open(network_info_file) as handle:
        network_info = network_model.NetworkInfo.hydrate(
            jsonutils.loads(handle.read()))
    flavor = objects.Flavor(vcpus=1, memory_mb=128, root_gb=0,
                            ephemeral_gb=0, swap=0, extra_specs={})
    instance = objects.Instance(uuid=instance_uuid, id=1,
                                project_id='project-1', flavor=flavor)
    image_meta = objects.ImageMeta.from_dict({'properties': {}})
    if action == 'plug':
        vifs.Vifs().plug_all(instance, network_info, image_meta)
    elif action == 'unplug':
        vifs.Vifs().unplug_all(instance, network_info)
    else:
        raise SystemExit('unknown action %r' % action)
    print('done')


if __name__ == '__main__':
    main(sys.argv[1:])
