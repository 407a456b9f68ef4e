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

"""The volumes of a live migration: as the destination connected them.

A volume is connected on each host by that host (its own kernel login and
device path, its own choice among several portals, its own CHAP secret),
so the guest's disk sources on the source are not necessarily right on
the destination. As nova's libvirt driver does:

* the destination, after connecting the volumes in ``pre_live_migration``,
  returns each volume's ``connection_info`` as it left it, in nova's
  ``LibvirtLiveMigrateBDMInfo`` list (``migrate_data.bdms``,
  :func:`destination_bdms`);
* the source gives libvirt the guest's XML with the ``<source>`` of every
  such volume's disk (found by its serial, the volume id) replaced by the
  source the volume driver describes for that ``connection_info``
  (:func:`destination_xml`); everything else in the XML stays as it is.

The source describes the destination's disks with its own volume drivers,
so both hosts need the same ``[pyvirt]`` volume options (e.g.
``iscsi_transport``), as they do for nova's driver.
"""

import copy

from oslo_log import log as logging

from nova import exception
from nova.objects import migrate_data as migrate_data_obj
from nova.virt import driver as nova_driver

from nova_pyvirt.volume import attachment
from nova_pyvirt.xml import domain as xml_domain

LOG = logging.getLogger(__name__)

# Parts of a volume disk that describe where its data is; all else (the
# target, serial, cache, limits, address) is the guest's and stays.
_SOURCE_TAGS = ('source', 'auth')


def destination_bdms(block_device_info):
    """nova's ``LibvirtLiveMigrateBDMInfo`` of each connected volume."""
    found = []
    for bdm in nova_driver.block_device_info_get_mapping(block_device_info):
        info = migrate_data_obj.LibvirtLiveMigrateBDMInfo()
        info.serial = attachment.volume_id(bdm['connection_info'])
        info.connection_info = bdm['connection_info']
        if bdm.get('disk_bus'):
            info.bus = bdm['disk_bus']
        if bdm.get('mount_device'):
            info.dev = bdm['mount_device'].rpartition('/')[2]
        info.type = bdm.get('device_type') or 'disk'
        info.boot_index = bdm.get('boot_index')
        found.append(info)
    return found


def destination_xml(guest_xml, bdms, disk_source):
    """``guest_xml`` with each volume's disk source the destination's.

    :param bdms: the destination's ``LibvirtLiveMigrateBDMInfo`` list.
    :param disk_source: ``connection_info`` -> the volume's source, a
        :class:`~nova_pyvirt.xml.devices.Disk` (the volume driver's
        ``disk_source``).
    :raises exception.MigrationError: when a volume of ``bdms`` has no
        disk in the guest: the destination connected a volume the guest
        does not use, and the guest must not move without it.
    """
    domain = xml_domain.Domain.from_xml(guest_xml)
    by_serial = {info.serial: info for info in bdms}
    replaced = set()
    for disk in domain.disks:
        info = by_serial.get(disk.serial)
        if info is None:
            continue
        _replace_source(disk, disk_source(info.connection_info))
        replaced.add(info.serial)
    missing = sorted(set(by_serial) - replaced)
    if missing:
        raise exception.MigrationError(
            reason='the destination connected volume %s, but the guest has '
                   'no disk with that serial' % ', '.join(missing))
    LOG.debug('live migration: the destination gets its own sources for '
              'volumes %s', ', '.join(sorted(replaced)))
    return domain.to_xml()


def _replace_source(disk, new):
    """Give ``disk`` the type, ``<source>`` and ``<auth>`` of ``new``."""
    element, wanted = disk.element, new.element
    element.set('type', wanted.get('type'))
    for tag in _SOURCE_TAGS:
        old = element.find(tag)
        replacement = wanted.find(tag)
        if replacement is not None:
            replacement = copy.deepcopy(replacement)
            if old is not None:
                element.replace(old, replacement)
            elif tag == 'auth':
                element.find('source').addprevious(replacement)
            else:
                element.insert(_source_position(element), replacement)
        elif old is not None:
            element.remove(old)


def _source_position(element):
    """Where ``<source>`` goes: right after ``<driver>``, as libvirt has it."""
    driver = element.find('driver')
    return element.index(driver) + 1 if driver is not None else 0
