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

"""Documents built from scratch with the typed API, shared by tests and bench.

``rich_domain()`` uses every modelled device kind; ``typical_domain()`` is
the 12-device guest nova's driver would write for a small instance.
"""

from nova_pyvirt import xml
from nova_pyvirt.xml import capabilities as caps_mod  # noqa: F401
from nova_pyvirt.xml import cpudef as cpu_mod
from nova_pyvirt.xml import devices as dev
from nova_pyvirt.xml import domain as dom_mod
from nova_pyvirt.xml import secret as secret_mod
from nova_pyvirt.xml import storage_pool

UUID = 'c7a5fdbd-cdaf-9455-926a-d65c16db1809'


def _pci(slot):
    return dev.Address(type='pci', domain='0x0000', bus='0x00',
                       slot='0x%02x' % slot, function='0x0')


def rich_domain(domain_type='kvm'):
    dom = xml.Domain(
        type=domain_type, name='rich', uuid=UUID, title='A rich guest',
        description='Every modelled element',
        memory_kib=524288, current_memory_kib=524288, vcpu=4,
        vcpu_placement='static', on_poweroff='destroy', on_reboot='restart',
        on_crash='destroy', pm_suspend_to_mem=False,
        pm_suspend_to_disk=False)
    dom.nova_instance = dom_mod.NovaInstance(
        package_version='34.0.0', name='rich-vm',
        creation_time='2026-11-21 07:00:00',
        flavor=dom_mod.NovaFlavor(name='m1.small', memory=512, disk=1,
                                  swap=0, ephemeral=0, vcpus=4),
        owner=dom_mod.NovaOwner(user_uuid='u1', user_name='demo',
                                project_uuid='p1', project_name='demo'),
        root_type='image', root_uuid='i1')
    dom.memtune = dom_mod.MemTune(hard_limit=1048576, soft_limit=786432)
    dom.memory_backing = dom_mod.MemoryBacking(
        hugepages=[dom_mod.HugePage(size=2048, unit='KiB')], locked=True)
    dom.cputune = dom_mod.CPUTune(
        shares=1024, period=100000, quota=50000,
        vcpupins=[dom_mod.VCPUPin(vcpu=0, cpuset='0')],
        emulatorpin_cpuset='0')
    dom.sysinfo = dom_mod.Sysinfo(type='smbios', system=[
        dom_mod.SysinfoEntry(name='manufacturer', value='OpenStack'),
        dom_mod.SysinfoEntry(name='product', value='OpenStack Nova'),
        dom_mod.SysinfoEntry(name='serial', value=UUID)])
    dom.os = dom_mod.OS(type='hvm', arch='x86_64', machine='pc',
                        kernel='/boot/vmlinuz', initrd='/boot/initrd.img',
                        cmdline='console=ttyS0', smbios_mode='sysinfo',
                        bootmenu_enable=True, bootmenu_timeout=3000,
                        bios_useserial=True, bios_reboot_timeout=0)
    dom.features = dom_mod.Features(
        acpi=True, apic=True, pae=True, pmu=False, vmcoreinfo=True,
        kvm_hidden=True, hyperv=dom_mod.HyperV(
            relaxed=True, vapic=True, spinlocks=True,
            spinlocks_retries=8191, vpindex=True, runtime=True, synic=True,
            stimer=True, reset=True, vendor_id=True,
            vendor_id_value='1234567890ab', frequencies=True,
            reenlightenment=True, tlbflush=True, ipi=True))
    dom.cpu = cpu_mod.CPU(
        mode='custom', match='exact', check='partial', model='Haswell',
        model_fallback='allow', vendor='Intel', topology_sockets=1,
        topology_dies=1, topology_cores=2, topology_threads=2)
    dom.cpu.add_feature('pcid', 'require')
    dom.cpu.add_feature('vmx', 'disable')
    dom.cpu.numa_cells.append(cpu_mod.NUMACell(id=0, cpus='0-3',
                                               memory_kib=524288,
                                               unit='KiB'))
    dom.clock = dom_mod.Clock(offset='utc', timers=[
        dom_mod.Timer(name='pit', tickpolicy='delay'),
        dom_mod.Timer(name='rtc', tickpolicy='catchup'),
        dom_mod.Timer(name='hpet', present=False)])
    dom.emulator = '/usr/bin/qemu-system-x86_64'
    add = dom.devices.append
    add(dev.Disk(type='file', device='disk', driver_name='qemu',
                 driver_type='qcow2', driver_cache='none',
                 driver_discard='unmap', source_file='/var/lib/disk',
                 target_dev='vda', target_bus='virtio', serial='root-disk',
                 boot_order=1, iotune=dev.IOTune(total_bytes_sec=10485760,
                                                 read_iops_sec=400)))
    add(dev.Disk(type='block', device='disk', driver_name='qemu',
                 driver_type='raw', source_dev='/dev/vg/lv',
                 target_dev='vdb', target_bus='virtio', serial='vol-block',
                 shareable=True))
    add(dev.Disk(type='network', device='disk', driver_name='qemu',
                 driver_type='raw', source_protocol='iscsi',
                 source_name='iqn.2010-10.org.openstack:volume-1/1',
                 source_hosts=[dev.DiskSourceHost(name='127.0.0.1',
                                                  port='3260')],
                 auth=dev.DiskAuth(username='chap', secret_type='iscsi',
                                   secret_usage='vol-net'),
                 target_dev='vdc', target_bus='virtio', serial='vol-net'))
    add(dev.Disk(type='volume', device='disk', driver_name='qemu',
                 driver_type='raw', source_pool='pool', source_volume='vol',
                 target_dev='vdd', target_bus='virtio', serial='vol-pool'))
    add(dev.Disk(type='file', device='cdrom', driver_name='qemu',
                 driver_type='raw', source_file='/var/lib/config.iso',
                 target_dev='sda', target_bus='sata', readonly=True))
    add(dev.Controller(type='usb', index=0, model='piix3-uhci'))
    add(dev.Controller(type='scsi', index=0, model='virtio-scsi'))
    add(dev.Interface(type='bridge', mac_address='52:54:00:00:00:01',
                      source_bridge='br0', target_dev='tap0',
                      model='virtio', driver_name='vhost', driver_queues=2,
                      mtu=1450, bandwidth_inbound_average=1000,
                      bandwidth_inbound_peak=2000,
                      bandwidth_inbound_burst=1024,
                      bandwidth_outbound_average=500,
                      filterref='clean-traffic',
                      filterref_parameters=[
                          dev.FilterParameter(name='IP', value='10.0.0.1')]))
    add(dev.Interface(type='network', mac_address='52:54:00:00:00:02',
                      source_network='default', model='e1000'))
    add(dev.Interface(type='ethernet', mac_address='52:54:00:00:00:03',
                      target_dev='tap3', model='virtio'))
    add(dev.Interface(type='direct', mac_address='52:54:00:00:00:04',
                      source_dev='eth0', source_mode='passthrough',
                      model='virtio'))
    add(dev.Interface(type='vhostuser', mac_address='52:54:00:00:00:05',
                      source_type='unix', source_path='/run/vhu.sock',
                      source_mode='client', model='virtio'))
    add(dev.Serial(type='file', source_path='/var/lib/console.log',
                   target_port=0))
    add(dev.Serial(type='pty', log_file='/var/lib/pty.log',
                   log_append='off', target_port=1))
    add(dev.Serial(type='tcp', source_mode='bind', source_host='127.0.0.1',
                   source_service='4555', protocol_type='raw',
                   target_port=2))
    add(dev.Console(type='pty', target_type='virtio', target_port=0))
    add(dev.Channel(type='unix', source_mode='bind',
                    source_path='/var/lib/qga.sock', target_type='virtio',
                    target_name='org.qemu.guest_agent.0'))
    add(dev.Input(type='tablet', bus='usb'))
    add(dev.TPM(model='tpm-tis', backend_type='passthrough',
                backend_device_path='/dev/tpm0'))
    add(dev.Graphics(type='vnc', autoport=True, listen='127.0.0.1',
                     keymap='en-us', passwd='secret', listens=[
                         dev.GraphicsListen(type='address',
                                            address='127.0.0.1')]))
    add(dev.Graphics(type='spice', autoport=True, listens=[
        dev.GraphicsListen(type='address', address='127.0.0.1')]))
    add(dev.Video(model='virtio', heads=1, primary=True))
    add(dev.HostdevPCI(mode='subsystem', type='pci', managed=True,
                       source_address=dev.Address(
                           domain='0x0000', bus='0x06', slot='0x12',
                           function='0x5')))
    add(dev.Watchdog(model='i6300esb', action='reset'))
    add(dev.MemBalloon(model='virtio', stats_period=10,
                       address=_pci(0x09)))
    add(dev.RNG(model='virtio', rate_bytes=1024, rate_period=1000,
                backend_model='random', backend_path='/dev/urandom'))
    return dom


def typical_domain():
    """The 12-device guest a small nova instance gets."""
    dom = xml.Domain(type='kvm', name='instance-00000001', uuid=UUID,
                     memory_kib=2097152, current_memory_kib=2097152, vcpu=2)
    dom.nova_instance = dom_mod.NovaInstance(
        package_version='34.0.0', name='vm1',
        creation_time='2026-11-21 07:00:00',
        flavor=dom_mod.NovaFlavor(name='m1.small', memory=2048, disk=20,
                                  swap=0, ephemeral=0, vcpus=2),
        owner=dom_mod.NovaOwner(user_uuid='u1', user_name='demo',
                                project_uuid='p1', project_name='demo'),
        root_type='image', root_uuid='i1')
    dom.sysinfo = dom_mod.Sysinfo(type='smbios', system=[
        dom_mod.SysinfoEntry(name='manufacturer', value='OpenStack'),
        dom_mod.SysinfoEntry(name='serial', value=UUID)])
    dom.os = dom_mod.OS(type='hvm', machine='pc-i440fx-7.2',
                        boot_devices=['hd'], smbios_mode='sysinfo')
    dom.features = dom_mod.Features(acpi=True, apic=True)
    dom.cpu = cpu_mod.CPU(mode='host-model', match='exact',
                          topology_sockets=2, topology_cores=1,
                          topology_threads=1)
    dom.clock = dom_mod.Clock(offset='utc', timers=[
        dom_mod.Timer(name='pit', tickpolicy='delay'),
        dom_mod.Timer(name='rtc', tickpolicy='catchup'),
        dom_mod.Timer(name='hpet', present=False)])
    add = dom.devices.append
    add(dev.Disk(type='file', device='disk', driver_name='qemu',
                 driver_type='qcow2', driver_cache='none',
                 source_file='/var/lib/nova/instances/x/disk',
                 target_dev='vda', target_bus='virtio'))
    add(dev.Disk(type='file', device='disk', driver_name='qemu',
                 driver_type='qcow2', driver_cache='none',
                 source_file='/var/lib/nova/instances/x/disk.eph0',
                 target_dev='vdb', target_bus='virtio'))
    add(dev.Disk(type='network', device='disk', driver_name='qemu',
                 driver_type='raw', driver_cache='none',
                 source_protocol='iscsi', source_name='iqn.x:vol/1',
                 source_hosts=[dev.DiskSourceHost(name='127.0.0.1',
                                                  port='3260')],
                 target_dev='vdc', target_bus='virtio', serial='vol-1'))
    add(dev.Disk(type='file', device='cdrom', driver_name='qemu',
                 driver_type='raw', source_file='/x/disk.config',
                 target_dev='hda', target_bus='ide', readonly=True))
    add(dev.Interface(type='bridge', mac_address='fa:16:3e:00:00:01',
                      source_bridge='br-int', target_dev='tap1',
                      model='virtio', mtu=1450))
    add(dev.Serial(type='file', source_path='/x/console.log',
                   target_port=0))
    add(dev.Serial(type='pty', target_port=1))
    add(dev.Input(type='tablet', bus='usb'))
    add(dev.Graphics(type='vnc', autoport=True, listen='127.0.0.1'))
    add(dev.Video(model='virtio'))
    add(dev.MemBalloon(model='virtio', stats_period=10))
    add(dev.RNG(model='virtio', backend_model='random',
                backend_path='/dev/urandom'))
    return dom


def domain_capabilities():
    enum = caps_mod.CapsEnum
    return caps_mod.DomainCapabilities(
        path='/usr/bin/qemu-system-x86_64', domain_type='kvm',
        machine='pc-i440fx-7.2', arch='x86_64', vcpu_max=255,
        iothreads_supported=True,
        os=caps_mod.CapsOS(
            supported=True,
            enums=[enum(name='firmware', values=['efi'])],
            loader=caps_mod.CapsLoader(
                supported=True, values=['/usr/share/OVMF/OVMF_CODE.fd'],
                enums=[enum(name='type', values=['rom', 'pflash']),
                       enum(name='readonly', values=['yes', 'no']),
                       enum(name='secure', values=['no'])])),
        cpu_modes=[
            caps_mod.CapsCPUMode(name='host-passthrough', supported=True),
            caps_mod.CapsCPUMode(name='maximum', supported=True),
            caps_mod.CapsCPUMode(
                name='host-model', supported=True, models=[
                    caps_mod.CapsCPUModel(name='Skylake-Client-IBRS',
                                          fallback='forbid')],
                vendor='Intel'),
            caps_mod.CapsCPUMode(name='custom', supported=True, models=[
                caps_mod.CapsCPUModel(name='qemu64', usable='yes',
                                      vendor='unknown'),
                caps_mod.CapsCPUModel(name='Haswell', usable='no',
                                      vendor='Intel')])],
        devices=[
            caps_mod.CapsDevice.with_tag(
                'disk', supported=True,
                enums=[enum(name='diskDevice', values=['disk', 'cdrom']),
                       enum(name='bus', values=['ide', 'scsi', 'virtio'])]),
            caps_mod.CapsDevice.with_tag(
                'video', supported=True,
                enums=[enum(name='modelType', values=['vga', 'virtio'])])],
        features=[caps_mod.CapsDevice.with_tag('vmcoreinfo', supported=True)])


def secret():
    return secret_mod.Secret(ephemeral=False, private=True, uuid=UUID,
                             description='CHAP secret for volume 1',
                             usage_type='iscsi', usage_target='vol-1')


def pools():
    return [
        storage_pool.StoragePool(type='dir', name='images', uuid=UUID,
                                 target_path='/var/lib/images'),
        storage_pool.StoragePool(type='logical', name='vg', source_name='vg',
                                 source_devices=[storage_pool.SourceDevice(
                                     path='/dev/loop0')],
                                 target_path='/dev/vg'),
        storage_pool.StoragePool(type='netfs', name='nfs',
                                 source_hosts=[storage_pool.SourceHost(
                                     name='127.0.0.1')],
                                 source_dir='/export', source_format='nfs',
                                 target_path='/mnt/nfs'),
        storage_pool.StoragePool(type='iscsi', name='iscsi',
                                 source_hosts=[storage_pool.SourceHost(
                                     name='127.0.0.1', port=3260)],
                                 source_devices=[storage_pool.SourceDevice(
                                     path='iqn.2010-10.org.openstack:t1')],
                                 target_path='/dev/disk/by-path'),
        storage_pool.StoragePool(type='iscsi-direct', name='direct',
                                 source_hosts=[storage_pool.SourceHost(
                                     name='127.0.0.1')],
                                 source_devices=[storage_pool.SourceDevice(
                                     path='iqn.2010-10.org.openstack:t1')],
                                 source_initiator_iqn=(
                                     'iqn.2026-11.org.x:host')),
    ]


def volume():
    return storage_pool.StorageVolume(
        type='file', name='disk.qcow2', capacity=10 * 2 ** 30,
        allocation=0, target_path='/var/lib/images/disk.qcow2',
        target_format='qcow2', target_compat='1.1',
        backing_path='/var/lib/images/base.raw', backing_format='raw')
