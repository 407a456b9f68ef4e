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

"""The ``<domain>`` document: a guest definition.

Top-level sections (os, features, clock, tuning, sysinfo, nova's metadata)
are declared here; the ``<cpu>`` element is modelled in :mod:`cpudef` and the
devices in :mod:`devices`.
"""

from nova_pyvirt.xml import cpudef
from nova_pyvirt.xml import devices as dev
from nova_pyvirt.xml.fields import Child
from nova_pyvirt.xml.fields import Children
from nova_pyvirt.xml.fields import Enum
from nova_pyvirt.xml.fields import Field
from nova_pyvirt.xml.fields import Flag
from nova_pyvirt.xml.fields import INT
from nova_pyvirt.xml.fields import ONOFF
from nova_pyvirt.xml.fields import Scaled
from nova_pyvirt.xml.fields import Values
from nova_pyvirt.xml.fields import XMLObject
from nova_pyvirt.xml.fields import YESNO


class NovaOwner(XMLObject):
    TAG = 'nova:owner'
    user_uuid = Field('./nova:user/@uuid')
    user_name = Field('./nova:user')
    project_uuid = Field('./nova:project/@uuid')
    project_name = Field('./nova:project')


class NovaFlavor(XMLObject):
    TAG = 'nova:flavor'
    name = Field('@name')
    memory = Field('./nova:memory', INT)
    disk = Field('./nova:disk', INT)
    swap = Field('./nova:swap', INT)
    ephemeral = Field('./nova:ephemeral', INT)
    vcpus = Field('./nova:vcpus', INT)


class NovaInstance(XMLObject):
    """What nova records about the instance inside the domain."""

    TAG = 'nova:instance'
    package_version = Field('./nova:package/@version')
    name = Field('./nova:name')
    creation_time = Field('./nova:creationTime')
    flavor = Child('./nova:flavor', NovaFlavor)
    owner = Child('./nova:owner', NovaOwner)
    root_type = Field('./nova:root/@type')
    root_uuid = Field('./nova:root/@uuid')


class OS(XMLObject):
    TAG = 'os'
    firmware = Field('@firmware', Enum('bios', 'efi'))
    type = Field('./type')
    arch = Field('./type/@arch')
    machine = Field('./type/@machine')
    firmware_features = Values('./firmware/feature/@name')
    firmware_secure_boot = Field(
        "./firmware/feature[@name='secure-boot']/@enabled", YESNO)
    firmware_enrolled_keys = Field(
        "./firmware/feature[@name='enrolled-keys']/@enabled", YESNO)
    loader = Field('./loader')
    loader_readonly = Field('./loader/@readonly', YESNO)
    loader_secure = Field('./loader/@secure', YESNO)
    loader_type = Field('./loader/@type', Enum('rom', 'pflash'))
    loader_stateless = Field('./loader/@stateless', YESNO)
    nvram = Field('./nvram')
    nvram_template = Field('./nvram/@template')
    init = Field('./init')
    kernel = Field('./kernel')
    initrd = Field('./initrd')
    cmdline = Field('./cmdline')
    dtb = Field('./dtb')
    root = Field('./root')
    boot_devices = Values('./boot/@dev')
    bootmenu_enable = Field('./bootmenu/@enable', YESNO)
    bootmenu_timeout = Field('./bootmenu/@timeout', INT)
    smbios_mode = Field('./smbios/@mode', Enum('emulate', 'host', 'sysinfo'))
    bios_useserial = Field('./bios/@useserial', YESNO)
    bios_reboot_timeout = Field('./bios/@rebootTimeout', INT)


class HyperV(XMLObject):
    """Hyper-V enlightenments; each feature is ``<name state='on|off'/>``."""

    TAG = 'hyperv'
    mode = Field('@mode', Enum('custom', 'passthrough'))
    relaxed = Field('./relaxed/@state', ONOFF)
    vapic = Field('./vapic/@state', ONOFF)
    spinlocks = Field('./spinlocks/@state', ONOFF)
    vpindex = Field('./vpindex/@state', ONOFF)
    runtime = Field('./runtime/@state', ONOFF)
    synic = Field('./synic/@state', ONOFF)
    stimer = Field('./stimer/@state', ONOFF)
    reset = Field('./reset/@state', ONOFF)
    vendor_id = Field('./vendor_id/@state', ONOFF)
    frequencies = Field('./frequencies/@state', ONOFF)
    reenlightenment = Field('./reenlightenment/@state', ONOFF)
    tlbflush = Field('./tlbflush/@state', ONOFF)
    ipi = Field('./ipi/@state', ONOFF)
    evmcs = Field('./evmcs/@state', ONOFF)
    avic = Field('./avic/@state', ONOFF)
    spinlocks_retries = Field('./spinlocks/@retries', INT)
    stimer_direct = Field('./stimer/direct/@state', ONOFF)
    vendor_id_value = Field('./vendor_id/@value')


class Features(XMLObject):
    TAG = 'features'
    acpi = Flag('./acpi')
    apic = Flag('./apic')
    apic_eoi = Field('./apic/@eoi', ONOFF)
    pae = Flag('./pae')
    hap = Flag('./hap')
    viridian = Flag('./viridian')
    privnet = Flag('./privnet')
    hyperv = Child('./hyperv', HyperV)
    kvm_hidden = Field('./kvm/hidden/@state', ONOFF)
    kvm_hint_dedicated = Field('./kvm/hint-dedicated/@state', ONOFF)
    kvm_poll_control = Field('./kvm/poll-control/@state', ONOFF)
    kvm_pv_ipi = Field('./kvm/pv-ipi/@state', ONOFF)
    pvspinlock = Field('./pvspinlock/@state', ONOFF)
    pmu = Field('./pmu/@state', ONOFF)
    vmport = Field('./vmport/@state', ONOFF)
    gic_version = Field('./gic/@version')
    smm = Flag('./smm', doc='<smm> is present (with or without state=)')
    smm_state = Field('./smm/@state', ONOFF)
    ioapic_driver = Field('./ioapic/@driver')
    vmcoreinfo = Field('./vmcoreinfo/@state', ONOFF)

    @property
    def smm_enabled(self):
        """Whether SMM is on: ``<smm/>`` without a state means on."""
        return self.smm and self.smm_state is not False


class Timer(XMLObject):
    TAG = 'timer'
    name = Field('@name', Enum('platform', 'pit', 'rtc', 'hpet', 'tsc',
                               'kvmclock', 'hypervclock', 'armvtimer'))
    present = Field('@present', YESNO)
    tickpolicy = Field('@tickpolicy', Enum('delay', 'catchup', 'merge',
                                           'discard'))
    track = Field('@track', Enum('boot', 'guest', 'wall', 'realtime'))
    frequency = Field('@frequency', INT)
    mode = Field('@mode')
    catchup_threshold = Field('./catchup/@threshold', INT)
    catchup_slew = Field('./catchup/@slew', INT)
    catchup_limit = Field('./catchup/@limit', INT)


class Clock(XMLObject):
    TAG = 'clock'
    offset = Field('@offset', Enum('utc', 'localtime', 'timezone',
                                   'variable', 'absolute'))
    adjustment = Field('@adjustment')
    timezone = Field('@timezone')
    basis = Field('@basis')
    timers = Children('./timer', Timer)

    def timer(self, name):
        """The timer called ``name``, or None."""
        return next((t for t in self.timers if t.name == name), None)


class VCPUPin(XMLObject):
    TAG = 'vcpupin'
    vcpu = Field('@vcpu', INT)
    cpuset = Field('@cpuset')


class CPUTune(XMLObject):
    TAG = 'cputune'
    shares = Field('./shares', INT)
    period = Field('./period', INT)
    quota = Field('./quota', INT)
    vcpupins = Children('./vcpupin', VCPUPin)
    emulatorpin_cpuset = Field('./emulatorpin/@cpuset')


class MemTune(XMLObject):
    TAG = 'memtune'
    hard_limit = Scaled('./hard_limit')
    soft_limit = Scaled('./soft_limit')
    swap_hard_limit = Scaled('./swap_hard_limit')
    min_guarantee = Scaled('./min_guarantee')


class HugePage(XMLObject):
    TAG = 'page'
    size = Field('@size', INT)
    unit = Field('@unit')
    nodeset = Field('@nodeset')


class MemoryBacking(XMLObject):
    TAG = 'memoryBacking'
    hugepages = Children('./hugepages/page', HugePage)
    nosharepages = Flag('./nosharepages')
    locked = Flag('./locked')
    source_type = Field('./source/@type', Enum('file', 'anonymous',
                                               'memfd'))
    access_mode = Field('./access/@mode', Enum('shared', 'private'))
    allocation_mode = Field('./allocation/@mode', Enum('immediate',
                                                       'ondemand'))
    discard = Flag('./discard')


class NUMAMemNode(XMLObject):
    TAG = 'memnode'
    cellid = Field('@cellid', INT)
    mode = Field('@mode')
    nodeset = Field('@nodeset')


class PerfEvent(XMLObject):
    TAG = 'event'
    name = Field('@name')
    enabled = Field('@enabled', YESNO)


class SysinfoEntry(XMLObject):
    TAG = 'entry'
    name = Field('@name')
    value = Field('.')


class Sysinfo(XMLObject):
    TAG = 'sysinfo'
    type = Field('@type', Enum('smbios', 'fwcfg'))
    bios = Children('./bios/entry', SysinfoEntry)
    system = Children('./system/entry', SysinfoEntry)
    base_board = Children('./baseBoard/entry', SysinfoEntry)
    chassis = Children('./chassis/entry', SysinfoEntry)


def _devices(cls):
    """The ``<devices>`` children of one device class."""
    return Children('./devices/' + cls.TAG, cls)


class Domain(XMLObject):
    TAG = 'domain'
    # Where libvirt puts the elements, and the devices, we do not model.
    ORDER = {
        'vcpu': ('vcpus',), 'iothreads': ('iothreadids',),
        'sysinfo': ('bootloader', 'bootloader_args'), 'os': ('idmap',),
        'seclabel': ('keywrap', 'launchSecurity'),
        'devices/controller': ('lease',), 'devices/interface': ('smartcard',),
        'devices/sound': ('audio',),
        'devices/hostdev': ('redirdev', 'redirfilter', 'hub'),
        'devices/panic': ('shmem', 'memory', 'iommu'),
        'devices/vsock': ('crypto',),
    }

    type = Field('@type')
    id = Field('@id', INT)
    name = Field('./name')
    uuid = Field('./uuid')
    genid = Field('./genid')
    title = Field('./title')
    description = Field('./description')
    nova_instance = Child('./metadata/nova:instance', NovaInstance)
    max_memory_kib = Scaled('./maxMemory')
    max_memory_slots = Field('./maxMemory/@slots', INT)
    memory_kib = Scaled('./memory')
    current_memory_kib = Scaled('./currentMemory')
    blkiotune_weight = Field('./blkiotune/weight', INT)
    memtune = Child('./memtune', MemTune)
    memory_backing = Child('./memoryBacking', MemoryBacking)
    vcpu = Field('./vcpu', INT)
    vcpu_placement = Field('./vcpu/@placement', Enum('static', 'auto'))
    vcpu_cpuset = Field('./vcpu/@cpuset')
    vcpu_current = Field('./vcpu/@current', INT)
    iothreads = Field('./iothreads', INT)
    cputune = Child('./cputune', CPUTune)
    numatune_memory_mode = Field('./numatune/memory/@mode')
    numatune_memory_nodeset = Field('./numatune/memory/@nodeset')
    numatune_memnodes = Children('./numatune/memnode', NUMAMemNode)
    resource_partition = Field('./resource/partition')
    sysinfo = Child('./sysinfo', Sysinfo)
    os = Child('./os', OS)
    features = Child('./features', Features)
    cpu = Child('./cpu', cpudef.CPU)
    clock = Child('./clock', Clock)
    on_poweroff = Field('./on_poweroff')
    on_reboot = Field('./on_reboot')
    on_crash = Field('./on_crash')
    on_lockfailure = Field('./on_lockfailure')
    pm_suspend_to_mem = Field('./pm/suspend-to-mem/@enabled', YESNO)
    pm_suspend_to_disk = Field('./pm/suspend-to-disk/@enabled', YESNO)
    perf_events = Children('./perf/event', PerfEvent)
    emulator = Field('./devices/emulator')
    devices = Children('./devices/*', dev.device_for)
    disks = _devices(dev.Disk)
    controllers = _devices(dev.Controller)
    filesystems = _devices(dev.Filesystem)
    interfaces = _devices(dev.Interface)
    serials = _devices(dev.Serial)
    parallels = _devices(dev.Parallel)
    consoles = _devices(dev.Console)
    channels = _devices(dev.Channel)
    inputs = _devices(dev.Input)
    tpms = _devices(dev.TPM)
    graphics = _devices(dev.Graphics)
    sounds = _devices(dev.Sound)
    videos = _devices(dev.Video)
    hostdevs = _devices(dev.HostdevPCI)
    watchdogs = _devices(dev.Watchdog)
    memballoons = _devices(dev.MemBalloon)
    rngs = _devices(dev.RNG)
    panics = _devices(dev.Panic)
    vsocks = _devices(dev.Vsock)
    seclabel_type = Field('./seclabel/@type')
