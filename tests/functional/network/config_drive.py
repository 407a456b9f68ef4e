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

"""A config drive made by nova's own builder, for the test host to attach.

The drive's content is nova's: :class:`nova.api.metadata.base.
InstanceMetadata` of the instance and its ports, written by
:class:`nova.virt.configdrive.ConfigDriveBuilder` (iso9660 through
``genisoimage``; for vfat see :func:`_make_vfat_with_mtools`). Two things
nova-compute would read from its database and Neutron are given here
instead: the instance's block device mappings (none) and its security
groups (none).

STAND-IN, to be replaced by the driver's own config drive: the driver
does not make one yet, so :func:`attached_on_define` adds the drive to the
guest's persistent definition right after the driver defines it and before
it is launched (``attachDeviceFlags(..., VIR_DOMAIN_AFFECT_CONFIG)``), as
nova's libvirt driver places it: an iso9660 drive is a read-only CD-ROM
(IDE on ``pc``, SATA on ``q35``), a vfat drive a disk on virtio.
"""

import base64
import contextlib
import os
import subprocess
from unittest import mock

import libvirt
from lxml import etree

from nova.api.metadata import base as instance_metadata
from nova import conf as nova_conf
from nova import objects
from nova.virt import configdrive

CONF = nova_conf.CONF
# nova's vfat drive size (nova.virt.configdrive.CONFIGDRIVESIZE_BYTES).
VFAT_SIZE = configdrive.CONFIGDRIVESIZE_BYTES


def prepare_instance(instance, hostname, key_name, key_data, user_data):
    """Give ``instance`` what the API would have: key pair, user data.

    Also the fields :class:`InstanceMetadata` would otherwise lazy-load
    from the database (EC2 ids, device names, launch index...).
    """
    instance.hostname = hostname
    instance.key_name = key_name
    instance.key_data = key_data
    instance.keypairs = objects.KeyPairList(objects=[objects.KeyPair(
        name=key_name, public_key=key_data, type='ssh',
        user_id=instance.user_id)])
    instance.user_data = base64.b64encode(user_data.encode()).decode()
    # instance.config_drive stays unset: a driver that makes config drives
    # itself would add a second one.
    instance.ec2_ids = objects.EC2Ids(
        instance_id='i-%08x' % instance.id, ami_id='ami-%08x' % instance.id,
        kernel_id=None, ramdisk_id=None)
    instance.device_metadata = None
    instance.numa_topology = None
    instance.metadata = {}
    instance.availability_zone = None
    instance.root_device_name = '/dev/vda'
    instance.default_ephemeral_device = None
    instance.default_swap_device = None
    instance.launch_index = 0
    instance.reservation_id = 'r-%08x' % instance.id


def make_drive(instance, network_info, path, drive_format):
    """Write the instance's config drive to ``path`` with nova's builder."""
    with mock.patch.object(instance, 'get_bdms',
                           return_value=objects.BlockDeviceMappingList()), \
            mock.patch('nova.network.security_group_api.'
                       'get_instance_security_groups', return_value=[]):
        metadata = instance_metadata.InstanceMetadata(
            instance, content=[], extra_md={}, network_info=network_info)
    CONF.set_override('config_drive_format', drive_format)
    try:
        with configdrive.ConfigDriveBuilder(instance_md=metadata) as builder:
            if drive_format == 'vfat':
                builder._make_vfat = _make_vfat_with_mtools
            builder.make_drive(path)
    finally:
        CONF.clear_override('config_drive_format')
    return path


def _make_vfat_with_mtools(path, tmpdir):
    """nova's vfat drive, filled with mtools instead of a loop mount.

    nova's builder mounts the new file system (as root, through privsep)
    to copy the files in, which needs vfat in the host's kernel: the test
    machines have none. The file system is the same (nova's size, made by
    mkfs.vfat with the label config-2, the files nova wrote), and mcopy
    copies the files in without mounting.
    """
    with open(path, 'wb') as handle:
        handle.truncate(VFAT_SIZE)
    subprocess.run(['mkfs.vfat', '-n', 'config-2', path], check=True,
                   capture_output=True)
    env = dict(os.environ, MTOOLS_SKIP_CHECK='1')
    for name in sorted(os.listdir(tmpdir)):
        subprocess.run(['mcopy', '-s', '-i', path,
                        os.path.join(tmpdir, name), '::/'],
                       check=True, capture_output=True, env=env)


def disk_xml(path, drive_format, machine):
    """The ``<disk>`` nova's libvirt driver would give the config drive."""
    disk = etree.Element('disk', type='file')
    etree.SubElement(disk, 'driver', name='qemu', type='raw')
    etree.SubElement(disk, 'source', file=path)
    if drive_format == 'iso9660':
        disk.set('device', 'cdrom')
        bus = 'sata' if 'q35' in machine else 'ide'
        etree.SubElement(disk, 'target', dev='sdz' if bus == 'sata'
                         else 'hdd', bus=bus)
    else:
        disk.set('device', 'disk')
        etree.SubElement(disk, 'target', dev='vdz', bus='virtio')
    etree.SubElement(disk, 'readonly')
    return etree.tostring(disk, encoding='unicode')


@contextlib.contextmanager
def attached_on_define(host, path, drive_format):
    """While active, every domain ``host`` defines gets the drive added.

    The stand-in for the driver's own config drive (see the module's
    docstring); ``host`` is the driver's :class:`~nova_pyvirt.hypervisor.
    host.Host`.
    """
    define = host.define_domain

    def define_with_config_drive(xml_text):
        domain = define(xml_text)
        os_type = etree.fromstring(domain.XMLDesc()).find('os/type')
        machine = os_type.get('machine', '') if os_type is not None else ''
        domain.attachDeviceFlags(disk_xml(path, drive_format, machine),
                                 libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        return domain

    with mock.patch.object(host, 'define_domain', define_with_config_drive):
        yield
