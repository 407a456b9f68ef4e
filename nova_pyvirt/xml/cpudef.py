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

"""The ``<cpu>`` element: guest CPU, host CPU and standalone CPU documents.

libvirt uses one ``<cpu>`` shape for a guest's CPU definition, the host CPU
in the capabilities document and ``virConnectCompareCPU``/baseline input, so
one class covers all three.
"""

from nova_pyvirt.xml.fields import Children
from nova_pyvirt.xml.fields import Enum
from nova_pyvirt.xml.fields import Field
from nova_pyvirt.xml.fields import INT
from nova_pyvirt.xml.fields import XMLObject


class CPUFeature(XMLObject):
    TAG = 'feature'
    name = Field('@name')
    policy = Field('@policy', Enum('force', 'require', 'optional',
                                   'disable', 'forbid'))


class NUMACell(XMLObject):
    TAG = 'cell'
    id = Field('@id', INT)
    cpus = Field('@cpus')
    memory_kib = Field('@memory', INT)
    unit = Field('@unit')
    memAccess = Field('@memAccess')
    discard = Field('@discard')


class CPUCache(XMLObject):
    TAG = 'cache'
    level = Field('@level', INT)
    mode = Field('@mode')


class CPU(XMLObject):
    TAG = 'cpu'
    ORDER = {'microcode': ('signature', 'counter'), 'feature': ('pages',)}

    mode = Field('@mode', Enum('custom', 'host-model', 'host-passthrough',
                               'maximum'))
    match = Field('@match', Enum('minimum', 'exact', 'strict'))
    check = Field('@check', Enum('none', 'partial', 'full'))
    migratable = Field('@migratable')
    arch = Field('./arch')
    model = Field('./model')
    model_fallback = Field('./model/@fallback', Enum('allow', 'forbid'))
    model_vendor_id = Field('./model/@vendor_id')
    vendor = Field('./vendor')
    microcode_version = Field('./microcode/@version', INT)
    topology_sockets = Field('./topology/@sockets', INT)
    topology_dies = Field('./topology/@dies', INT)
    topology_clusters = Field('./topology/@clusters', INT)
    topology_cores = Field('./topology/@cores', INT)
    topology_threads = Field('./topology/@threads', INT)
    maxphysaddr_mode = Field('./maxphysaddr/@mode',
                             Enum('emulate', 'passthrough'))
    maxphysaddr_bits = Field('./maxphysaddr/@bits', INT)
    maxphysaddr_limit = Field('./maxphysaddr/@limit', INT)
    cache = Children('./cache', CPUCache)
    features = Children('./feature', CPUFeature)
    numa_cells = Children('./numa/cell', NUMACell)

    def feature_names(self, policies=('require', 'force', None)):
        """Names of features whose policy is one of ``policies``."""
        return [f.name for f in self.features if f.policy in policies]

    def add_feature(self, name, policy='require'):
        """Set a feature's policy, adding or updating its element."""
        for feature in self.features:
            if feature.name == name:
                feature.policy = policy
                return feature
        return self.features.append(CPUFeature(name=name, policy=policy))
