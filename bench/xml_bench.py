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

"""Our XML object model against nova's ``nova.virt.libvirt.config``.

Run from the repository root::

    .venv/bin/python bench/xml_bench.py          # full run
    .venv/bin/python bench/xml_bench.py --quick  # smoke run

Three measurements, all in one run so both sides see the same machine:

1. build+serialize: build the typical 12-device guest from scratch
   (``tests.xml_samples.typical_domain()`` against :func:`build_nova`) and
   serialize it, pretty-printed, to a string.
2. parse+read: parse that guest's XML and read every value nova's
   ``LibvirtConfigGuest.parse_dom`` fills in (:func:`read_ours` against
   :func:`read_nova`; both return the same values, checked before timing).
3. round-trip fidelity: how many libvirt corpus files come back
   canonically equal from each model, per folder.

Timings interleave the two contenders (alternating which goes first),
repeat in rounds of N iterations (N sized per contender to a batch time),
and report the median and minimum per-iteration time.  Ratios are
ours / nova: below 1.0 means our model is faster.  The exit status is 1
when a target is missed.
"""

import argparse
import calendar
import collections
import gc
import os
import statistics
import sys
import time
import warnings

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# Importing nova pulls in eventlet through oslo.privsep, which warns.
warnings.filterwarnings('ignore', message=r'(?s)\s*eventlet')
# nova's LibvirtConfigGuestIOMMU.parse_dom truth-tests an lxml element.
warnings.filterwarnings('ignore', category=FutureWarning,
                        module=r'nova\.virt\.libvirt\.config')

from lxml import etree  # noqa: E402
from nova.virt import hardware  # noqa: E402
from nova.virt.libvirt import config as vconfig  # noqa: E402

from bench import benchlib  # noqa: E402
from nova_pyvirt import xml  # noqa: E402
from tests import corpus  # noqa: E402
from tests import xml_samples  # noqa: E402

TARGET_BUILD = 1.0
TARGET_PARSE = 0.5

UUID = xml_samples.UUID
CREATION_TIME = calendar.timegm((2026, 11, 21, 7, 0, 0, 0, 0, 0))


# ---------------------------------------------------------------------------
# 1. Building the typical guest.

def build_ours():
    """The typical guest through our API (shared with the unit tests)."""
    return xml_samples.typical_domain()


def build_nova():
    """The same guest with nova's config classes, the way nova's driver does.

    nova always writes a flavor id (``LibvirtConfigGuestMetaNovaFlavor``
    cannot format without one), an empty ``<nova:extraSpecs/>`` and
    ``autodeflate``/``freePageReporting`` on the balloon; it writes no
    ``<currentMemory>`` and no ``unit=`` on ``<memory>``.  Those are the only
    differences; :func:`compare_outputs` lists them.
    """
    guest = vconfig.LibvirtConfigGuest()
    guest.virt_type = 'kvm'
    guest.name = 'instance-00000001'
    guest.uuid = UUID
    guest.memory = 2097152
    guest.vcpus = 2

    meta = vconfig.LibvirtConfigGuestMetaNovaInstance()
    meta.package = '34.0.0'
    meta.name = 'vm1'
    meta.creationTime = CREATION_TIME
    flavor = vconfig.LibvirtConfigGuestMetaNovaFlavor()
    flavor.name = 'm1.small'
    flavor.id = '1'
    flavor.memory = 2048
    flavor.disk = 20
    flavor.swap = 0
    flavor.ephemeral = 0
    flavor.vcpus = 2
    meta.flavor = flavor
    owner = vconfig.LibvirtConfigGuestMetaNovaOwner()
    owner.userid = 'u1'
    owner.username = 'demo'
    owner.projectid = 'p1'
    owner.projectname = 'demo'
    meta.owner = owner
    meta.roottype = 'image'
    meta.rootid = 'i1'
    guest.metadata.append(meta)

    sysinfo = vconfig.LibvirtConfigGuestSysinfo()
    sysinfo.system_manufacturer = 'OpenStack'
    sysinfo.system_serial = UUID
    guest.sysinfo = sysinfo

    guest.os_type = 'hvm'
    guest.os_mach_type = 'pc-i440fx-7.2'
    guest.os_boot_dev = ['hd']
    guest.os_smbios = vconfig.LibvirtConfigGuestSMBIOS()

    guest.add_feature(vconfig.LibvirtConfigGuestFeatureACPI())
    guest.add_feature(vconfig.LibvirtConfigGuestFeatureAPIC())

    cpu = vconfig.LibvirtConfigGuestCPU()
    cpu.mode = 'host-model'
    cpu.match = 'exact'
    cpu.sockets = 2
    cpu.cores = 1
    cpu.threads = 1
    guest.cpu = cpu

    clock = vconfig.LibvirtConfigGuestClock()
    clock.offset = 'utc'
    for name, tickpolicy, present in (('pit', 'delay', None),
                                      ('rtc', 'catchup', None),
                                      ('hpet', None, False)):
        timer = vconfig.LibvirtConfigGuestTimer()
        timer.name = name
        timer.tickpolicy = tickpolicy
        timer.present = present
        clock.add_timer(timer)
    guest.set_clock(clock)

    for path, dev in (('/var/lib/nova/instances/x/disk', 'vda'),
                      ('/var/lib/nova/instances/x/disk.eph0', 'vdb')):
        disk = vconfig.LibvirtConfigGuestDisk()
        disk.source_type = 'file'
        disk.source_device = 'disk'
        disk.driver_name = 'qemu'
        disk.driver_format = 'qcow2'
        disk.driver_cache = 'none'
        disk.source_path = path
        disk.target_dev = dev
        disk.target_bus = 'virtio'
        guest.add_device(disk)

    disk = vconfig.LibvirtConfigGuestDisk()
    disk.source_type = 'network'
    disk.source_device = 'disk'
    disk.driver_name = 'qemu'
    disk.driver_format = 'raw'
    disk.driver_cache = 'none'
    disk.source_protocol = 'iscsi'
    disk.source_name = 'iqn.x:vol/1'
    disk.source_hosts = ['127.0.0.1']
    disk.source_ports = ['3260']
    disk.target_dev = 'vdc'
    disk.target_bus = 'virtio'
    disk.serial = 'vol-1'
    guest.add_device(disk)

    disk = vconfig.LibvirtConfigGuestDisk()
    disk.source_type = 'file'
    disk.source_device = 'cdrom'
    disk.driver_name = 'qemu'
    disk.driver_format = 'raw'
    disk.source_path = '/x/disk.config'
    disk.target_dev = 'hda'
    disk.target_bus = 'ide'
    disk.readonly = True
    guest.add_device(disk)

    nic = vconfig.LibvirtConfigGuestInterface()
    nic.net_type = 'bridge'
    nic.mac_addr = 'fa:16:3e:00:00:01'
    nic.source_dev = 'br-int'
    nic.target_dev = 'tap1'
    nic.model = 'virtio'
    nic.mtu = 1450
    guest.add_device(nic)

    serial = vconfig.LibvirtConfigGuestSerial()
    serial.type = 'file'
    serial.source_path = '/x/console.log'
    serial.target_port = 0
    guest.add_device(serial)
    serial = vconfig.LibvirtConfigGuestSerial()
    serial.type = 'pty'
    serial.target_port = 1
    guest.add_device(serial)

    tablet = vconfig.LibvirtConfigGuestInput()
    tablet.type = 'tablet'
    tablet.bus = 'usb'
    guest.add_device(tablet)

    graphics = vconfig.LibvirtConfigGuestGraphics()
    graphics.type = 'vnc'
    graphics.autoport = True
    graphics.listen = '127.0.0.1'
    guest.add_device(graphics)

    video = vconfig.LibvirtConfigGuestVideo()
    video.type = 'virtio'
    guest.add_device(video)

    balloon = vconfig.LibvirtConfigMemoryBalloon()
    balloon.model = 'virtio'
    balloon.period = 10
    guest.add_device(balloon)

    rng = vconfig.LibvirtConfigGuestRng()
    rng.device_model = 'virtio'
    rng.model = 'random'
    rng.backend = '/dev/urandom'
    guest.add_device(rng)
    return guest


def build_serialize_ours():
    return build_ours().to_xml()


def build_serialize_nova():
    return build_nova().to_xml()


def _signature(root):
    """A multiset of (tag path, attributes, text) for every element.

    Order-insensitive, so it shows what content differs and not where
    each side places it (nova writes ``<uuid>`` before ``<name>`` and
    ``<clock>`` before ``<cpu>``).
    """
    items = collections.Counter()
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        path = []
        walk = node
        while walk is not None:
            path.append(etree.QName(walk).localname)
            walk = walk.getparent()
        text = (node.text or '').strip() if not len(node) else ''
        items[('/'.join(reversed(path)), tuple(sorted(
            (etree.QName(k).localname, v) for k, v in node.attrib.items())),
            text)] += 1
    return items


def _describe(item):
    path, attrs, text = item
    out = path
    if attrs:
        out += ' ' + ' '.join('%s=%r' % a for a in attrs)
    if text:
        out += ' text=%r' % text
    return out


def compare_outputs(ours_text, nova_text):
    """Counts for both serializations and the content only one side has."""
    ours_root = etree.fromstring(ours_text.encode())
    nova_root = etree.fromstring(nova_text.encode())
    stats = {}
    for label, root, text in (('ours', ours_root, ours_text),
                              ('nova', nova_root, nova_text)):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        devices = root.find('devices')
        stats[label] = {
            'elements': len(elements),
            'attributes': sum(len(e.attrib) for e in elements),
            'devices': 0 if devices is None else len(devices),
            'chars': len(text),
        }
    ours_sig = _signature(ours_root)
    nova_sig = _signature(nova_root)
    only_ours = sorted(_describe(i) for i in (ours_sig - nova_sig).elements())
    only_nova = sorted(_describe(i) for i in (nova_sig - ours_sig).elements())
    return stats, only_ours, only_nova


# ---------------------------------------------------------------------------
# 2. Parsing and reading.
#
# nova's LibvirtConfigGuest.parse_dom fills, for a domain: type, uuid, name,
# memory, vcpu (+cpuset), iothreads, os (firmware, type, machine, kernel,
# loader..., nvram, initrd, cmdline, root, init, boot, bootmenu, initenv,
# secure-boot), features (smm only), cpu (mode, match, arch, model, vendor,
# topology, maxphysaddr, non-disabled features, numa cells), perf events,
# idmaps, and only these devices: disk, filesystem, hostdev (pci, mdev),
# interface, nvdimm memory, iommu.  The readers below return the values of
# those fields that the typical guest can hold and our model has typed
# fields for (see MODEL_GAPS for the rest), in the same layout on both
# sides so they can be compared.

def _nova_address(addr):
    if addr is None:
        return None
    if addr.type == 'pci':
        return (addr.type, addr.domain, addr.bus, addr.slot, addr.function)
    return (addr.type, addr.controller, addr.bus, addr.target, addr.unit)


def read_nova(guest):
    """Values a caller gets from a parsed ``LibvirtConfigGuest``."""
    cpu = guest.cpu
    out = [guest.virt_type, guest.name, guest.uuid, guest.memory,
           guest.vcpus, guest.cpuset, guest.iothreads,
           guest.os_firmware, guest.os_type, guest.os_mach_type,
           guest.os_kernel, guest.os_initrd, guest.os_cmdline,
           guest.os_loader, guest.os_loader_type, guest.os_nvram,
           guest.os_init_path, list(guest.os_boot_dev), guest.os_bootmenu,
           [f.root_name for f in guest.features]]
    if cpu is None:
        out.append(None)
    else:
        out.append((cpu.mode, cpu.match, cpu.arch, cpu.model, cpu.vendor,
                    cpu.sockets, cpu.cores, cpu.threads,
                    sorted(f.name for f in cpu.features),
                    None if cpu.numa is None else [
                        (c.id, c.memory) for c in cpu.numa.cells]))
    disks = []
    nics = []
    for dev in guest.devices:
        if isinstance(dev, vconfig.LibvirtConfigGuestDisk):
            disks.append((
                dev.source_type, dev.driver_name, dev.driver_format,
                dev.driver_cache, dev.driver_discard, dev.driver_io,
                dev.source_path, dev.source_protocol, dev.source_name,
                list(dev.source_hosts), list(dev.source_ports),
                dev.target_dev, dev.target_bus, dev.serial, dev.readonly,
                dev.shareable, dev.boot_order, _nova_address(dev.device_addr),
                dev.alias,
                None if dev.volume_encryption is None
                else dev.volume_encryption.format))
        elif isinstance(dev, vconfig.LibvirtConfigGuestInterface):
            nics.append((
                dev.net_type, dev.mac_addr, dev.model, dev.driver_name,
                dev.vhost_queues, dev.vhost_rx_queue_size,
                dev.vhost_tx_queue_size, dev.source_dev, dev.source_mode
                if dev.net_type == 'direct' else None,
                dev.vhostuser_path, dev.target_dev, dev.script, dev.vlan,
                dev.vporttype, dev.filtername,
                [(p['key'], p['value']) for p in dev.filterparams],
                dev.vif_inbound_average, dev.vif_inbound_peak,
                dev.vif_inbound_burst, dev.vif_outbound_average,
                dev.vif_outbound_peak, dev.vif_outbound_burst, dev.mtu,
                _nova_address(dev.device_addr), dev.alias))
    out.append(disks)
    out.append(nics)
    return out


def _our_address(addr):
    if addr is None or addr.type not in ('pci', 'drive'):
        return None
    if addr.type == 'pci':
        return (addr.type, addr.domain, addr.bus, addr.slot, addr.function)
    return (addr.type, addr.controller, addr.bus, addr.target, addr.unit)


_NETWORK_SOURCE = {'direct': 'source_dev', 'vdpa': 'source_dev',
                   'network': 'source_bridge', 'bridge': 'source_bridge'}


def _our_nic_source(nic, kind):
    """What nova puts in source_dev (a PCI address for type='hostdev')."""
    if kind != 'hostdev':
        return getattr(nic, _NETWORK_SOURCE.get(kind, 'source_bridge'))
    addr = nic.source_address
    if addr is None or addr.type != 'pci':
        return None
    return '%s:%s:%s.%s' % tuple(
        value[2:] for value in (addr.domain, addr.bus, addr.slot,
                                addr.function))


def read_ours(dom):
    """The same values as :func:`read_nova`, through our typed fields."""
    os_ = dom.os
    cpu = dom.cpu
    features = dom.features
    out = [dom.type, dom.name, dom.uuid, dom.memory_kib, dom.vcpu,
           dom.vcpu_cpuset, dom.iothreads]
    if os_ is None:
        out += [None] * 10 + [[], False]
    else:
        out += [os_.firmware, os_.type, os_.machine, os_.kernel,
                os_.initrd, os_.cmdline, os_.loader, os_.loader_type,
                os_.nvram, os_.init, os_.boot_devices,
                bool(os_.bootmenu_enable)]
    out.append(['smm'] if features is not None and features.smm_enabled
               else [])
    if cpu is None:
        out.append(None)
    else:
        cells = cpu.numa_cells
        out.append((cpu.mode, cpu.match, cpu.arch, cpu.model, cpu.vendor,
                    cpu.topology_sockets, cpu.topology_cores,
                    cpu.topology_threads,
                    sorted(f.name for f in cpu.features
                           if f.policy != 'disable'),
                    [(c.id, c.memory_kib) for c in cells] if cells
                    else None))
    disks = []
    for disk in dom.disks:
        hosts = disk.source_hosts
        encryption = disk.encryption
        disks.append((
            disk.type, disk.driver_name, disk.driver_type, disk.driver_cache,
            disk.driver_discard, disk.driver_io, disk.source_path,
            disk.source_protocol, disk.source_name,
            [h.name for h in hosts], [h.port for h in hosts],
            disk.target_dev, disk.target_bus, disk.serial, disk.readonly,
            disk.shareable, disk.boot_order, _our_address(disk.address),
            disk.alias, None if encryption is None else encryption.format))
    nics = []
    for nic in dom.interfaces:
        kind = nic.type
        nics.append((
            kind, nic.mac_address, nic.model, nic.driver_name,
            nic.driver_queues, nic.driver_rx_queue_size,
            nic.driver_tx_queue_size, _our_nic_source(nic, kind),
            nic.source_mode if kind == 'direct' else None,
            nic.source_path if kind == 'vhostuser' else None,
            nic.target_dev, nic.script_path,
            (nic.vlan_tags or [None])[0], nic.virtualport_type,
            nic.filterref,
            [(p.name, p.value) for p in nic.filterref_parameters],
            nic.bandwidth_inbound_average, nic.bandwidth_inbound_peak,
            nic.bandwidth_inbound_burst, nic.bandwidth_outbound_average,
            nic.bandwidth_outbound_peak, nic.bandwidth_outbound_burst,
            nic.mtu, _our_address(nic.address), nic.alias))
    out.append(disks)
    out.append(nics)
    return out


def read_core_nova(guest):
    """Only the handful of values a typical caller looks at."""
    return [guest.name, guest.uuid, guest.memory, guest.vcpus, guest.os_type,
            guest.os_mach_type, guest.cpu.mode if guest.cpu else None,
            [(d.source_path, d.target_dev, d.target_bus, d.driver_format,
              d.serial) for d in guest.devices
             if isinstance(d, vconfig.LibvirtConfigGuestDisk)],
            [(n.mac_addr, n.model, n.source_dev) for n in guest.devices
             if isinstance(n, vconfig.LibvirtConfigGuestInterface)]]


def read_core_ours(dom):
    os_ = dom.os
    cpu = dom.cpu
    return [dom.name, dom.uuid, dom.memory_kib, dom.vcpu,
            os_.type if os_ is not None else None,
            os_.machine if os_ is not None else None,
            cpu.mode if cpu is not None else None,
            [(d.source_path, d.target_dev, d.target_bus, d.driver_type,
              d.serial) for d in dom.disks],
            [(n.mac_address, n.model, n.source_bridge)
             for n in dom.interfaces]]


def parse_read_ours(text):
    return read_ours(xml.parse(text))


def parse_core_ours(text):
    return read_core_ours(xml.parse(text))


def parse_core_nova(text):
    guest = vconfig.LibvirtConfigGuest()
    guest.parse_str(text)
    return read_core_nova(guest)


def parse_read_nova(text):
    guest = vconfig.LibvirtConfigGuest()
    guest.parse_str(text)
    return read_nova(guest)


def _normalize(value):
    """Make both readers' results comparable.

    nova keeps many numbers as strings (boot order, queues) and a vcpu
    cpuset as a set of ints; we return ints and the attribute's text.
    """
    if isinstance(value, (set, frozenset)):
        return hardware.format_cpu_spec(value, allow_ranges=True)
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return str(value)


# Labels for the values read_nova/read_ours return, in order.
DOMAIN_LABELS = (
    'type', 'name', 'uuid', 'memory', 'vcpu', 'vcpu@cpuset', 'iothreads',
    'os@firmware', 'os/type', 'os/type@machine', 'os/kernel', 'os/initrd',
    'os/cmdline', 'os/loader', 'os/loader@type', 'os/nvram', 'os/init',
    'os/boot@dev', 'os/bootmenu', 'features(smm)', 'cpu', 'disks',
    'interfaces')
CPU_LABELS = ('mode', 'match', 'arch', 'model', 'vendor', 'sockets',
              'cores', 'threads', 'features', 'numa')
DISK_LABELS = (
    'type', 'driver@name', 'driver@type', 'driver@cache', 'driver@discard',
    'driver@io', 'source path', 'source@protocol', 'source@name',
    'source/host@name', 'source/host@port', 'target@dev', 'target@bus',
    'serial', 'readonly', 'shareable', 'boot@order', 'address', 'alias',
    'encryption@format')
NIC_LABELS = (
    'type', 'mac', 'model', 'driver@name', 'driver@queues',
    'driver@rx_queue_size', 'driver@tx_queue_size', 'source', 'source@mode',
    'source@path', 'target@dev', 'script', 'vlan', 'virtualport@type',
    'filterref', 'filterref/parameter', 'inbound@average', 'inbound@peak',
    'inbound@burst', 'outbound@average', 'outbound@peak', 'outbound@burst',
    'mtu', 'address', 'alias')


def differences(ours, nova):
    """Labels of the values on which two normalized readings differ."""
    out = []
    for label, mine, theirs in zip(DOMAIN_LABELS, ours, nova):
        if mine == theirs:
            continue
        if label == 'cpu' and mine is not None and theirs is not None:
            out += ['cpu/' + name for name, a, b in zip(CPU_LABELS, mine,
                                                        theirs) if a != b]
        elif label in ('disks', 'interfaces') and len(mine) == len(theirs):
            names = DISK_LABELS if label == 'disks' else NIC_LABELS
            for one, other in zip(mine, theirs):
                out += ['%s/%s' % (label[:-1], name) for name, a, b in
                        zip(names, one, other) if a != b]
        else:
            out.append(label)
    return sorted(set(out))


# Why the readers are known to disagree on some corpus files; printed next to
# the counts.  Anything not listed here is worth a look.
KNOWN_CAUSES = {
    'vcpu': 'no <vcpu>: nova reports its default 1, ours None',
    'memory': "nova ignores unit= (and reports 500 MiB when there is no "
              "<memory>); ours converts to KiB",
    'os/nvram': "<nvram> holding a <source>: nova reads the indentation "
                "inside it as the path; ours drops whitespace between "
                "elements and reads None",
}


def reader_agreement(limit=None):
    """Compare both readers on every corpus domain nova can parse.

    Returns (files compared, files nova could not parse, files where our
    reader raised, {label: [files]} for disagreements).
    """
    compared = nova_failed = ours_failed = 0
    disagreements = collections.defaultdict(list)
    for folder in corpus.DOMAIN_FOLDERS:
        paths = corpus.files(folder)
        if limit:
            paths = paths[:limit]
        for path in paths:
            text = corpus.read(path)
            try:
                theirs = _normalize(parse_read_nova(text))
            except Exception:
                nova_failed += 1
                continue
            try:
                mine = _normalize(parse_read_ours(text))
            except Exception as exc:
                ours_failed += 1
                disagreements['our reader raised %s' % type(exc).__name__
                              ].append(path)
                continue
            compared += 1
            for label in differences(mine, theirs):
                disagreements[label].append(path)
    return compared, nova_failed, ours_failed, disagreements


# What nova's parse_dom fills that our model has no typed field (or device
# class) for: a caller must go through ``.element``.  Each entry is (object,
# nova attribute, the XML, the name our model would give it); an entry drops
# out of the report as soon as that name exists.
MODEL_GAPS = (
    ('disk', 'snapshot', "<disk snapshot='...'>", 'Disk.snapshot'),
    ('disk', 'backing_store', '<backingStore> (type, format, source, chain)',
     'Disk.backing_store'),
    ('disk', 'mirror', '<mirror> (block job state)', 'Disk.mirror'),
    ('disk', 'ephemeral_encryption', '<source><encryption>',
     'Disk.source_encryption'),
    ('interface', 'source_dev (hostdev)', '<source><address type=pci> of '
     "<interface type='hostdev'>", 'Interface.source_address'),
    ('interface', 'driver_packed', "<driver packed='on'>",
     'Interface.driver_packed'),
    ('interface', 'managed', "<target managed='no'>",
     'Interface.target_managed'),
    ('interface', 'vportparams', '<virtualport><parameters> (all keys, e.g. '
     'profileid, instanceid)', 'Interface.virtualport_instanceid'),
    ('filesystem', 'source_dev', "<source dev=> (type='block')",
     'Filesystem.source_dev'),
    ('filesystem', 'driver_format', '<driver format=>',
     'Filesystem.driver_format'),
    ('hostdev', 'model (mdev)', "<hostdev type='mdev' model=>",
     'HostdevPCI.model'),
    ('hostdev', 'uuid (mdev)', '<source><address uuid=>', 'Address.uuid'),
    ('device', 'LibvirtConfigGuestVPMEM', "<memory model='nvdimm'>",
     'device:memory'),
    ('device', 'LibvirtConfigGuestIOMMU', '<iommu model=> + <driver>',
     'device:iommu'),
    ('cpu', 'maxphysaddr', "<maxphysaddr mode= bits=>",
     'CPU.maxphysaddr_mode'),
    ('os', 'os_root', '<os><root>', 'OS.root'),
    ('os', 'os_init_env', '<os><initenv name=>', 'OS.initenv'),
    ('os', 'os_loader_stateless', "<loader stateless=>",
     'OS.loader_stateless'),
    ('os', 'os_firmware_secure', "<firmware><feature name='secure-boot' "
     "enabled=>", 'OS.firmware_secure_boot'),
    ('domain', 'perf_events', '<perf><event name= enabled=>',
     'Domain.perf_events'),
    ('domain', 'idmaps', '<idmap><uid/><gid/>', 'Domain.idmaps'),
)


def model_gaps():
    """The :data:`MODEL_GAPS` entries still missing from the model."""
    from nova_pyvirt.xml import cpudef as cpu_mod
    from nova_pyvirt.xml import devices as dev_mod
    from nova_pyvirt.xml import domain as dom_mod

    def present(where):
        if where.startswith('device:'):
            return where.split(':', 1)[1] in dev_mod.DEVICE_CLASSES
        cls_name, attr = where.split('.')
        cls = next(getattr(m, cls_name) for m in (dev_mod, dom_mod, cpu_mod)
                   if hasattr(m, cls_name))
        return hasattr(cls, attr)

    return [gap for gap in MODEL_GAPS if not present(gap[3])]


# ---------------------------------------------------------------------------
# Timing.

# The default clock is the process's CPU time: the workloads are CPU-bound
# and single-threaded, and unlike wall time it does not count the time the
# process spends preempted by other work on a busy machine.
CLOCKS = {'cpu': time.process_time, 'wall': time.perf_counter}


def _batch(func, arg, number, clock=time.process_time):
    """Seconds for ``number`` calls, with the collector off (as timeit)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        for _ in range(number):
            func(*arg)
        return clock() - start
    finally:
        if enabled:
            gc.enable()


def _calibrate(func, arg, batch_seconds, clock):
    number = 1
    while True:
        elapsed = _batch(func, arg, number, clock)
        if elapsed >= batch_seconds / 5 or number >= 1 << 22:
            break
        number *= 4
    return max(1, int(number * batch_seconds / max(elapsed, 1e-9)))


Timing = collections.namedtuple('Timing', 'label number samples')


def interleaved(contenders, rounds, batch_seconds, clock=time.process_time):
    """Time each ``(label, func, args)`` ``rounds`` times, interleaved.

    Each contender gets its own iteration count, sized so one batch takes
    about ``batch_seconds``; rounds alternate which contender runs first.
    Returns a :class:`Timing` per contender with per-iteration seconds.
    """
    for _, func, args in contenders:
        for _ in range(3):
            func(*args)
    numbers = [_calibrate(func, args, batch_seconds, clock)
               for _, func, args in contenders]
    samples = [[] for _ in contenders]
    for index in range(rounds):
        order = list(range(len(contenders)))
        if index % 2:
            order.reverse()
        for which in order:
            _, func, args = contenders[which]
            samples[which].append(
                _batch(func, args, numbers[which], clock) / numbers[which])
    return [Timing(c[0], n, s)
            for c, n, s in zip(contenders, numbers, samples)]


def _us(seconds):
    return seconds * 1e6


def report_timing(ours, nova, target):
    """Print one timing table; return (median ratio, min ratio)."""
    print('%-6s %8s %7s %11s %11s %11s %8s' % (
        '', 'N/batch', 'rounds', 'median us', 'min us', 'max us', 'spread'))
    for timing in (ours, nova):
        s = timing.samples
        print('%-6s %8d %7d %11.1f %11.1f %11.1f %7.1f%%' % (
            timing.label, timing.number, len(s), _us(statistics.median(s)),
            _us(min(s)), _us(max(s)), 100.0 * (max(s) / min(s) - 1)))
    median_ratio = statistics.median(ours.samples) / statistics.median(
        nova.samples)
    min_ratio = min(ours.samples) / min(nova.samples)
    per_round = sorted(o / n for o, n in zip(ours.samples, nova.samples))
    print('ratio ours/nova: %.3f (medians), %.3f (minimums), per-round '
          '%.3f..%.3f; target <= %.2f' % (
              median_ratio, min_ratio, per_round[0], per_round[-1], target))
    return median_ratio, min_ratio


# ---------------------------------------------------------------------------
# 3. Round-trip fidelity.

def _nova_round_trip(folder, text):
    if folder in corpus.DOMAIN_FOLDERS:
        obj = vconfig.LibvirtConfigGuest()
    elif folder == 'capabilities':
        obj = vconfig.LibvirtConfigCaps()
    elif folder == 'domaincaps':
        obj = vconfig.LibvirtConfigDomainCaps()
    elif folder == 'cpu':
        obj = vconfig.LibvirtConfigCPU()
    else:
        raise ValueError(folder)
    obj.parse_str(text)
    return obj.to_xml()


def _our_round_trip(folder, text):
    return xml.parse(text).to_xml()


def _outcome(round_trip, folder, text, expected):
    try:
        out = round_trip(folder, text)
        got = xml.canonical(etree.fromstring(out.encode('utf-8')))
    except Exception as exc:  # counting crashes is the point
        return 'crashed', '%s: %s' % (type(exc).__name__, exc)
    return ('exact', None) if got == expected else ('different', None)


def fidelity(limit=None):
    """Per folder, per model: counts of exact / different / crashed."""
    rows = []
    crashes = collections.Counter()
    for folder in corpus.FOLDERS:
        paths = corpus.files(folder)
        if limit:
            paths = paths[:limit]
        counts = {'ours': collections.Counter(),
                  'nova': collections.Counter()}
        for path in paths:
            text = corpus.read(path)
            expected = xml.canonical(etree.fromstring(text))
            for label, func in (('ours', _our_round_trip),
                                ('nova', _nova_round_trip)):
                outcome, why = _outcome(func, folder, text, expected)
                counts[label][outcome] += 1
                if why:
                    crashes[(label, folder, why[:72])] += 1
        rows.append((folder, len(paths), counts))
    return rows, crashes


def report_fidelity(rows, crashes):
    row = '%-22s %5s | %-21s | %-21s'
    print(row % ('folder', 'files', 'ours exact/diff/crash',
                 'nova exact/diff/crash'))
    totals = {'ours': collections.Counter(), 'nova': collections.Counter()}
    total_files = 0
    for folder, count, counts in rows:
        total_files += count
        cells = []
        for label in ('ours', 'nova'):
            c = counts[label]
            totals[label].update(c)
            cells.append('%4d / %4d / %4d' % (
                c['exact'], c['different'], c['crashed']))
        print(row % (folder, count, cells[0], cells[1]))
    cells = ['%4d / %4d / %4d' % (t['exact'], t['different'], t['crashed'])
             for t in (totals['ours'], totals['nova'])]
    print(row % ('total', total_files, cells[0], cells[1]))
    if crashes:
        print('crashes by model and exception (files, all folders):')
        merged = collections.Counter()
        for (label, _, why), n in crashes.items():
            merged[(label, why)] += n
        for (label, why), n in sorted(merged.items(),
                                      key=lambda item: -item[1]):
            print('  %-4s %4d  %s' % (label, n, why))
    print('nova side: LibvirtConfigGuest for domains, LibvirtConfigCaps, '
          'LibvirtConfigDomainCaps and\nLibvirtConfigCPU. nova models a '
          'subset by design, has no format_dom for domain\ncapabilities, '
          'and its crashes come from to_xml() meeting values parse_dom '
          'left None.')
    return totals, total_files


# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 3 short rounds, 10 corpus files '
                             'per folder (figures are indicative only)')
    parser.add_argument('--rounds', type=int, default=None,
                        help='timing rounds per contender (default 7)')
    parser.add_argument('--batch-seconds', type=float, default=None,
                        help='target duration of one batch (default 0.2)')
    parser.add_argument('--clock', choices=sorted(CLOCKS), default='cpu',
                        help='cpu: process CPU time (default; ignores time '
                             'spent preempted), wall: perf_counter')
    parser.add_argument('--corpus-limit', type=int, default=None,
                        help='files per corpus folder (default: all)')
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    batch = args.batch_seconds or (0.02 if args.quick else 0.2)
    limit = args.corpus_limit or (10 if args.quick else None)
    clock = CLOCKS[args.clock]

    import lxml
    import nova
    print('xml_bench: python %s, lxml %s (libxml2 %s), nova %s, %d CPUs%s' % (
        sys.version.split()[0], lxml.__version__,
        '.'.join(map(str, etree.LIBXML_VERSION)),
        getattr(nova, '__version__', None) or benchlib.package_version('nova'),
        os.cpu_count() or 0, ', QUICK' if args.quick else ''))
    print('timing: %d interleaved rounds per contender, batches of ~%.2fs '
          '(%s time), gc off inside a batch; load average %s' % (
              rounds, batch, args.clock, benchlib.loadavg()))

    # 1. build + serialize
    print('\n== 1. build + serialize the typical guest (pretty-printed) ==')
    ours_text = build_serialize_ours()
    nova_text = build_serialize_nova()
    stats, only_ours, only_nova = compare_outputs(ours_text, nova_text)
    for label in ('ours', 'nova'):
        s = stats[label]
        print('%-4s output: %3d elements, %3d attributes, %2d devices, '
              '%5d chars' % (label, s['elements'], s['attributes'],
                             s['devices'], s['chars']))
    print('content only in ours: %s' % ('; '.join(only_ours) or 'none'))
    print('content only in nova: %s' % ('; '.join(only_nova) or 'none'))
    build = interleaved([('ours', build_serialize_ours, ()),
                         ('nova', build_serialize_nova, ())], rounds, batch,
                        clock)
    build_ratio, build_min_ratio = report_timing(
        build[0], build[1], TARGET_BUILD)

    # 2. parse + read
    print('\n== 2. parse + read what nova\'s parse_dom fills ==')
    text = ours_text
    ours_values = parse_read_ours(text)
    nova_values = parse_read_nova(text)
    agree = _normalize(ours_values) == _normalize(nova_values)
    print('input: typical guest, %d chars; %d disks, %d interfaces read; '
          'both readers return the same values: %s' % (
              len(text), len(ours_values[-2]), len(ours_values[-1]),
              'yes' if agree else 'NO'))
    if not agree:
        print('  ours: %r' % (_normalize(ours_values),))
        print('  nova: %r' % (_normalize(nova_values),))
    gaps = model_gaps()
    if gaps:
        print('not read: %d fields nova fills that our model has no typed '
              'field for' % len(gaps))
        for gap in gaps:
            print('  %-30s %s' % ('%s.%s' % gap[:2], gap[2]))
    compared, nova_failed, ours_failed, disagreements = reader_agreement(
        limit)
    print('same readers over the corpus domains: %d compared (%d nova could '
          'not parse), %d with a disagreement' % (
              compared, nova_failed,
              len({p for paths in disagreements.values() for p in paths})))
    for label, paths in sorted(disagreements.items(),
                               key=lambda item: (-len(item[1]), item[0])):
        print('  %-22s %4d files, e.g. %s' % (
            label, len(paths), os.path.relpath(paths[0], corpus.ROOT)))
        if label in KNOWN_CAUSES:
            print('  %-22s known cause: %s' % ('', KNOWN_CAUSES[label]))
    parse = interleaved([('ours', parse_read_ours, (text,)),
                         ('nova', parse_read_nova, (text,))], rounds, batch,
                        clock)
    parse_ratio, parse_min_ratio = report_timing(
        parse[0], parse[1], TARGET_PARSE)

    print('\n== 2b. parse + read only the core fields (informational) ==')
    core_agree = _normalize(parse_core_ours(text)) == _normalize(
        parse_core_nova(text))
    print('name, uuid, memory, vcpus, os type/machine, cpu mode; per disk '
          'source/target dev/bus/driver type/serial; per interface '
          'mac/model/source. Same values: %s' % (
              'yes' if core_agree else 'NO'))
    core = interleaved([('ours', parse_core_ours, (text,)),
                        ('nova', parse_core_nova, (text,))], rounds, batch,
                       clock)
    core_ratio, core_min_ratio = report_timing(
        core[0], core[1], TARGET_PARSE)

    # 3. fidelity
    print('\n== 3. round-trip fidelity over the libvirt %s corpus%s ==' % (
        os.path.basename(corpus.ROOT),
        ' (first %d files per folder)' % limit if limit else ''))
    rows, crashes = fidelity(limit)
    totals, total_files = report_fidelity(rows, crashes)

    # summary
    checks = [
        ('build+serialize', 'ratio %.3f (min-based %.3f)' % (
            build_ratio, build_min_ratio), '<= %.2f' % TARGET_BUILD,
         build_ratio <= TARGET_BUILD),
        ('parse+read', 'ratio %.3f (min-based %.3f)' % (
            parse_ratio, parse_min_ratio), '<= %.2f' % TARGET_PARSE,
         parse_ratio <= TARGET_PARSE and agree),
        ('parse+core read', 'ratio %.3f (min-based %.3f)' % (
            core_ratio, core_min_ratio), '(info)', None),
        ('round-trip (ours)', '%d/%d exact' % (
            totals['ours']['exact'], total_files), 'all exact',
         totals['ours']['exact'] == total_files),
        ('round-trip (nova)', '%d/%d exact, %d crashed' % (
            totals['nova']['exact'], total_files,
            totals['nova']['crashed']), 'reference', None),
    ]
    return benchlib.print_summary(
        'summary (ratios are ours/nova medians; < 1 = ours faster)',
        checks, (18, 36, 9))


if __name__ == '__main__':
    sys.exit(main())
