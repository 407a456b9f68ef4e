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

"""Guest design: a :class:`GuestRequest` and host facts in, a domain out.

This is the driver's counterpart of nova's ``_get_guest_config``, written as
one short function per section so each policy can be read on its own.  It
does no I/O and calls no libvirt API.
"""

from oslo_utils import timeutils

from nova import version

from nova_pyvirt.design import clock
from nova_pyvirt.design import cpu
from nova_pyvirt.design import disks
from nova_pyvirt.design import machine
from nova_pyvirt.design import peripherals
from nova_pyvirt.design import request as req
from nova_pyvirt.design import validation
from nova_pyvirt.xml import devices as dev
from nova_pyvirt.xml import domain as dom_xml

SYSINFO_MANUFACTURER = 'OpenStack Foundation'
SYSINFO_PRODUCT = 'OpenStack Nova'

# The guest's architecture, as design and its callers read it.
guest_arch = machine.guest_arch


def nova_metadata(instance, flavor, image_meta):
    meta = dom_xml.NovaInstance(
        package_version=version.version_string_with_package(),
        name=instance.display_name or instance.name,
        creation_time=timeutils.utcnow().strftime('%Y-%m-%d %H:%M:%S'))
    meta.flavor = dom_xml.NovaFlavor(
        name=flavor.name, memory=flavor.memory_mb, disk=flavor.root_gb,
        swap=flavor.swap, ephemeral=flavor.ephemeral_gb, vcpus=flavor.vcpus)
    meta.owner = dom_xml.NovaOwner(
        user_uuid=instance.user_id, user_name=instance.user_id,
        project_uuid=instance.project_id, project_name=instance.project_id)
    image_id = getattr(image_meta, 'id', None) if image_meta.obj_attr_is_set(
        'id') else None
    if image_id:
        meta.root_type = 'image'
        meta.root_uuid = image_id
    return meta


def sysinfo(instance):
    entry = dom_xml.SysinfoEntry
    return dom_xml.Sysinfo(type='smbios', system=[
        entry(name='manufacturer', value=SYSINFO_MANUFACTURER),
        entry(name='product', value=SYSINFO_PRODUCT),
        entry(name='version', value=version.version_string()),
        entry(name='serial', value=instance.uuid),
        entry(name='uuid', value=instance.uuid),
        entry(name='family', value='Virtual Machine')])


def boot_menu(flavor, image_meta):
    spec = (flavor.extra_specs or {}).get('hw:boot_menu')
    if spec is not None:
        return str(spec).lower() in ('1', 'true', 'yes')
    return bool(image_meta.properties.get('hw_boot_menu', False))


def paravirtual_os(request, arch, machine_type, guest_os_type):
    """``<os>`` of a guest that is not ``hvm``: it boots a given kernel.

    Such guests have no firmware, so no boot order, boot menu or SMBIOS
    mode, which libvirt's schema only allows for ``hvm``.
    """
    os_ = dom_xml.OS(type=guest_os_type, arch=arch, machine=machine_type)
    os_.kernel = request.kernel_path
    if request.ramdisk_path:
        os_.initrd = request.ramdisk_path
    cmdline = request.image_meta.properties.get('os_command_line')
    os_.cmdline = cmdline or 'root=/dev/xvda console=hvc0'
    return os_


def guest_os(request, arch, machine_type, domain_caps, disk_devices,
             guest_os_type='hvm'):
    if guest_os_type != 'hvm':
        return paravirtual_os(request, arch, machine_type, guest_os_type)
    os_ = dom_xml.OS(type=guest_os_type, arch=arch, machine=machine_type,
                     smbios_mode='sysinfo')
    os_.firmware = machine.firmware(domain_caps, request.image_meta)
    if request.kernel_path:
        os_.kernel = request.kernel_path
        if request.ramdisk_path:
            os_.initrd = request.ramdisk_path
        cmdline = request.image_meta.properties.get('os_command_line')
        os_.cmdline = cmdline or 'root=/dev/vda console=ttyS0'
    elif not any(d.boot_order for d in disk_devices):
        os_.boot_devices = ['hd']
    if boot_menu(request.flavor, request.image_meta):
        os_.bootmenu_enable = True
    return os_


def design_guest(request, conf, host, persisted_machine_type=None,
                 virt_type=None):
    """Design the domain for ``request``; see :class:`request.Design`.

    ``virt_type`` is the host's (``[pyvirt] virt_type`` when not given).
    Every input is validated first (:mod:`validation`): an input the host
    cannot honour raises :class:`~nova_pyvirt.exception.InvalidGuestInput`.
    """
    instance, flavor, image_meta = (request.instance, request.flavor,
                                    request.image_meta)
    # A persisted machine type is a guest that ran before: it keeps
    # starting even with extra specs or image properties design does not
    # build (logged); spawn and resize refuse them before this.
    checked = validation.validate(
        request, conf, host, persisted_machine_type, virt_type,
        existing_guest=persisted_machine_type is not None)
    virt_type, arch, machine_type = (checked.virt_type, checked.arch,
                                     checked.machine_type)
    guest_os_type, domain_caps = checked.os_type, checked.domain_caps
    windows = clock.is_windows(instance, image_meta)

    dom = dom_xml.Domain(type=virt_type, name=instance.name,
                         uuid=instance.uuid,
                         memory_kib=flavor.memory_mb * 1024,
                         vcpu=flavor.vcpus)
    dom.nova_instance = nova_metadata(instance, flavor, image_meta)
    dom.sysinfo = sysinfo(instance)
    disk_bus, disk_devices = disks.design_disks(request, domain_caps, conf)
    dom.os = guest_os(request, arch, machine_type, domain_caps,
                      disk_devices, guest_os_type)
    dom.features = clock.guest_features(arch, windows)
    guest_cpu = cpu.guest_cpu(conf, domain_caps, flavor, image_meta,
                              virt_type)
    if guest_cpu is not None:
        dom.cpu = guest_cpu
    dom.clock = clock.guest_clock(arch, windows, image_meta)
    dom.on_poweroff = 'destroy'
    dom.on_reboot = 'restart'
    dom.on_crash = 'destroy'

    add = dom.devices.append
    for disk in disk_devices:
        add(disk)
    if any(d.target_bus == 'scsi' for d in disk_devices):
        add(dev.Controller(type='scsi', index=0, model='virtio-scsi'))
    for nic in peripherals.interfaces(conf, flavor, image_meta,
                                      request.network_info, domain_caps):
        add(nic)
    add(peripherals.serial_console(request.console_log))
    graphics = peripherals.graphics(conf)
    optional = [
        peripherals.guest_agent(image_meta),
        peripherals.pointer(conf, image_meta, graphics is not None,
                            virt_type),
        graphics,
        peripherals.video(domain_caps, image_meta, graphics is not None),
        peripherals.memballoon(conf),
        peripherals.rng(flavor, image_meta),
    ]
    for device in optional:
        if device is not None:
            add(device)
    return req.Design(domain=dom, machine_type=machine_type,
                      disk_bus=disk_bus)
