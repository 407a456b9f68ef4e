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

"""Random inputs of guest design, as plain data, and the request they make.

A *case* is a dict of JSON-like values (so a failure hypothesis finds can be
pasted back as an explicit ``@example``): the flavor, its extra specs, the
image's properties, the options, the instance's strings, volumes and ports.
:func:`cases` draws them, mostly inputs a host can run with some of every
kind of mistake, and hostile strings in each string the domain carries;
:func:`build` turns one into a :class:`GuestRequest` and option overrides.
"""

import os

from hypothesis import strategies as st

from nova.network import model as network_model
from nova import objects
from nova.objects import fields

from nova_pyvirt.design import request
from nova_pyvirt.design import supported
from nova_pyvirt.design import validation
from nova_pyvirt.xml import devices

objects.register_all()

IMAGE_ID = 'c0ffee00-0000-4000-8000-000000000001'
INSTANCE_UUID = '2e1ea3a6-2bd9-4b7c-9d0b-5d5d1f1f0a01'
INSTANCES_PATH = '/var/lib/nova-pyvirt/instances'

# -- strings ------------------------------------------------------------------

#: Strings that have broken XML writers, parsers or libvirt before.
NASTY = ['<&>"\'', ']]>', '&amp;', '<!--', '\x00', '\x01', '\x1b[31m',
         '\x7f', 'a\nb', 'a\r\nb', '\r', '\t', ' lead', 'trail ', ' ',
         'é日本\U0001F600', '\u202e', '\ufffe', '\uffff', '\ud800', '/',
         'a/b', '..', '.', '%', '%s', '%(uuid)s', '-', 'vnet0', 'macvtap1',
         'x' * 256, 'é' * 200]


@st.composite
def very_long(draw):
    char = draw(st.characters())   # surrogates apart, as text() draws
    return char * draw(st.integers(256, 100000))


HOSTILE = st.one_of(st.sampled_from(NASTY), st.text(max_size=30),
                    very_long(),
                    st.text(alphabet=st.characters(max_codepoint=127),
                            max_size=30))
NAME_TEXT = st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789-_ .',
                    min_size=1, max_size=20)


def mostly(plain, other, one_in=12):
    """``plain``, or ``other`` once in ``one_in`` draws.

    Each case has many inputs: were each wrong half of the time, hardly a
    case would reach libvirt.
    """
    return st.integers(1, one_in).flatmap(
        lambda n: other if n == 1 else plain)


def text(plain=NAME_TEXT):
    """Mostly ``plain``, sometimes hostile."""
    return mostly(plain, HOSTILE, one_in=40)


# -- flavor -------------------------------------------------------------------

def _sizes(small, edges, low=-2 ** 8, high=2 ** 60):
    return mostly(small, st.one_of(st.sampled_from(edges),
                                   st.integers(low, high)), one_in=40)


VCPUS = _sizes(st.integers(1, 8), [255, 0, -1, 256, 288, 289, 99999],
               high=1000)
MEMORY_MB = _sizes(st.integers(16, 4096),
                   [validation.MAX_MEMORY_MIB, 2 ** 31 - 1, 0, -5,
                    validation.MAX_MEMORY_MIB + 1])
DISK_GB = _sizes(st.integers(0, 20), [validation.MAX_FLAVOR_INT, -1,
                                      validation.MAX_FLAVOR_INT + 1])
SWAP_MB = _sizes(st.integers(0, 1024), [validation.MAX_FLAVOR_INT, -1,
                                        validation.MAX_FLAVOR_INT + 1])

FLAVOR = st.fixed_dictionaries({
    'vcpus': VCPUS, 'memory_mb': MEMORY_MB, 'root_gb': DISK_GB,
    'ephemeral_gb': DISK_GB, 'swap': SWAP_MB,
    'name': text(st.sampled_from(['m1.tiny', 'm1.small', 'gpu.x'])),
})

# -- extra specs --------------------------------------------------------------

SPEC_INT = mostly(st.sampled_from(['1', '1', '2', '0']), st.one_of(
    st.integers().map(str),
    st.sampled_from(['-1', '1e3', ' 2 ', '٣', '', 'two',
                     str(supported.MAX_UINT + 1),
                     str(supported.MAX_IOTUNE + 1)])), one_in=10)
SPEC_BOOL = mostly(st.sampled_from(['true', 'false', 'True', 'yes', 'no',
                                    '1', '0', 'on', 'off']),
                   st.sampled_from(['banana', '', '2']))
TOPOLOGY_VALUE = mostly(st.sampled_from(['1', '1', '2']), SPEC_INT)
SPEC_VALUES = {
    'hw_rng:rate_bytes': mostly(st.sampled_from(['0', '1024', '65536']),
                                SPEC_INT),
    'hw_rng:rate_period': mostly(st.sampled_from(['1', '1000']), SPEC_INT),
    'hw:cpu_policy': st.sampled_from(['shared', 'dedicated', 'mixed',
                                      'SHARED', 'x']),
    'hw:watchdog_action': st.sampled_from(['disabled', 'reset', 'none']),
    'hw:serial_port_count': st.sampled_from(['1', '0', '2']),
    'hw:redirected_usb_ports': st.sampled_from(['0', '3']),
    'os:secure_boot': st.sampled_from(['disabled', 'required']),
    'hw:mem_page_size': st.sampled_from(['small', 'large', 'any', '2048']),
    'hw:numa_nodes': st.sampled_from(['1', '2']),
}


def _spec_value(key):
    if key in SPEC_VALUES:
        return SPEC_VALUES[key]
    if key.startswith('hw:cpu_') and key[3:] in (
            'cpu_sockets', 'cpu_cores', 'cpu_threads', 'cpu_max_sockets',
            'cpu_max_cores', 'cpu_max_threads'):
        return TOPOLOGY_VALUE
    rule = supported.extra_spec_rule(key)
    if rule is not None and rule.check is supported.boolean:
        return SPEC_BOOL
    if rule is not None and rule.use == supported.REFUSED:
        return st.one_of(SPEC_BOOL, SPEC_INT)
    return st.one_of(SPEC_INT, SPEC_INT, HOSTILE)


HONOURED_SPECS = sorted(k for k, r in supported.EXTRA_SPECS.items()
                        if r.use == supported.HONOURED and
                        not k.startswith('quota:'))
# Disk limits: a total, or read and write ones (QEMU takes not both).
DISK_QUOTAS = mostly(
    st.sampled_from(['total', 'read', 'write']).flatmap(
        lambda kind: st.lists(st.sampled_from(
            ['quota:disk_%s_%s_sec' % (kind, unit)
             for unit in ('bytes', 'iops')]), max_size=2, unique=True)),
    st.lists(st.sampled_from(['quota:disk_' + name for name in
                              supported.DISK_QUOTAS]), min_size=2,
             max_size=3, unique=True), one_in=6)
# Harmless keys first: hypothesis draws the first elements most.
OTHER_SPECS = [
    'resources:VCPU', 'resources1:CUSTOM_X', 'trait:HW_CPU_X86_AVX2',
    'aggregate_instance_extra_specs:ssd', 'capabilities:hypervisor_type',
    'vmware:hw_version', 'custom_key', 'my:namespace'] + sorted(
    k for k, r in supported.EXTRA_SPECS.items()
    if r.use != supported.HONOURED) + [
    'hw:numa_cpus.0', 'hw:numa_mem.0', 'quota:cpu_shares',
    'quota:vif_inbound_average', 'quota:disk_total_bytes_sec_max',
    'hw:cpu_socket', 'hw_rng:rate', 'os:foo']


def _specs(keys):
    return st.fixed_dictionaries({k: _spec_value(k) for k in keys})


EXTRA_SPECS = st.tuples(
    st.lists(st.sampled_from(HONOURED_SPECS), max_size=2, unique=True),
    mostly(st.just([]), DISK_QUOTAS, one_in=4),
    mostly(st.just([]), st.lists(st.sampled_from(OTHER_SPECS), min_size=1,
                                 max_size=2, unique=True), one_in=8),
).flatmap(lambda t: _specs(t[0] + t[1] + t[2]))

# -- image properties ---------------------------------------------------------

PROPS = objects.ImageMetaProps.fields
HONOURED_PROPS = sorted(k for k, r in supported.IMAGE_PROPERTIES.items()
                        if r.use == supported.HONOURED)
# Harmless properties first: hypothesis draws the first elements most.
OTHER_PROPS = sorted(set(PROPS) - set(HONOURED_PROPS), key=lambda name: (
    supported.IMAGE_PROPERTIES[name].use != supported.NO_EFFECT, name))


def _prop_value(name, machines):
    field = PROPS[name]
    if name == 'hw_machine_type':
        pcs = [m for m in machines if m in ('pc', 'q35') or
               m.startswith('pc-')]
        return mostly(st.sampled_from(pcs), st.one_of(
            st.sampled_from(machines), st.sampled_from(
                ['isapc', 'microvm', 'x-remote', 'none', 'pc-q99']),
            HOSTILE), one_in=4)
    if name == 'hw_architecture':
        return mostly(st.just('x86_64'),
                      st.sampled_from(['i686', 'aarch64']), one_in=3)
    if name == 'hw_vm_mode':
        return mostly(st.just('hvm'), st.sampled_from(['xen', 'exe']),
                      one_in=3)
    if name == 'hw_mem_page_size':
        return st.sampled_from(['small', 'large', '2048'])
    if name == 'os_command_line':
        return text(st.sampled_from(['console=ttyS0', 'root=/dev/vda']))
    if isinstance(field, fields.BaseEnumField):
        return st.sampled_from(field._type._valid_values)
    if isinstance(field, fields.FlexibleBooleanField):
        return st.one_of(st.booleans(), st.sampled_from(['yes', 'no']))
    if isinstance(field, fields.IntegerField):
        return mostly(st.integers(1, 4), st.integers(-2 ** 40, 2 ** 40),
                      one_in=5)
    if isinstance(field, fields.UUIDField):
        return st.uuids().map(str)
    if isinstance(field, fields.ListOfStringsField):
        return st.lists(NAME_TEXT, max_size=2)
    if isinstance(field, fields.StringField):
        return text()
    if isinstance(field, fields.VersionPredicateField):
        return st.just('>=1.0')
    return None


def image_properties(machines):
    def props(names):
        values = {}
        for name in names:
            value = _prop_value(name, machines)
            if value is not None:
                values[name] = value
        return st.fixed_dictionaries(values)
    return st.tuples(
        st.lists(st.sampled_from(HONOURED_PROPS), max_size=3, unique=True),
        mostly(st.just([]), st.lists(st.sampled_from(OTHER_PROPS),
                                     min_size=1, max_size=1), one_in=8),
    ).flatmap(lambda t: props(t[0] + t[1]))


# -- options ------------------------------------------------------------------

def options(cpu_models, cpu_features, machines):
    names = st.sampled_from(cpu_models + ['Pentium9000'])
    flags = st.tuples(st.sampled_from(['', '+', '-']),
                      st.sampled_from(cpu_features + ['frobnicate'])).map(
        ''.join)
    pcs = [m for m in machines if m in ('pc', 'q35') or m.startswith('pc-')]
    values = {
        'pyvirt.cpu_mode': st.sampled_from(
            [None, 'host-model', 'host-passthrough', 'custom', 'none']),
        'pyvirt.cpu_models': st.lists(names, max_size=3),
        'pyvirt.cpu_model_extra_flags': st.lists(flags, max_size=2),
        'pyvirt.hw_machine_type': mostly(
            st.sampled_from(pcs).map(lambda m: ['x86_64=' + m]),
            st.sampled_from([['x86_64=microvm'], ['i686=q35'],
                             ['x86_64=pc-q99']]), one_in=4),
        'pyvirt.disk_cachemode': st.sampled_from(
            ['none', 'writethrough', 'writeback', 'directsync', 'unsafe',
             'default']),
        'pyvirt.vnc_keymap': mostly(st.sampled_from(['de', 'en-us',
                                                     'de-ch']),
                                    HOSTILE, one_in=4),
        'pyvirt.mem_stats_period_seconds': mostly(
            st.integers(-1, 60), st.sampled_from([2 ** 31 - 1, 2 ** 31,
                                                  10 ** 12]), one_in=4),
        'DEFAULT.instances_path': mostly(st.sampled_from(
            ['/srv/nova pyvirt/i', '/srv/é/i', '/srv/<&>/i']), st.one_of(
                st.sampled_from(['/', 'relative/path']), HOSTILE),
            one_in=4),
        'vnc.enabled': st.booleans(),
        'vnc.server_listen': st.sampled_from(['127.0.0.1', '::', '0.0.0.0',
                                              'host.example.org']),
        'DEFAULT.pointer_model': st.sampled_from([None, 'ps2mouse',
                                                  'usbtablet']),
        'libvirt.max_queues': st.one_of(st.none(), st.integers(1, 1024)),
        'DEFAULT.instance_name_template': mostly(
            st.sampled_from(['instance-%08x', '%(uuid)s',
                             '%(display_name)s', 'vm-%(hostname)s']),
            HOSTILE.map(lambda t: t.replace('%', '%%') + '-%08x'),
            one_in=4),
    }
    return st.lists(st.sampled_from(sorted(values)), max_size=3,
                    unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: values[k] for k in keys}))


# -- instance, volumes and ports ----------------------------------------------

INSTANCE = st.fixed_dictionaries({
    'display_name': text(), 'user_id': text(), 'project_id': text(),
    'os_type': st.sampled_from([None, 'linux', 'windows']),
})

QOS = st.dictionaries(
    st.sampled_from(list(devices.IOTUNE_FIELDS) + ['consumer']),
    st.one_of(st.integers(0, 10 ** 6).map(str), SPEC_INT), max_size=3)
VOLUME = st.fixed_dictionaries({
    'volume_id': mostly(st.uuids().map(str), HOSTILE),
    'bus': mostly(st.sampled_from([None, 'virtio', 'scsi', 'sata']),
                  st.sampled_from(['ide', 'usb', 'fdc', 'lxc'])),
    'device': mostly(st.just('disk'), st.sampled_from(['cdrom', 'lun'])),
    'boot_index': st.sampled_from([None, 0, 1, -1]),
    'mount_device': st.sampled_from([None, '/dev/vdb', '/dev/sdc', 'vdz',
                                     '/dev/vd<x', '/dev/hdq']),
    'qos': mostly(st.just({}), QOS, one_in=8),
})

MACS = mostly(
    st.integers(0, 0xff).map(lambda n: 'fa:16:3e:00:00:%02x' % n),
    st.sampled_from(['FA:16:3E:12:34:56', '01:00:5e:00:00:01',
                     'fa:16:3e:zz:00:01', 'fa-16-3e-00-00-01', '']))
IFNAMES = mostly(st.sampled_from(['br-int', 'tap1234', 'br_ex.1']),
                 HOSTILE, one_in=20)
PORT = st.fixed_dictionaries({
    'type': mostly(st.sampled_from(['ovs', 'tap']), st.just('vhostuser')),
    'id': mostly(st.uuids().map(str), HOSTILE),
    'address': MACS,
    'hybrid': st.booleans(),
    'bridge': IFNAMES,
    'devname': mostly(IFNAMES,
                      st.sampled_from(['vnet0', 'macvtap3', 'tap' + 'x' * 20,
                                       'tap 1'])),
    'mtu': mostly(st.one_of(st.none(), st.integers(1200, 9000)),
                  st.sampled_from([0, 67, 68, 65535, 65536, -1])),
})

LOCAL = st.fixed_dictionaries({
    'config_drive': st.booleans(),
    'kernel': st.booleans(),
    'ramdisk': st.booleans(),
    'boot_from_volume': st.booleans(),
})


def cases(host):
    """Cases for this host: its CPU models, features and machine types."""
    caps = host.domain_capabilities(host.arch, None, 'qemu')
    custom = caps.cpu_mode('custom')
    cpu_models = sorted(m.name for m in custom.models) if custom else []
    cpu_features = sorted(host.known_cpu_features)
    machines = sorted({m.name for g in host.capabilities.guests
                       if g.arch == host.arch
                       for m in g.machines_for('qemu')})
    return st.fixed_dictionaries({
        'virt_type': st.sampled_from(['qemu', 'kvm']),
        'flavor': FLAVOR,
        'extra_specs': EXTRA_SPECS,
        'image': image_properties(machines),
        'options': options(cpu_models, cpu_features, machines),
        'instance': INSTANCE,
        'volumes': st.lists(VOLUME, max_size=2),
        'ports': st.lists(PORT, max_size=2),
        'local': LOCAL,
    })


# -- building -----------------------------------------------------------------

def option_overrides(case):
    """``[(group, name, value)]``: group None is ``[DEFAULT]``.

    A ``$`` is written ``$$``, as in a configuration file: oslo.config
    reads ``$name`` as another option's value.
    """
    overrides = [('pyvirt', 'virt_type', case['virt_type'])]
    for key, value in sorted(case['options'].items()):
        group, _sep, name = key.partition('.')
        if isinstance(value, str):
            value = value.replace('$', '$$')
        overrides.append((None if group == 'DEFAULT' else group, name,
                          value))
    return overrides


def _vif(port):
    details = {network_model.VIF_DETAILS_PORT_FILTER: True}
    if port['type'] == 'ovs':
        details[network_model.VIF_DETAILS_OVS_HYBRID_PLUG] = port['hybrid']
    meta = {'mtu': port['mtu']} if port['mtu'] is not None else {}
    network = network_model.Network(id=None, bridge=port['bridge'],
                                    label='private', meta=meta)
    return network_model.VIF(
        id=port['id'], address=port['address'], type=port['type'],
        network=network, details=details, ovs_interfaceid=port['id'],
        devname=port['devname'], active=True)


def _volume(spec, index):
    source = devices.Disk(type='block', source_dev='/dev/sd%s' % 'xyz'[
        index % 3])
    return request.VolumeDisk(
        spec['volume_id'], source, mount_device=spec['mount_device'],
        boot_index=spec['boot_index'], bus=spec['bus'],
        device=spec['device'], qos_specs=dict(spec['qos']))


def build(case, instances_path):
    """The request of ``case``, its instance's files under the path."""
    flavor = objects.Flavor(extra_specs=dict(case['extra_specs']),
                            **case['flavor'])
    image_meta = objects.ImageMeta.from_dict(
        {'id': IMAGE_ID, 'properties': dict(case['image'])})
    instance = objects.Instance(
        uuid=INSTANCE_UUID, id=7, flavor=flavor, **case['instance'])
    directory = os.path.join(instances_path, instance.uuid)
    local = case['local']
    disks = [] if local['boot_from_volume'] else [
        request.LocalDisk('disk', os.path.join(directory, 'disk'))]
    if not isinstance(flavor.ephemeral_gb, int) or flavor.ephemeral_gb:
        disks.append(request.LocalDisk(
            'disk.eph0', os.path.join(directory, 'disk.eph0')))
    if not isinstance(flavor.swap, int) or flavor.swap:
        disks.append(request.LocalDisk(
            'disk.swap', os.path.join(directory, 'disk.swap'),
            format='raw'))
    if local['config_drive']:
        disks.append(request.LocalDisk(
            'disk.config', os.path.join(directory, 'disk.config'),
            format='raw', device='cdrom'))
    kernel = os.path.join(directory, 'kernel') if local['kernel'] else None
    ramdisk = (os.path.join(directory, 'ramdisk')
               if local['kernel'] and local['ramdisk'] else None)
    return request.GuestRequest(
        instance, flavor, image_meta, directory, local_disks=disks,
        volumes=[_volume(v, i) for i, v in enumerate(case['volumes'])],
        network_info=[_vif(p) for p in case['ports']],
        kernel_path=kernel, ramdisk_path=ramdisk,
        console_log=os.path.join(directory, 'console.log'))
