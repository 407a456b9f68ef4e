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

"""An instance with what nova's API gives it for a config drive.

:func:`prepare_instance` sets the key pair, user data and
``config_drive`` as the API would, and the fields nova's metadata code
would otherwise lazy-load from the database; :func:`no_cloud_services`
answers what that code asks nova's database and Neutron (no block device
mappings, no security groups), as the demo does. The driver then builds
and attaches the drive itself.
"""

import base64

from nova import objects

from nova_pyvirt.cmd import demo

#: What nova's metadata code asks the database and Neutron, answered.
no_cloud_services = demo.without_cloud_services


def prepare_instance(instance, hostname, key_name, key_data, user_data):
    """Give ``instance`` what the API would have: key pair, user data.

    Also the fields :class:`InstanceMetadata` would otherwise lazy-load
    from the database (EC2 ids, device names, launch index...).
    """
    instance.hostname = hostname
    instance.key_name = key_name
    instance.key_data = key_data
    instance.keypairs = objects.KeyPairList(objects=[objects.KeyPair(
        name=key_name, public_key=key_data, type='ssh',
        user_id=instance.user_id)])
    instance.user_data = base64.b64encode(user_data.encode()).decode()
    instance.config_drive = 'True'
    instance.ec2_ids = objects.EC2Ids(
        instance_id='i-%08x' % instance.id, ami_id='ami-%08x' % instance.id,
        kernel_id=None, ramdisk_id=None)
    instance.device_metadata = None
    instance.numa_topology = None
    instance.metadata = {}
    instance.availability_zone = None
    instance.root_device_name = '/dev/vda'
    instance.default_ephemeral_device = None
    instance.default_swap_device = None
    instance.launch_index = 0
    instance.reservation_id = 'r-%08x' % instance.id
