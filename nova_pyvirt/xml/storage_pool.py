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

"""Storage pool and storage volume documents (``<pool>``, ``<volume>``)."""

from nova_pyvirt.xml.fields import Children
from nova_pyvirt.xml.fields import Enum
from nova_pyvirt.xml.fields import Field
from nova_pyvirt.xml.fields import INT
from nova_pyvirt.xml.fields import Scaled
from nova_pyvirt.xml.fields import XMLObject


class Permissions(XMLObject):
    TAG = 'permissions'
    mode = Field('./mode')
    owner = Field('./owner', INT)
    group = Field('./group', INT)
    label = Field('./label')


class SourceHost(XMLObject):
    TAG = 'host'
    name = Field('@name')
    port = Field('@port', INT)


class SourceDevice(XMLObject):
    TAG = 'device'
    path = Field('@path')


class StoragePool(XMLObject):
    """dir, fs, netfs, logical, disk, iscsi, iscsi-direct, rbd... pools."""

    TAG = 'pool'
    ORDER = {'available': ('features',)}
    type = Field('@type', Enum('dir', 'fs', 'netfs', 'logical', 'disk',
                               'iscsi', 'iscsi-direct', 'scsi', 'mpath',
                               'rbd', 'sheepdog', 'gluster', 'zfs',
                               'vstorage'))
    name = Field('./name')
    uuid = Field('./uuid')
    capacity = Scaled('./capacity', unit='bytes')
    allocation = Scaled('./allocation', unit='bytes')
    available = Scaled('./available', unit='bytes')
    source_hosts = Children('./source/host', SourceHost)
    source_devices = Children('./source/device', SourceDevice)
    source_dir = Field('./source/dir/@path')
    source_name = Field('./source/name')
    source_format = Field('./source/format/@type')
    source_auth_type = Field('./source/auth/@type')
    source_auth_username = Field('./source/auth/@username')
    source_auth_secret_usage = Field('./source/auth/secret/@usage')
    source_auth_secret_uuid = Field('./source/auth/secret/@uuid')
    source_initiator_iqn = Field('./source/initiator/iqn/@name')
    target_path = Field('./target/path')
    target_permissions = Children('./target/permissions', Permissions)


class StorageVolume(XMLObject):
    TAG = 'volume'
    ORDER = {'key': ('source',),
             'target/permissions': ('timestamps',),
             'target/clusterSize': ('nocow', 'features')}
    type = Field('@type', Enum('file', 'block', 'dir', 'network',
                               'netdir', 'ploop'))
    name = Field('./name')
    key = Field('./key')
    capacity = Scaled('./capacity', unit='bytes')
    allocation = Scaled('./allocation', unit='bytes')
    physical = Scaled('./physical', unit='bytes')
    target_path = Field('./target/path')
    target_format = Field('./target/format/@type')
    target_permissions = Children('./target/permissions', Permissions)
    target_compat = Field('./target/compat')
    target_cluster_size = Scaled('./target/clusterSize', unit='bytes')
    backing_path = Field('./backingStore/path')
    backing_format = Field('./backingStore/format/@type')
