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

"""What the host offers: resources, supported instances and inventory.

``supported_instances`` is what the scheduler's ImagePropertiesFilter
matches an image's ``hw_architecture``/``img_hv_type``/``hw_vm_mode``
against, so it is derived from every guest the host's capabilities list.
"""

import platform
import sys

from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import units

from nova.compute import utils as compute_utils
from nova.objects import fields

LOG = logging.getLogger(__name__)


def _canonical(field, value):
    """nova's canonical form of ``value``; ValueError if nova lacks it."""
    if not value:
        # nova's canonicalize passes None through, and HVSpec refuses it.
        raise ValueError('no value given')
    try:
        return field.canonicalize(value)
    except Exception as exc:
        raise ValueError(str(exc))


def supported_instances(capabilities):
    """``[(arch, hv_type, vm_mode)]`` for every guest libvirt reports.

    Values nova does not know are skipped with a debug log.
    """
    result = []
    for guest in capabilities.guests:
        try:
            arch = _canonical(fields.Architecture, guest.arch)
            vm_mode = _canonical(fields.VMMode, guest.os_type)
        except ValueError as exc:
            LOG.debug('skipping guest %s/%s: %s', guest.arch, guest.os_type,
                      exc)
            continue
        for domain_type in guest.domain_types:
            try:
                hv_type = _canonical(fields.HVType, domain_type)
            except ValueError as exc:
                LOG.debug('skipping domain type %s: %s', domain_type, exc)
                continue
            entry = (arch, hv_type, vm_mode)
            if entry not in result:
                result.append(entry)
    return result


def cpu_info(capabilities):
    cpu = capabilities.host.cpu
    features = sorted(cpu.feature_names(policies=(None, 'require', 'force')))
    return {
        'arch': cpu.arch, 'model': cpu.model, 'vendor': cpu.vendor,
        'topology': {'sockets': cpu.topology_sockets,
                     'cores': cpu.topology_cores,
                     'threads': cpu.topology_threads},
        'features': features,
    }


# What is derived from the capabilities, for the last capabilities object
# a host read (once per connection; compared by identity): the audit runs
# every minute, the capabilities change only with a new connection.
_from_caps = [None, None]


def _caps_derived(caps):
    last, derived = _from_caps
    if last is not caps:
        derived = (jsonutils.dumps(cpu_info(caps)),
                   supported_instances(caps))
        _from_caps[:] = [caps, derived]
    return derived


def available_resource(host, conf, hypervisor_type, disk_usage):
    """nova's resource dict; ``disk_usage`` is ``(total, used)`` bytes.

    Its cost does not grow with the domains beyond one listing call
    (:meth:`Host.active_vcpus`): nothing here reads a domain's XML.
    """
    caps = host.get_capabilities()
    caps_cpu_info, caps_instances = _caps_derived(caps)
    total_gb = disk_usage[0] // units.Gi
    used_gb = disk_usage[1] // units.Gi
    memory_total = host.get_memory_mb_total()
    return {
        'vcpus': host.get_cpu_count(),
        'memory_mb': memory_total,
        'local_gb': total_gb,
        'vcpus_used': sum(host.active_vcpus().values()),
        'memory_mb_used': host.get_memory_mb_used(),
        'local_gb_used': used_gb,
        'hypervisor_type': hypervisor_type,
        # libvirt's major * 1000000 + minor * 1000 + micro is nova's form.
        'hypervisor_version': host.get_version(),
        'hypervisor_hostname': host.get_hostname(),
        'cpu_info': caps_cpu_info,
        'disk_available_least': total_gb - used_gb,
        # A copy: the resource tracker may keep and change what it gets.
        'supported_instances': list(caps_instances),
        'numa_topology': None,
        # No PCI reporting yet: the resource tracker parses this key as JSON
        # whenever it is present, so it is left out rather than None.
    }


def inventory_totals(host, disk_total):
    """The totals :func:`inventory` reads, without the usage figures.

    ``update_provider_tree`` needs only these; the used amounts (one
    listing of the running domains) are ``get_available_resource``'s.
    """
    return {'vcpus': host.get_cpu_count(),
            'memory_mb': host.get_memory_mb_total(),
            'local_gb': disk_total // units.Gi}


def _ratio(conf, name):
    ratio = getattr(conf, name + '_allocation_ratio')
    if ratio is None:
        ratio = getattr(conf, 'initial_%s_allocation_ratio' % name)
    return ratio


def inventory(resource, conf):
    """Placement inventory from ``available_resource``'s dict."""
    return {
        'VCPU': {'total': resource['vcpus'], 'min_unit': 1,
                 'max_unit': resource['vcpus'], 'step_size': 1,
                 'allocation_ratio': _ratio(conf, 'cpu'),
                 'reserved': conf.reserved_host_cpus},
        'MEMORY_MB': {'total': resource['memory_mb'], 'min_unit': 1,
                      'max_unit': resource['memory_mb'], 'step_size': 1,
                      'allocation_ratio': _ratio(conf, 'ram'),
                      'reserved': conf.reserved_host_memory_mb},
        'DISK_GB': {'total': resource['local_gb'], 'min_unit': 1,
                    'max_unit': resource['local_gb'], 'step_size': 1,
                    'allocation_ratio': _ratio(conf, 'disk'),
                    'reserved': compute_utils.convert_mb_to_ceil_gb(
                        conf.reserved_host_disk_mb)},
    }


def host_uptime():
    """``uptime``'s line, which is what nova shows for a hypervisor."""
    out, _err = processutils.execute('env', 'LANG=C', 'uptime')
    return out.strip()


def volume_connector(conf):
    """What cinder needs to export a volume to this host.

    The host's address and name, and its iSCSI initiator name when
    open-iscsi is configured (read by os-brick's iSCSI connector).
    """
    from os_brick.initiator.connectors import iscsi
    props = {'ip': conf.my_block_storage_ip, 'host': conf.host,
             'multipath': False, 'enforce_multipath': False,
             'platform': platform.machine(), 'os_type': sys.platform}
    try:
        props.update(iscsi.ISCSIConnector(None).get_connector_properties(
            None))
    except Exception as exc:
        LOG.debug('no iSCSI initiator on this host: %s', exc)
    return props
