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

"""One summary of what a host advertises, for ``nova-pyvirt host-report``.

:func:`gather` builds a plain, JSON-serializable dict from a
:class:`nova_pyvirt.hypervisor.host.Host`, the configuration and the virt
type, with the functions the driver itself reports through
(``get_available_resource`` and ``update_provider_tree``, checked by
``init_host``), so the report shows exactly what nova-compute would send:
supported instances, traits, placement inventory, and the CPU mode and
machine types guests get.

Nothing is changed on the host. Problems nova-compute would run into (an
invalid CPU option, a virt type the host does not run) are listed under
``warnings`` rather than raised, so one run shows all of them.
"""

import os
import re

from oslo_concurrency import processutils

from nova import exception as nova_exception

from nova_pyvirt.design import cpu as design_cpu
from nova_pyvirt.design import machine as design_machine
from nova_pyvirt.design import validation as design_validation
from nova_pyvirt.report import resources
from nova_pyvirt.report import traits
from nova_pyvirt.storage import instance_disks

#: Keys of ``available_resource``'s dict that nova's resource tracker stores
#: in the compute node record next to the placement inventory.
USAGE_KEYS = ('vcpus', 'vcpus_used', 'memory_mb', 'memory_mb_used',
              'local_gb', 'local_gb_used', 'disk_available_least')
_DISK_KEYS = ('local_gb', 'local_gb_used', 'disk_available_least')


def dotted_version(number):
    """libvirt's ``major * 1000000 + minor * 1000 + micro`` as ``'7.2.0'``."""
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000,
                         number % 1000)


def _version(number):
    return {'number': number, 'dotted': dotted_version(number)}


def machine_sort_key(name):
    """Sort machine types by name, with their version numbers as numbers."""
    return [(0, int(part), '') if part.isdigit() else (1, 0, part)
            for part in re.split(r'(\d+)', name)]


def disk_usage(conf):
    """``(total, used)`` bytes as the driver reports them, and a problem.

    Asks :meth:`InstanceDisks.usage`, which the driver's
    ``get_available_resource`` uses, but never creates the instances path
    (``usage`` would): when it does not exist yet, or the storage cannot
    be read, the usage is ``None`` and the second item says why.
    """
    try:
        disks = instance_disks.InstanceDisks(conf)
        if (getattr(disks.backend, 'capacity', None) is None and
                not os.path.isdir(disks.instances_path)):
            return None, ('[DEFAULT] instances_path %s does not exist (yet); '
                          'DISK_GB is not reported until nova-compute '
                          'creates it' % disks.instances_path)
        return disks.usage(), None
    except (nova_exception.NovaException, processutils.ProcessExecutionError,
            OSError) as exc:
        return None, 'disk usage cannot be read: %s' % exc


def _default_machine(conf, capabilities, arch, virt_type, warnings):
    """The versioned machine new guests of ``arch`` get, as at init_host."""
    try:
        return design_machine.default(conf, capabilities, arch, virt_type)
    except nova_exception.NovaException as exc:
        warnings.append('%s guests: %s' % (arch, exc))
        return None


def machine_type_report(conf, capabilities, virt_type, warnings):
    """``{arch: {'default': versioned, 'machines': {name: versioned}}}``."""
    report = {}
    for arch in traits.guest_arches(capabilities, virt_type):
        report[arch] = {
            'default': _default_machine(conf, capabilities, arch, virt_type,
                                        warnings),
            'machines': dict(sorted(
                traits.machine_types(capabilities, arch, virt_type).items(),
                key=lambda item: machine_sort_key(item[0]))),
        }
    return report


def cpu_report(conf, facts, virt_type, default_machine, warnings):
    """The CPU mode in force, its models, the host CPU and host-model."""
    mode = design_cpu.effective_mode(conf, virt_type)
    host_cpu = facts.capabilities.host.cpu
    report = {
        'mode': mode,
        'mode_configured': conf.pyvirt.cpu_mode,
        'models': list(conf.pyvirt.cpu_models) if mode == 'custom' else [],
        'extra_flags': list(conf.pyvirt.cpu_model_extra_flags),
        'host': {'arch': host_cpu.arch, 'model': host_cpu.model,
                 'vendor': host_cpu.vendor},
        'host_model': None,
    }
    if facts.arch not in traits.guest_arches(facts.capabilities, virt_type):
        return report
    # The document init_host checks the CPU options against.
    domain_caps = facts.domain_capabilities(facts.arch, default_machine,
                                            virt_type)
    if mode == 'host-model':
        host_model = domain_caps.cpu_mode('host-model')
        if host_model is not None and host_model.supported:
            report['host_model'] = {
                'models': [m.name for m in host_model.models],
                'vendor': host_model.vendor}
    try:
        design_cpu.validate_cpu_options(conf, domain_caps,
                                        facts.known_cpu_features, virt_type)
    except nova_exception.NovaException as exc:
        warnings.append('nova-compute would not start: %s' % exc)
    return report


def gather(host, conf, virt_type):
    """The report of ``host`` (an initialized Host) as a plain dict.

    :param conf: nova's configuration, with the ``[pyvirt]`` group.
    :param virt_type: the host's virt type (``[pyvirt] virt_type``).
    """
    warnings = []
    facts = host.host_facts()
    capabilities = facts.capabilities

    if not traits.guest_arches(capabilities, virt_type):
        warnings.append(
            'libvirt at %s runs no guests of domain type %r: check '
            '[pyvirt] virt_type and the connection URI'
            % (host.uri, virt_type))

    usage, problem = disk_usage(conf)
    if problem:
        warnings.append(problem)
    resource = resources.available_resource(
        host, conf, virt_type, usage if usage is not None else (0, 0))
    inventory = resources.inventory(resource, conf)
    if usage is None:
        del inventory['DISK_GB']
        for key in _DISK_KEYS:
            resource[key] = None

    machines = machine_type_report(conf, capabilities, virt_type, warnings)
    default_machine = machines.get(facts.arch, {}).get('default')
    try:
        # The options every guest's domain carries (paths, keymap...).
        design_validation.check_options(conf)
    except nova_exception.NovaException as exc:
        warnings.append('every guest would be refused: %s' % exc)

    return {
        'uri': host.uri,
        'virt_type': virt_type,
        'hypervisor_hostname': resource['hypervisor_hostname'],
        'hypervisor_type': resource['hypervisor_type'],
        'hypervisor_version': _version(resource['hypervisor_version']),
        'libvirt_version': _version(host.get_libversion()),
        'supported_instances': [list(entry) for entry in
                                resource['supported_instances']],
        'traits': sorted(traits.host_traits(facts, virt_type)),
        'cpu': cpu_report(conf, facts, virt_type, default_machine,
                          warnings),
        'machine_types': machines,
        'inventory': inventory,
        'usage': {key: resource[key] for key in USAGE_KEYS},
        'instances_path': conf.instances_path,
        'images_type': conf.pyvirt.images_type,
        'warnings': warnings,
    }
