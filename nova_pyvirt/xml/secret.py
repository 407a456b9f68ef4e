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

"""The ``<secret>`` document: a libvirt secret's definition (not its value)."""

from nova_pyvirt.xml.fields import Enum
from nova_pyvirt.xml.fields import Field
from nova_pyvirt.xml.fields import XMLObject
from nova_pyvirt.xml.fields import YESNO


class Secret(XMLObject):
    TAG = 'secret'
    ephemeral = Field('@ephemeral', YESNO)
    private = Field('@private', YESNO)
    uuid = Field('./uuid')
    description = Field('./description')
    usage_type = Field('./usage/@type', Enum('volume', 'ceph', 'iscsi',
                                             'tls', 'vtpm'))
    usage_volume = Field('./usage/volume')
    usage_name = Field('./usage/name')
    usage_target = Field('./usage/target')
