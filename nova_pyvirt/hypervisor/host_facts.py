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

"""Gathering :class:`HostFacts` from a libvirt connection or from files.

Domain capabilities are asked for once per (arch, machine, virt type) and
kept; the CPU feature names libvirt knows come from its CPU map.  A libvirt
driver without the domain capabilities API (the test driver) gets an empty
document: it describes no devices, so guest design checks nothing against
it and the host advertises no device traits.
"""

import functools
import glob
import os

import libvirt
from lxml import etree
from oslo_log import log as logging

from nova_pyvirt.design import request
from nova_pyvirt import xml

LOG = logging.getLogger(__name__)

CPU_MAP_DIR = '/usr/share/libvirt/cpu_map'
_CPU_MAP_PREFIX = {'x86_64': 'x86', 'i686': 'x86', 'aarch64': 'arm',
                   'ppc64le': 'ppc64', 'ppc64': 'ppc64'}


def known_cpu_features(arch, cpu_map_dir=CPU_MAP_DIR):
    """Feature names in libvirt's CPU map for ``arch`` (empty if absent)."""
    prefix = _CPU_MAP_PREFIX.get(arch, arch)
    names = set()
    for path in glob.glob(os.path.join(cpu_map_dir,
                                       '%s_features.xml' % prefix)):
        tree = etree.parse(path)
        names.update(tree.xpath('//feature/@name'))
    return frozenset(names)


_FEATURE_POLICIES = (None, 'require', 'force')


def listed_cpu_features(capabilities):
    """The host CPU features the capabilities name beyond its model."""
    return frozenset(capabilities.host.cpu.feature_names(
        policies=_FEATURE_POLICIES))


def host_cpu_features(conn, capabilities):
    """Every feature of the host CPU: its model's own and the listed ones.

    libvirt's capabilities name a CPU model and only the features beyond
    it; ``baselineCPU`` with ``EXPAND_FEATURES`` resolves the model's.
    Drivers that cannot expand (the test driver) give the listed ones.
    """
    listed = listed_cpu_features(capabilities)
    cpu = capabilities.host.cpu
    if not cpu.model:
        return listed
    try:
        text = conn.baselineCPU(
            [etree.tostring(cpu.element, encoding='unicode')],
            libvirt.VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES)
    except libvirt.libvirtError as exc:
        LOG.debug('cannot expand the features of CPU model %s: %s',
                  cpu.model, exc)
        return listed
    expanded = xml.parse(text).feature_names(policies=_FEATURE_POLICIES)
    return listed | frozenset(expanded)


def read_domain_capabilities(conn, arch, machine, virt_type):
    """``conn``'s domain capabilities, or an empty document if it has none."""
    try:
        text = conn.getDomainCapabilities(None, arch, machine, virt_type, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        return xml.DomainCapabilities(arch=arch, machine=machine,
                                      domain_type=virt_type)
    return xml.DomainCapabilities.from_xml(text)


def from_connection(conn):
    capabilities = xml.parse(conn.getCapabilities())

    @functools.lru_cache(maxsize=None)
    def domain_capabilities(arch, machine, virt_type):
        return read_domain_capabilities(conn, arch, machine, virt_type)

    arch = capabilities.host.cpu.arch
    return request.HostFacts(capabilities, domain_capabilities,
                             known_cpu_features(arch),
                             host_cpu_features(conn, capabilities))


def from_files(capabilities_path, domain_capabilities_path):
    """Host facts from saved documents; one domcaps document serves all."""
    with open(capabilities_path, 'rb') as handle:
        capabilities = xml.Capabilities.from_xml(handle.read())
    with open(domain_capabilities_path, 'rb') as handle:
        domain_caps = xml.DomainCapabilities.from_xml(handle.read())

    def domain_capabilities(arch, machine, virt_type):
        return domain_caps

    arch = capabilities.host.cpu.arch
    return request.HostFacts(capabilities, domain_capabilities,
                             known_cpu_features(arch),
                             listed_cpu_features(capabilities))
