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

"""The plain inputs of guest design and the result it hands back.

Storage and volume drivers turn nova's block device information into
:class:`LocalDisk` and :class:`VolumeDisk` values before design runs, so
designing a guest needs no I/O.
"""

import dataclasses
import typing

from nova_pyvirt.xml import capabilities
from nova_pyvirt.xml import devices
from nova_pyvirt.xml import domain


@dataclasses.dataclass
class LocalDisk:
    """A disk the driver created for the instance (root, ephemeral...)."""

    name: str                      # 'disk', 'disk.eph0', 'disk.swap'...
    path: str
    format: str = 'qcow2'          # driver type: 'qcow2' or 'raw'
    source_type: str = 'file'      # 'file' or 'block'
    device: str = 'disk'           # 'disk' or 'cdrom'
    bus: typing.Optional[str] = None   # None: the image's/driver's default


@dataclasses.dataclass
class VolumeDisk:
    """A cinder volume; ``source`` carries what the volume driver set."""

    volume_id: str
    source: devices.Disk
    mount_device: typing.Optional[str] = None   # e.g. '/dev/vdb'
    boot_index: typing.Optional[int] = None
    bus: typing.Optional[str] = None
    device: str = 'disk'
    read_only: bool = False
    multiattach: bool = False
    discard: bool = False
    qos_specs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class GuestRequest:
    """What nova hands the driver, reduced to what design reads."""

    instance: typing.Any           # nova.objects.Instance
    flavor: typing.Any             # nova.objects.Flavor
    image_meta: typing.Any         # nova.objects.ImageMeta
    instance_dir: str
    local_disks: typing.List[LocalDisk] = dataclasses.field(
        default_factory=list)
    volumes: typing.List[VolumeDisk] = dataclasses.field(
        default_factory=list)
    network_info: typing.List[typing.Any] = dataclasses.field(
        default_factory=list)
    kernel_path: typing.Optional[str] = None
    ramdisk_path: typing.Optional[str] = None
    console_log: typing.Optional[str] = None   # the serial's log file


@dataclasses.dataclass
class HostFacts:
    """The host documents design checks choices against."""

    capabilities: capabilities.Capabilities
    # (arch, machine, virt_type) -> DomainCapabilities
    domain_capabilities: typing.Callable[
        [str, str, str], capabilities.DomainCapabilities]
    # CPU feature names libvirt knows (for validating extra flags).
    known_cpu_features: typing.FrozenSet[str] = frozenset()
    # Every feature of the host CPU, its model's included (for traits).
    host_cpu_features: typing.FrozenSet[str] = frozenset()

    @property
    def arch(self):
        return self.capabilities.host.cpu.arch


@dataclasses.dataclass
class Design:
    domain: domain.Domain
    # resolved, versioned: persist it (None: the host lists none)
    machine_type: typing.Optional[str]
    disk_bus: str
    warnings: typing.List[str] = dataclasses.field(default_factory=list)
