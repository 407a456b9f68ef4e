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

"""The config drive: nova's first-boot data on a disk the guest mounts.

nova writes its content (``nova.api.metadata.base.InstanceMetadata`` and
``nova.virt.configdrive.ConfigDriveBuilder``, the same code its metadata
API serves from): the ``openstack/`` tree (``meta_data.json`` with uuid,
name, hostname, public keys, injected files and the admin password;
``user_data``; ``network_data.json`` from the instance's ports;
``vendor_data*.json``) and the ``ec2/`` tree, labelled ``config-2``.

This module decides whether an instance gets one (nova's
``configdrive.required_by``: the request, ``[DEFAULT] force_config_drive``
for a new instance, ``img_config_drive=mandatory``), where it lives
(``disk.config`` in the instance directory whatever the image backend, as
in nova's libvirt driver: it is small and read-only) and how the guest
sees it: iso9660 as a read-only cdrom, vfat as a disk
(``[DEFAULT] config_drive_format``). It is recorded with the instance's
other local disks, so a reboot attaches it again and a cold migration
carries it; deleting the instance directory deletes it.

iso9660 drives are made by nova's builder (``genisoimage``). vfat drives
hold the same files, from the same nova metadata, but are filled with
``mcopy`` (mtools) instead of nova's loop mount: that needs neither root
(a privsep mount) nor a vfat file system in the host's kernel, which
compute hosts built as minimal as the kernels here lack.
"""

import os
import tempfile

from oslo_concurrency import processutils
from oslo_log import log as logging

from nova.api.metadata import base as instance_metadata
from nova import conf as nova_conf
import nova.privsep.fs
from nova.virt import configdrive

from nova_pyvirt.design import request
from nova_pyvirt import exception

LOG = logging.getLogger(__name__)
CONF = nova_conf.CONF

NAME = 'disk.config'
# What each format is made with, and the option that says so.
BUILDERS = {'iso9660': ('[DEFAULT] mkisofs_cmd', lambda: CONF.mkisofs_cmd),
            'vfat': ('[DEFAULT] config_drive_format = vfat',
                     lambda: 'mkfs.vfat and mcopy')}


def required(instance):
    return bool(configdrive.required_by(instance))


def check_injection(instance, injected_files):
    """Refuse files to inject when no config drive will carry them."""
    if injected_files and not required(instance):
        raise exception.FileInjectionNotSupported(
            instance_uuid=instance.uuid,
            reason='%d file(s) to inject, but the instance has no config '
            'drive and this driver does not write into disk images; boot '
            'with a config drive (or set [DEFAULT] force_config_drive)'
            % len(injected_files))


def disk(path, conf_format):
    """The :class:`~request.LocalDisk` of the drive at ``path``."""
    return request.LocalDisk(
        name=NAME, path=path, format='raw',
        device='cdrom' if conf_format == 'iso9660' else 'disk')


def planned(instance, files):
    """The drive :func:`create` would build, or None (nothing is built)."""
    if not required(instance):
        return None
    return disk(files.file(NAME), CONF.config_drive_format)


def create(instance, files, injected_files, admin_password, network_info):
    """Build the drive in the instance directory if the instance needs one.

    Returns its :class:`~request.LocalDisk`, or None. A failure leaves no
    partial drive behind and raises :class:`ConfigDriveBuildFailed`.
    """
    if not required(instance):
        return None
    drive_format = CONF.config_drive_format
    path = files.file(NAME)
    extra_md = {'admin_pass': admin_password} if admin_password else {}
    LOG.info('building the %s config drive of %s', drive_format,
             instance.uuid)
    try:
        metadata = instance_metadata.InstanceMetadata(
            instance, content=injected_files, extra_md=extra_md,
            network_info=network_info)
        if drive_format == 'vfat':
            _make_vfat(metadata, path)
        else:
            with configdrive.ConfigDriveBuilder(
                    instance_md=metadata) as builder:
                builder.make_drive(path)
    except (processutils.ProcessExecutionError, OSError) as exc:
        _remove_partial(path)
        option, command = BUILDERS[drive_format]
        raise exception.ConfigDriveBuildFailed(
            instance_uuid=instance.uuid, format=drive_format,
            command=command(), option=option, reason=_reason(exc))
    except Exception:
        _remove_partial(path)
        raise
    return disk(path, drive_format)


def _make_vfat(metadata, path):
    """nova's files on a vfat file system of nova's size, without mounting."""
    with tempfile.TemporaryDirectory(prefix='config-drive-') as tree:
        for name, data in metadata.metadata_for_config_drive():
            target = os.path.join(tree, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, 'wb') as handle:
                handle.write(data.encode('utf-8') if isinstance(data, str)
                             else data)
        with open(path, 'wb') as handle:
            handle.truncate(configdrive.CONFIGDRIVESIZE_BYTES)
        nova.privsep.fs.unprivileged_mkfs('vfat', path,
                                          label='config-2')
        # -s: recursively; -Q: stop at the first error; the tree's top
        # entries go to the file system's root.
        processutils.execute('mcopy', '-s', '-Q', '-i', path,
                             *[os.path.join(tree, entry)
                               for entry in sorted(os.listdir(tree))],
                             '::/')


def _reason(exc):
    if isinstance(exc, processutils.ProcessExecutionError):
        detail = (exc.stderr or exc.stdout or '').strip()
        return 'exit status %s%s' % (exc.exit_code,
                                     ': ' + detail if detail else '')
    return str(exc)


def _remove_partial(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
