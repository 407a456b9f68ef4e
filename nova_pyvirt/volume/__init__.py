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

"""Volume drivers: a cinder ``connection_info`` in, a disk source out.

Each driver is keyed by ``connection_info['driver_volume_type']``.  It
connects the volume to the host (a kernel login or mount, or nothing when
QEMU's own client reaches the storage), describes the disk's *source*
(guest-facing attributes such as target, serial and cache are added by guest
design), and undoes the connection.  Nothing here logs a credential.
"""

import abc

from nova import exception


class VolumeDriver(object, metaclass=abc.ABCMeta):
    """One kind of volume connection."""

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host

    @abc.abstractmethod
    def connect(self, connection_info, instance):
        """Make the volume reachable from this host; idempotent.

        May record what it did in ``connection_info['data']`` (e.g. a
        ``device_path``) so that :meth:`disk_source` and :meth:`disconnect`
        can use it.
        """

    @abc.abstractmethod
    def disk_source(self, connection_info, instance):
        """The volume's disk source, as a :class:`Disk` of the XML model.

        Only ``type``, ``source_*``, hosts, auth and ``driver_type`` are
        set; guest design adds target, serial, cache and limits.
        """

    @abc.abstractmethod
    def disconnect(self, connection_info, instance):
        """Undo :meth:`connect`; idempotent."""

    def extend(self, connection_info, instance, requested_size):
        """Rescan after the backend grew the volume; returns the new size."""
        raise exception.ExtendVolumeNotSupported()


_DRIVERS = {}


def register(volume_type):
    def decorator(cls):
        _DRIVERS[volume_type] = cls
        return cls
    return decorator


def driver_for(conf, host, connection_info):
    """The driver for ``connection_info``; fails naming the volume type."""
    # Importing the modules registers their drivers.
    from nova_pyvirt.volume import iscsi  # noqa: F401
    from nova_pyvirt.volume import nfs  # noqa: F401
    volume_type = connection_info.get('driver_volume_type')
    try:
        return _DRIVERS[volume_type](conf, host)
    except KeyError:
        raise exception.VolumeDriverNotFound(driver_type=volume_type)
