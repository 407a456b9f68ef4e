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

"""The entry of guest design: every input checked before anything is made.

:func:`validate` checks a :class:`~nova_pyvirt.design.request.GuestRequest`
and the options against the host's capabilities and domain capabilities:
the flavor's fields and extra specs, the image's properties, the strings
the domain carries (names, owner, paths, serials), the volumes and ports,
and the ``[pyvirt]`` options design reads. It raises a subclass of
:class:`~nova_pyvirt.exception.InvalidGuestInput` naming the source, key
and value and what would be accepted, or returns the choices it resolved
(:class:`Checked`) for design to build from. The driver calls it before it
creates a file; design calls it again on the complete request, so the
same code refuses an input wherever it comes in.

What a value may be is what libvirt (its schema and its QEMU driver's
parser) accepts; :mod:`nova_pyvirt.design.supported` says which extra
specs and image properties design honours.
"""

import dataclasses
import re
import typing

from oslo_log import log as logging
from oslo_utils import uuidutils

from nova.db import constants as db_constants
from nova import exception as nova_exception
from nova.network import model as network_model

from nova_pyvirt.design import cpu
from nova_pyvirt.design import disks
from nova_pyvirt.design import machine
from nova_pyvirt.design import peripherals
from nova_pyvirt.design import supported
from nova_pyvirt import exception
from nova_pyvirt.xml import capabilities as caps_xml
from nova_pyvirt.xml import devices as dev

LOG = logging.getLogger(__name__)

# libvirt's largest <memory> (VIR_DOMAIN_MEMORY_PARAM_UNLIMITED, in KiB).
MAX_MEMORY_MIB = (2 ** 53 - 1) // 1024
# Flavor disk sizes: what nova's database (and API) holds.
MAX_FLAVOR_INT = db_constants.MAX_INT
# libvirt keeps <name>.xml (written through <name>.xml.new) and a UEFI
# guest's <name>_VARS.fd in a directory: a file name is 255 bytes at most.
MAX_NAME_BYTES = 255 - len('.xml.new')
# x86 APIC IDs are 8 bits: libvirt refuses more vCPUs unless the guest
# has an IOMMU with extended interrupt mode (x2APIC), which design does
# not add.
MAX_X86_VCPUS_WITHOUT_IOMMU = 255
# libvirt reads <memballoon><stats period> as a C int.
MAX_INT32 = 2 ** 31 - 1
# Linux interface names (IFNAMSIZ less the NUL).
MAX_IFNAME = 15
MIN_MTU, MAX_MTU = 68, 65535

# Characters XML 1.0 allows in a document; lxml refuses the others.
_NOT_XML_CHAR = re.compile(
    '[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')
_CONTROL_CHAR = re.compile('[\x00-\x1f\x7f]')
# libvirt's schema for a disk <serial> (diskSerial).
SERIAL = re.compile(r'^[A-Za-z0-9_.+\- ]+$')
MAC = re.compile(r'^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$')
IFNAME = re.compile(r'^[A-Za-z0-9_.\-]+$')
# Tap names libvirt generates itself; it drops such a name from a defined
# domain to pick its own when the guest starts.
RESERVED_IFNAME_PREFIXES = ('vnet', 'macvtap', 'macvlan')
KEYMAP = re.compile(r'^[a-z]+(-[a-z]+)?$')
DISK_FORMATS = ('qcow2', 'raw')
DISK_SOURCES = ('file', 'block')
DISK_DEVICES = ('disk', 'cdrom')


@dataclasses.dataclass
class Checked:
    """What validation resolved, for design to build the guest from."""

    virt_type: str
    arch: str
    machine_type: typing.Optional[str]
    os_type: str
    domain_caps: caps_xml.DomainCapabilities


# -- strings the domain carries -----------------------------------------------

def bad_xml_char(text):
    """The first character XML cannot carry in ``text``, or None."""
    found = _NOT_XML_CHAR.search(text)
    return found.group() if found else None


def text_problem(text):
    """Why ``text`` cannot be written into a domain, or None."""
    if not isinstance(text, str):
        return 'accepted: text'
    char = bad_xml_char(text)
    if char is not None:
        return ('contains %r, which XML cannot carry; accepted: printable '
                'text (tabs and newlines too)' % char)
    return None


def libvirt_text_problem(text):
    """Why libvirt would not keep ``text`` as an element's text, or None.

    libvirt writes the text of its own elements (the name, the kernel
    command line) as it is, and a carriage return read back is a newline.
    """
    problem = text_problem(text)
    if problem:
        return problem
    if '\r' in text:
        return ('contains a carriage return, which libvirt does not keep; '
                'accepted: text without one')
    return None


def path_problem(path):
    """Why ``path`` cannot name a file in a domain, or None.

    Paths are attributes libvirt writes as they are: a tab or line break
    read back is a space, so none is kept.
    """
    problem = text_problem(path)
    if problem:
        return problem
    if not path.startswith('/') or len(path) < 2:
        return 'accepted: an absolute path'
    control = _CONTROL_CHAR.search(path)
    if control:
        return ('contains %r, which libvirt does not keep in a path; '
                'accepted: an absolute path without control characters'
                % control.group())
    return None


def _instance_value(instance, name):
    return getattr(instance, name) if instance.obj_attr_is_set(name) \
        else None


def check_instance(instance):
    def fail(name, value, reason):
        raise exception.InvalidInstanceAttribute(name=name, value=value,
                                                 reason=reason)

    uuid = instance.uuid
    if not uuidutils.is_uuid_like(uuid):
        fail('uuid', uuid, 'accepted: a UUID')
    name = instance.name
    problem = libvirt_text_problem(name)
    if problem:
        fail('name', name, problem + ' ([DEFAULT] instance_name_template)')
    if not name.strip() or name in ('.', '..'):
        fail('name', name, 'libvirt needs a domain name to name files by; '
             'accepted: a name that is not blank, . or .. ([DEFAULT] '
             'instance_name_template)')
    for char in ('/', '\n'):
        if char in name:
            fail('name', name, 'libvirt refuses %r in domain names; '
                 'accepted: a name without it ([DEFAULT] '
                 'instance_name_template)' % char)
    if len(name.encode('utf-8')) > MAX_NAME_BYTES:
        fail('name', name, 'accepted: at most %d bytes (libvirt names '
             'files after the domain; [DEFAULT] instance_name_template)'
             % MAX_NAME_BYTES)
    for field in ('display_name', 'user_id', 'project_id'):
        value = _instance_value(instance, field)
        if value is not None:
            problem = text_problem(value)
            if problem:
                fail(field, value, problem)


# -- flavor -------------------------------------------------------------------

def vcpu_limit(host, checked):
    """``(maximum, why)`` for the guest's vCPUs on this machine type."""
    limit, why = _machine_vcpu_limit(host, checked)
    if checked.arch in machine.X86 and limit > MAX_X86_VCPUS_WITHOUT_IOMMU:
        return (MAX_X86_VCPUS_WITHOUT_IOMMU, 'more need an IOMMU with '
                'extended interrupt mode, which guests do not get; %s '
                'allows %d' % (checked.machine_type, limit))
    return limit, why


def _machine_vcpu_limit(host, checked):
    if checked.domain_caps.vcpu_max:
        return (checked.domain_caps.vcpu_max,
                'the maximum of machine type %s for %s guests on this host'
                % (checked.machine_type, checked.virt_type))
    for guest in host.capabilities.guests:
        if guest.arch != checked.arch:
            continue
        for candidate in guest.machines_for(checked.virt_type):
            if checked.machine_type in (candidate.name,
                                        candidate.canonical) and \
                    candidate.max_cpus:
                return (candidate.max_cpus, 'the maximum of machine type '
                        '%s on this host' % checked.machine_type)
    return MAX_FLAVOR_INT, 'nova\'s largest flavor'


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_flavor_fields(flavor, vcpu_max=None, why=None):
    """The flavor's sizes; vCPUs against ``vcpu_max`` when given."""
    def fail(name, value, reason):
        raise exception.InvalidFlavor(name=name, value=value, reason=reason)

    vcpus = flavor.vcpus
    if not _integer(vcpus) or vcpus < 1:
        fail('vcpus', vcpus, 'accepted: at least 1 vCPU' if vcpu_max is None
             else 'accepted: 1 to %d vCPUs (%s)' % (vcpu_max, why))
    if vcpu_max is not None and vcpus > vcpu_max:
        fail('vcpus', vcpus, 'accepted: 1 to %d vCPUs (%s)' % (vcpu_max,
                                                               why))
    memory = flavor.memory_mb
    if not _integer(memory) or not 1 <= memory <= MAX_MEMORY_MIB:
        fail('memory_mb', memory, 'accepted: 1 to %d MiB (libvirt\'s '
             'largest <memory>)' % MAX_MEMORY_MIB)
    for name, unit in (('root_gb', 'GiB'), ('ephemeral_gb', 'GiB'),
                       ('swap', 'MiB')):
        value = getattr(flavor, name)
        if not _integer(value) or not 0 <= value <= MAX_FLAVOR_INT:
            fail(name, value,
                 'accepted: 0 to %d %s' % (MAX_FLAVOR_INT, unit))
    problem = text_problem(flavor.name)
    if problem:
        fail('name', flavor.name, problem)


def _refused_reason(rule):
    accepted = getattr(rule.neutral, 'accepted', None)
    reason = 'this driver does not build it (%s)' % rule.note
    return reason + ('; accepted: %s or leave it unset' % accepted
                     if accepted else '; accepted: leave it unset')


def _unsupported(exc, existing_guest):
    """Refuse ``exc``, or only log it for a guest that ran before.

    A guest defined before these checks (reboot, power on, host restart)
    keeps starting, with a warning naming what is not built; new guests
    (spawn, resize) are refused.
    """
    if not existing_guest:
        raise exc
    LOG.warning('%s (not refused for a guest that ran before; a new guest '
                'or resize with it is)', exc)


def check_extra_specs(flavor, existing_guest=False):
    """Each extra spec: honoured and valid, harmless, or refused."""
    for key, value in sorted((flavor.extra_specs or {}).items()):
        def error(reason):
            return exception.InvalidFlavorExtraSpec(name=key, value=value,
                                                    reason=reason)
        if not isinstance(key, str) or not isinstance(value, str):
            raise error('accepted: text')
        rule = supported.extra_spec_rule(key)
        if rule is None:
            if supported.changes_guest_unknown(key):
                namespace = key.partition(':')[0]
                known = sorted(k for k, r in supported.EXTRA_SPECS.items()
                               if k.startswith(namespace + ':') and
                               r.use == supported.HONOURED)
                _unsupported(error('unknown to this driver; accepted in %s: '
                                   '%s' % (namespace,
                                           ', '.join(known) or '(none)')),
                             existing_guest)
            continue
        if rule.use == supported.HONOURED:
            try:
                rule.check(value)
            except ValueError as exc:
                raise error(str(exc))
        elif rule.use == supported.REFUSED and not rule.neutral(value):
            _unsupported(error(_refused_reason(rule)), existing_guest)
    specs = flavor.extra_specs or {}
    quotas = {name: specs[disks.FLAVOR_QUOTA_PREFIX + name]
              for name in supported.DISK_QUOTAS
              if disks.FLAVOR_QUOTA_PREFIX + name in specs}
    problem = iotune_problem(quotas)
    if problem:
        name, reason = problem
        key = disks.FLAVOR_QUOTA_PREFIX + name
        raise exception.InvalidFlavorExtraSpec(name=key, value=specs[key],
                                               reason=reason)


def iotune_problem(limits):
    """``(name, reason)`` of the first limit QEMU cannot apply, or None.

    ``limits`` maps ``<iotune>`` field names to values. QEMU takes either a
    total or separate read and write limits, never both.
    """
    for name in sorted(limits):
        if name not in dev.IOTUNE_FIELDS:
            return name, 'unknown I/O limit; accepted: %s' % ', '.join(
                dev.IOTUNE_FIELDS)
        try:
            supported.integer(0, supported.MAX_IOTUNE)(limits[name])
        except ValueError as exc:
            return name, str(exc)
    for name in sorted(limits):
        kind, _sep, limit = name.partition('_')
        if kind != 'total':
            continue
        read, write = 'read_' + limit, 'write_' + limit
        if read in limits or write in limits:
            return name, ('QEMU takes a total or separate read and write '
                          'limits, not both; accepted: %s, or %s and %s'
                          % (name, read, write))
    return None


def check_topology(flavor, image_meta):
    """nova's topology rules, refused as the flavor or image input."""
    try:
        cpu.topology(flavor, image_meta)
    except exception.InvalidGuestInput:
        raise
    except nova_exception.NovaException as exc:
        props = image_meta.properties
        image_keys = [name for name in cpu.TOPOLOGY_PROPERTIES
                      if props.obj_attr_is_set(name)]
        reason = ('%s; accepted: sockets x cores x threads equal to the '
                  'vCPUs (%d) and within the max_* limits' % (
                      exc, flavor.vcpus))
        if image_keys:
            raise exception.InvalidImageProperty(
                name=','.join(image_keys),
                value=','.join(str(getattr(props, k)) for k in image_keys),
                reason=reason)
        specs = flavor.extra_specs or {}
        keys = sorted(k for k in specs if k.startswith('hw:cpu_') and
                      'hw_' + k[3:] in cpu.TOPOLOGY_PROPERTIES)
        raise exception.InvalidFlavorExtraSpec(
            name=','.join(keys), value=','.join(specs[k] for k in keys),
            reason=reason)


# -- image --------------------------------------------------------------------

def check_image_properties(image_meta, existing_guest=False):
    """Each property set: honoured, harmless, or refused."""
    props = image_meta.properties
    for name in sorted(props.fields):
        if not props.obj_attr_is_set(name):
            continue
        value = getattr(props, name)
        if value is None:
            continue
        rule = supported.image_property_rule(name)
        if rule is None:
            _unsupported(exception.InvalidImageProperty(
                name=name, value=value, reason='unknown to this driver, '
                'which cannot tell what it would change; accepted: leave '
                'it unset'), existing_guest)
        elif rule.use == supported.REFUSED and not rule.neutral(value):
            _unsupported(exception.InvalidImageProperty(
                name=name, value=value, reason=_refused_reason(rule)),
                existing_guest)
    command_line = props.get('os_command_line')
    if command_line is not None:
        problem = libvirt_text_problem(command_line)
        if problem:
            raise exception.InvalidImageProperty(
                name='os_command_line', value=command_line, reason=problem)


# -- options ------------------------------------------------------------------

def check_options(conf):
    """The options whose values reach the domain as text."""
    def fail(option, value, reason, group='pyvirt'):
        raise exception.InvalidHostConfiguration(
            option=option, value=value, reason=reason, group=group)

    problem = path_problem(conf.instances_path)
    if problem:
        fail('instances_path', conf.instances_path, problem, group='DEFAULT')
    keymap = conf.pyvirt.vnc_keymap
    if keymap and not KEYMAP.match(keymap):
        fail('vnc_keymap', keymap, 'accepted: a QEMU keymap name such as '
             'en-us or de-ch, or leave it unset')
    period = conf.pyvirt.mem_stats_period_seconds
    if period and period > MAX_INT32:
        fail('mem_stats_period_seconds', period, 'accepted: 1 to %d '
             'seconds, or 0 to disable the statistics' % MAX_INT32)


# -- devices ------------------------------------------------------------------

def _bus_problem(domain_caps, bus, device='disk'):
    supported_buses = disks.supported_buses(domain_caps, device)
    if supported_buses is not None and bus not in supported_buses:
        return ('accepted for a %s on machine type %s on this host: %s'
                % (device, domain_caps.machine, ', '.join(supported_buses)))
    return None


def check_local_disks(request, domain_caps):
    for spec in request.local_disks:
        def fail(name, value, reason):
            raise exception.InvalidGuestDevice(
                device='Local disk %s' % spec.name, name=name, value=value,
                reason=reason)
        problem = path_problem(spec.path)
        if problem:
            fail('path', spec.path, problem)
        for name, value, accepted in (
                ('format', spec.format, DISK_FORMATS),
                ('source_type', spec.source_type, DISK_SOURCES),
                ('device', spec.device, DISK_DEVICES)):
            if value not in accepted:
                fail(name, value, 'accepted: %s' % ', '.join(accepted))
        if spec.bus is not None:
            problem = _bus_problem(domain_caps, spec.bus, spec.device)
            if problem:
                fail('bus', spec.bus, problem)
    for name in ('instance_dir', 'console_log', 'kernel_path',
                 'ramdisk_path'):
        path = getattr(request, name)
        if path is not None:
            problem = path_problem(path)
            if problem:
                raise exception.InvalidGuestDevice(
                    device='Instance files', name=name, value=path,
                    reason=problem)


def check_volumes(request, domain_caps):
    boot_indexes = {}
    for volume in request.volumes:
        where = 'Volume %s' % exception.shown(volume.volume_id)

        def fail(name, value, reason):
            raise exception.InvalidGuestDevice(
                device=where, name=name, value=value, reason=reason)
        if not isinstance(volume.volume_id, str) or \
                not SERIAL.match(volume.volume_id):
            fail('volume_id', volume.volume_id, 'it is the disk\'s serial; '
                 'accepted: letters, digits, spaces and _ . + - (libvirt\'s '
                 'limits of a serial), as in a cinder volume UUID')
        if volume.device not in DISK_DEVICES:
            fail('device_type', volume.device, 'accepted: %s' % ', '.join(
                DISK_DEVICES))
        if volume.bus is not None:
            problem = _bus_problem(domain_caps, volume.bus, volume.device)
            if problem:
                fail('disk_bus', volume.bus, problem)
        if volume.boot_index is not None and not _integer(
                volume.boot_index):
            fail('boot_index', volume.boot_index, 'accepted: an integer')
        if volume.boot_index is not None and volume.boot_index >= 0:
            if volume.boot_index in boot_indexes:
                fail('boot_index', volume.boot_index, 'volume %s boots at '
                     'this place too; accepted: a boot index of its own, or '
                     'none' % exception.shown(
                         boot_indexes[volume.boot_index]))
            boot_indexes[volume.boot_index] = volume.volume_id
        limits = {key: value for key, value in volume.qos_specs.items()
                  if key in dev.IOTUNE_FIELDS and value not in (None, '')}
        problem = iotune_problem(limits)
        if problem:
            name, reason = problem
            fail('qos_specs.' + name, limits[name], reason)


def _ifname_problem(name):
    if not isinstance(name, str) or not IFNAME.match(name) or \
            len(name) > MAX_IFNAME:
        return ('accepted: a Linux interface name, 1 to %d letters, digits '
                'or _ . -' % MAX_IFNAME)
    if name.startswith(RESERVED_IFNAME_PREFIXES):
        return ('libvirt reserves names starting with %s for the taps it '
                'makes; accepted: another name, such as nova\'s tap and '
                'the port UUID' % ', '.join(RESERVED_IFNAME_PREFIXES))
    return None


def check_ports(network_info):
    devnames = {}
    for vif in network_info or []:
        vif_type = vif.get('type')
        where = 'Port %s' % exception.shown(vif.get('id'))

        def fail(name, value, reason):
            raise exception.InvalidGuestDevice(
                device=where, name=name, value=value, reason=reason)
        if vif_type not in peripherals.SUPPORTED_VIF_TYPES:
            raise exception.UnsupportedVifType(
                port_id=exception.shown(vif.get('id')),
                vif_type=exception.shown(vif_type),
                supported=', '.join(peripherals.SUPPORTED_VIF_TYPES))
        address = vif.get('address')
        if not isinstance(address, str) or not MAC.match(address):
            fail('address', address, 'accepted: a MAC address such as '
                 'fa:16:3e:12:34:56')
        if int(address[:2], 16) & 1:
            fail('address', address, 'a multicast MAC; accepted: a unicast '
                 'MAC address (first octet even)')
        details = vif.get('details') or {}
        network = vif.get('network') or {}
        hybrid = details.get(network_model.VIF_DETAILS_OVS_HYBRID_PLUG)
        if vif_type == network_model.VIF_TYPE_OVS:
            if not uuidutils.is_uuid_like(vif.get('id')):
                fail('id', vif.get('id'), 'accepted: a port UUID')
            if not hybrid:
                bridge = network.get('bridge') or details.get('bridge_name')
                problem = _ifname_problem(bridge)
                if problem:
                    fail('bridge', bridge, problem)
                interface_id = vif.get('ovs_interfaceid') or vif['id']
                if not uuidutils.is_uuid_like(interface_id):
                    fail('ovs_interfaceid', interface_id, 'accepted: a '
                         'port UUID')
        devname = vif.get('devname')
        if devname or vif_type != network_model.VIF_TYPE_OVS:
            problem = _ifname_problem(devname)
            if problem:
                fail('devname', devname, problem)
        if devname in devnames:
            fail('devname', devname, 'port %s has this tap too; accepted: '
                 'a tap of its own' % exception.shown(devnames[devname]))
        if devname:
            devnames[devname] = vif.get('id')
        mtu = (network.get('meta') or {}).get('mtu')
        if mtu:
            try:
                mtu = int(mtu)
            except (TypeError, ValueError):
                mtu = None
            if mtu is None or not MIN_MTU <= mtu <= MAX_MTU:
                fail('mtu', (network.get('meta') or {}).get('mtu'),
                     'accepted: %d to %d' % (MIN_MTU, MAX_MTU))


# -- the entry ----------------------------------------------------------------

def check_inputs(request, conf, vcpu_max=None, why=None,
                 existing_guest=False):
    """What needs no host: the request's own fields and the options.

    ``render-xml`` runs it before it asks libvirt anything; with the host's
    ``vcpu_max`` (and ``why`` it is the maximum), vCPUs are checked against
    it too.
    """
    check_instance(request.instance)
    check_flavor_fields(request.flavor, vcpu_max, why)
    check_extra_specs(request.flavor, existing_guest)
    check_image_properties(request.image_meta, existing_guest)
    check_options(conf)
    check_ports(request.network_info)


def _resolve(request, conf, host, virt_type, persisted_machine_type):
    image_meta = request.image_meta
    arch = machine.guest_arch(host, image_meta)
    if not any(g.arch == arch and virt_type in g.domain_types
               for g in host.capabilities.guests):
        runs = sorted({t for g in host.capabilities.guests
                       if g.arch == arch for t in g.domain_types})
        if image_meta.properties.get('hw_architecture'):
            raise exception.InvalidImageProperty(
                name='hw_architecture', value=arch,
                reason='this host runs no %s guests of type %s; accepted: '
                '%s' % (arch, virt_type, ', '.join(sorted(
                    {g.arch for g in host.capabilities.guests
                     if virt_type in g.domain_types})) or '(none)'))
        raise exception.InvalidHostConfiguration(
            option='virt_type', value=virt_type,
            reason='this host runs no %s guests of this type; accepted: %s'
            % (arch, ', '.join(runs) or '(none)'))
    machine_type = machine.choose(conf, host.capabilities, arch, virt_type,
                                  image_meta, persisted_machine_type)
    os_type = machine.os_type(host.capabilities, arch, virt_type,
                              image_meta)
    domain_caps = host.domain_capabilities(arch, machine_type, virt_type)
    return Checked(virt_type, arch, machine_type, os_type, domain_caps)


def check_multiqueue(flavor, image_meta):
    """Flavor and image must agree on NIC multiqueue when both say.

    Checked here rather than left to nova's helper, whose conflict message
    needs the image's name, which an image meta may not carry.
    """
    spec = (flavor.extra_specs or {}).get('hw:vif_multiqueue_enabled')
    prop = image_meta.properties.get('hw_vif_multiqueue_enabled')
    if spec is not None and prop is not None and \
            supported.boolean(spec) != prop:
        raise exception.InvalidImageProperty(
            name='hw_vif_multiqueue_enabled', value=prop,
            reason='the flavor\'s hw:vif_multiqueue_enabled is %s; '
            'accepted: the same value as the flavor, or leave it unset'
            % spec)


def check_devices(request, conf, host, checked):
    """Image properties and options that choose devices, against the host.

    The same functions design chooses with: they refuse what the host's
    domain capabilities do not list.
    """
    caps = checked.domain_caps
    image_meta = request.image_meta
    if checked.os_type != 'hvm' and not request.kernel_path:
        raise exception.InvalidImageProperty(
            name='hw_vm_mode', value=checked.os_type,
            reason='a %s guest boots the kernel the image names in '
            'kernel_id, and this image names none; accepted: hvm'
            % checked.os_type)
    if checked.os_type == 'hvm':
        machine.firmware(caps, image_meta)
    disks.choose_bus(caps, image_meta, 'cdrom')
    peripherals.vif_model(image_meta, caps)
    check_multiqueue(request.flavor, image_meta)
    has_graphics = peripherals.graphics(conf, quiet=True) is not None
    peripherals.video(caps, image_meta, has_graphics)
    peripherals.pointer(conf, image_meta, has_graphics, checked.virt_type)
    peripherals.rng(request.flavor, image_meta)
    cpu.validate_cpu_options(conf, caps, host.known_cpu_features,
                             checked.virt_type)
    check_local_disks(request, caps)
    check_volumes(request, caps)
    # Buses, target names and I/O limits as design chooses them: too many
    # disks for a bus are refused here.
    disks.design_disks(request, caps, conf)


def validate(request, conf, host, persisted_machine_type=None,
             virt_type=None, existing_guest=False):
    """Check ``request`` against ``host``; see the module's docstring.

    ``existing_guest``: the guest ran before (it is started again), so
    extra specs and image properties this driver does not build are
    logged rather than refused (what libvirt would refuse still is).

    :returns: :class:`Checked`
    :raises nova_pyvirt.exception.InvalidGuestInput: naming the input.
    """
    virt_type = virt_type or conf.pyvirt.virt_type
    checked = _resolve(request, conf, host, virt_type,
                       persisted_machine_type)
    vcpu_max, why = vcpu_limit(host, checked)
    check_inputs(request, conf, vcpu_max, why, existing_guest)
    # After the vCPU limit: nova's topology search grows with the cube of
    # the vCPU count.
    check_topology(request.flavor, request.image_meta)
    check_devices(request, conf, host, checked)
    return checked
