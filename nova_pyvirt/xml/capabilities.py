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

"""Host capabilities and domain capabilities documents.

``<capabilities>`` (``virConnectGetCapabilities``) says what the host is and
which guest architectures/domain types it runs; ``<domainCapabilities>``
(``virConnectGetDomainCapabilities``) says what one emulator/machine/virt
type combination supports: CPU modes and models, firmware, device enums.
"""

from nova_pyvirt.xml import cpudef
from nova_pyvirt.xml.fields import Child
from nova_pyvirt.xml.fields import Children
from nova_pyvirt.xml.fields import Field
from nova_pyvirt.xml.fields import Flag
from nova_pyvirt.xml.fields import INT
from nova_pyvirt.xml.fields import Scaled
from nova_pyvirt.xml.fields import Values
from nova_pyvirt.xml.fields import XMLObject
from nova_pyvirt.xml.fields import YESNO


class TopologyCPU(XMLObject):
    TAG = 'cpu'
    id = Field('@id', INT)
    socket_id = Field('@socket_id', INT)
    die_id = Field('@die_id', INT)
    core_id = Field('@core_id', INT)
    siblings = Field('@siblings')


class TopologyPages(XMLObject):
    TAG = 'pages'
    size = Field('@size', INT)
    unit = Field('@unit')
    count = Field('.', INT)


class TopologyCell(XMLObject):
    TAG = 'cell'
    id = Field('@id', INT)
    memory_kib = Scaled('./memory')
    pages = Children('./pages', TopologyPages)
    cpus = Children('./cpus/cpu', TopologyCPU)


class SecModel(XMLObject):
    TAG = 'secmodel'
    model = Field('./model')
    doi = Field('./doi')


class CapsHost(XMLObject):
    TAG = 'host'
    uuid = Field('./uuid')
    cpu = Child('./cpu', cpudef.CPU)
    power_management = Child('./power_management', XMLObject)
    iommu_support = Field('./iommu/@support', YESNO)
    live_migration = Flag('./migration_features/live')
    migration_uri_transports = Values(
        './migration_features/uri_transports/uri_transport')
    topology_cells = Children('./topology/cells/cell', TopologyCell)
    secmodels = Children('./secmodel', SecModel)


class Machine(XMLObject):
    """A machine type: text is its name, ``canonical`` the versioned one."""

    TAG = 'machine'
    name = Field('.')
    canonical = Field('@canonical')
    max_cpus = Field('@maxCpus', INT)
    deprecated = Field('@deprecated', YESNO)


class GuestDomain(XMLObject):
    TAG = 'domain'
    type = Field('@type')
    emulator = Field('./emulator')
    machines = Children('./machine', Machine)


class CapsGuest(XMLObject):
    """One guest architecture the host can run, with its domain types."""

    TAG = 'guest'
    os_type = Field('./os_type')
    arch = Field('./arch/@name')
    wordsize = Field('./arch/wordsize', INT)
    emulator = Field('./arch/emulator')
    loader = Field('./arch/loader')
    machines = Children('./arch/machine', Machine)
    domains = Children('./arch/domain', GuestDomain)

    @property
    def feature_names(self):
        features = self.element.find('features')
        return [] if features is None else [
            f.tag for f in features if isinstance(f.tag, str)]

    @property
    def domain_types(self):
        return [d.type for d in self.domains]

    def machines_for(self, domain_type):
        """Machines usable with ``domain_type``: its own list, else arch's."""
        for domain in self.domains:
            if domain.type == domain_type and len(domain.machines):
                return list(domain.machines)
        return list(self.machines)


class Capabilities(XMLObject):
    TAG = 'capabilities'
    host = Child('./host', CapsHost)
    guests = Children('./guest', CapsGuest)


class CapsEnum(XMLObject):
    TAG = 'enum'
    name = Field('@name')
    values = Values('./value')


class CapsWithEnums(XMLObject):
    """Any element carrying ``supported=`` and ``<enum>`` children."""

    supported = Field('@supported', YESNO)
    enums = Children('./enum', CapsEnum)

    def enum(self, name):
        """Values of the enum called ``name`` ([] when absent)."""
        for item in self.enums:
            if item.name == name:
                return item.values
        return []


class CapsCPUModel(XMLObject):
    TAG = 'model'
    name = Field('.')
    usable = Field('@usable')
    deprecated = Field('@deprecated', YESNO)
    vendor = Field('@vendor')
    fallback = Field('@fallback')


class CapsCPUMode(CapsWithEnums):
    TAG = 'mode'
    name = Field('@name')
    models = Children('./model', CapsCPUModel)
    vendor = Field('./vendor')
    features = Children('./feature', cpudef.CPUFeature)


class CapsLoader(CapsWithEnums):
    TAG = 'loader'
    values = Values('./value')


class CapsOS(CapsWithEnums):
    TAG = 'os'
    enums = CapsWithEnums.enums  # (redeclared: they come before <loader>)
    loader = Child('./loader', CapsLoader)


class CapsDevice(CapsWithEnums):
    """One device kind in domain capabilities (disk, graphics, ...)."""


class DomainCapabilities(XMLObject):
    TAG = 'domainCapabilities'
    path = Field('./path')
    domain_type = Field('./domain')
    machine = Field('./machine')
    arch = Field('./arch')
    vcpu_max = Field('./vcpu/@max', INT)
    iothreads_supported = Field('./iothreads/@supported', YESNO)
    os = Child('./os', CapsOS)
    cpu_modes = Children('./cpu/mode', CapsCPUMode)
    memory_backing = Child('./memoryBacking', CapsDevice)
    devices = Children('./devices/*', CapsDevice)
    features = Children('./features/*', CapsDevice)

    def cpu_mode(self, name):
        """The ``<mode name=...>`` element, or None."""
        return next((m for m in self.cpu_modes if m.name == name), None)

    def cpu_mode_supported(self, name):
        mode = self.cpu_mode(name)
        return bool(mode is not None and mode.supported)

    def device(self, name):
        """The device kind called ``name`` (``disk``, ``video``), or None."""
        element = self.element.find('devices/' + name)
        return None if element is None else CapsDevice.wrap(element)

    def feature(self, name):
        element = self.element.find('features/' + name)
        return None if element is None else CapsDevice.wrap(element)
