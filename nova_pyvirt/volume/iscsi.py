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

"""iSCSI volumes: a LUN of an iSCSI target, as cinder's iSCSI drivers hand it.

``connection_info['data']`` holds:

``target_portal``, ``target_iqn``, ``target_lun``
    where the LUN is: ``ip:port`` (``[v6addr]:port``; the port defaults to
    3260), the target's IQN and the LUN number;
``target_portals``, ``target_iqns``, ``target_luns``
    (optional) the same for every path to the LUN, when the backend offers
    several;
``auth_method``, ``auth_username``, ``auth_password``
    (optional) ``CHAP`` and its credentials.

Two transports, chosen with ``[pyvirt] iscsi_transport``:

``qemu``
    Nothing is logged in on the host. QEMU's own iSCSI client (libiscsi,
    the ``block-iscsi`` module of ``qemu-block-extra``) opens the LUN:
    ``<disk type='network'><source protocol='iscsi' name='IQN/LUN'>
    <host name='ip' port='port'/></source>``. QEMU's iSCSI client takes one
    portal and has no multipath (libvirt 9.0 accepts more ``<host>``
    elements but silently passes QEMU the first only), so when several
    portals are given :meth:`ISCSIVolumeDriver.connect` picks the first one
    that accepts a TCP connection (in ``target_portals`` order) and records
    it in ``connection_info['data']['pyvirt_iscsi_portal']``, which
    :meth:`~ISCSIVolumeDriver.disk_source` uses; a path that fails later is
    not replaced while the guest runs. With CHAP, ``connect`` stores the
    password in a private, persistent libvirt secret
    (:mod:`nova_pyvirt.volume.secrets`, usage type ``iscsi``, usage id
    ``nova-pyvirt:iscsi:<volume id>:<instance uuid>``), the disk names the
    secret in ``<auth>``, and ``disconnect`` undefines it. libvirt gives the
    password to QEMU when the disk is opened; it is never in the domain XML,
    on a command line or in a log. A wrong password shows when QEMU logs in,
    so it is the attach (or the guest start) that fails, with QEMU's
    "Authentication failure"; ``disconnect`` then removes the secret.
    Secrets need a libvirt daemon: the embedded QEMU driver has none, so
    CHAP volumes fail to connect there with a message saying so.

    QEMU logs in with its own initiator name,
    ``iqn.2008-11.org.linux-kvm:<domain uuid>``, not the host's: backends
    whose access lists name initiators (rather than addresses or CHAP
    users) do not let it in.
``kernel``
    The host logs in with its kernel initiator (open-iscsi) through
    os-brick's ``ISCSIConnector``, as nova's libvirt driver does, and the
    guest gets the block device os-brick found (``<disk type='block'>``);
    os-brick handles CHAP, and tries the portals in turn. The connector is
    made as nova makes it, with no executor of the driver's own, so its root
    commands run in os-brick's privsep daemon (``[privsep_osbrick]``). The
    project's test machines have no ``iscsi_tcp`` kernel module, so no
    kernel login can happen there: this transport is tested only at
    os-brick's boundary (its connector replaced by a test double), never
    end to end.

Extending: with ``kernel``, os-brick rescans the device and reports its new
size. With ``qemu``, the new size is read from the target with libiscsi's
``iscsi-readcapacity16`` (package ``libiscsi-bin``; the CHAP password goes
through its environment, never its arguments), and the driver then tells
QEMU (``virDomainBlockResize``), which reads the capacity again itself and
refuses to grow past it. Without ``iscsi-readcapacity16`` the size nova asked
for is returned and QEMU's own check is the only one.
"""

import collections
import os
import socket
import subprocess

from os_brick import exception as brick_exception
from os_brick import initiator
from os_brick.initiator import connector as brick_connector
from oslo_concurrency import processutils
from oslo_log import log as logging

from nova import exception
from nova import utils as nova_utils

from nova_pyvirt import volume
from nova_pyvirt.volume import secrets
from nova_pyvirt.xml import devices

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 3260
# Seconds to wait for a portal to accept a TCP connection when choosing
# among several.
PORTAL_PROBE_TIMEOUT = 5
# Where connect() records the portal QEMU uses.
PORTAL_KEY = 'pyvirt_iscsi_portal'
SECRET_USAGE_TYPE = 'iscsi'

READCAPACITY = 'iscsi-readcapacity16'
READCAPACITY_TIMEOUT = 60
# libiscsi reads the CHAP password from here when the URL has none.
LIBISCSI_PASSWORD_ENV = 'LIBISCSI_CHAP_PASSWORD'


class Target(collections.namedtuple('Target', 'portal host port iqn lun')):
    """One path to the LUN: portal (as given), host, port, IQN and LUN."""

    @property
    def source_name(self):
        return '%s/%s' % (self.iqn, self.lun)

    def url(self, username=None):
        """A libiscsi URL, with the user name but never a password."""
        host = '[%s]' % self.host if ':' in self.host else self.host
        user = '%s@' % username if username else ''
        return 'iscsi://%s%s:%d/%s/%s' % (user, host, self.port, self.iqn,
                                          self.lun)


def split_portal(portal):
    """``ip:port``, ``[v6addr]:port``, ``ip`` -> ``(host, port)``.

    :raises ValueError: when ``portal`` does not have one of those shapes.
    """
    portal = (portal or '').strip()
    if portal.startswith('['):
        host, sep, rest = portal[1:].partition(']')
        if not sep or rest == ':' or (rest and not rest.startswith(':')):
            raise ValueError(portal)
        port = rest[1:]
    elif portal.count(':') == 1:
        host, port = portal.split(':')
        if not port:
            raise ValueError(portal)
    elif ':' in portal:
        host, port = portal, ''      # a bare IPv6 address
    else:
        host, port = portal, ''
    if not host or any(c in host for c in '/@% \t'):
        raise ValueError(portal)
    if port == '':
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(portal)
    return host, int(port)


def _volume_name(connection_info):
    """What messages call the volume: its id, else its target."""
    data = connection_info.get('data') or {}
    return (connection_info.get('serial') or data.get('volume_id') or
            data.get('target_iqn') or 'unknown')


def _lun(value):
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        raise ValueError(value)
    if number < 0:
        raise ValueError(value)
    return number


@volume.register('iscsi')
class ISCSIVolumeDriver(volume.VolumeDriver):
    """A LUN reached by QEMU's iSCSI client or the host's initiator."""

    def __init__(self, conf, host):
        super(ISCSIVolumeDriver, self).__init__(conf, host)
        self._connector = None

    @property
    def transport(self):
        return self.conf.pyvirt.iscsi_transport

    # -- what connection_info says ---------------------------------------

    def _invalid(self, connection_info, reason):
        return exception.InvalidVolume(
            reason='iSCSI volume %s: %s' % (_volume_name(connection_info),
                                            reason))

    def targets(self, connection_info):
        """Every :class:`Target` of the volume, the main one first."""
        data = connection_info.get('data') or {}
        portal = data.get('target_portal')
        iqn = data.get('target_iqn')
        lun = data.get('target_lun')
        portals = data.get('target_portals') or []
        iqns = data.get('target_iqns') or []
        luns = data.get('target_luns') or []
        if portals and iqns and luns:
            if not len(portals) == len(iqns) == len(luns):
                raise self._invalid(
                    connection_info, 'target_portals, target_iqns and '
                    'target_luns differ in length')
            given = list(zip(portals, iqns, luns))
        elif portals:
            given = [(p, iqn, lun) for p in portals]
        else:
            given = []
        if portal is not None or not given:
            main = (portal, iqn, lun)
            given = [main] + [t for t in given if t != main]
        found = []
        for portal, iqn, lun in given:
            try:
                host, port = split_portal(portal)
            except ValueError:
                raise self._invalid(connection_info,
                                    'portal %r is not ip:port' % (portal,))
            if not iqn or not isinstance(iqn, str) or any(
                    c.isspace() or c == '/' for c in iqn):
                raise self._invalid(connection_info,
                                    'target IQN %r is not valid' % (iqn,))
            try:
                number = _lun(lun)
            except ValueError:
                raise self._invalid(connection_info,
                                    'LUN %r is not a number' % (lun,))
            target = Target(portal, host, port, iqn, number)
            if target not in found:
                found.append(target)
        return found

    def chap(self, connection_info):
        """``(username, password)`` for CHAP, or None without auth."""
        data = connection_info.get('data') or {}
        method = data.get('auth_method')
        if not method or str(method).lower() == 'none':
            return None
        if str(method).upper() != 'CHAP':
            raise self._invalid(connection_info,
                                'auth method %r is not supported; only CHAP '
                                'is' % (method,))
        username = data.get('auth_username')
        password = data.get('auth_password')
        if not username or not password:
            raise self._invalid(connection_info,
                                'CHAP needs auth_username and auth_password')
        return username, password

    def secret_usage_id(self, connection_info, instance):
        data = connection_info.get('data') or {}
        volume_id = connection_info.get('serial') or data.get('volume_id')
        if not volume_id:
            raise self._invalid(connection_info,
                                'connection_info names no volume id, which '
                                'the CHAP secret is named after')
        try:
            return secrets.volume_usage_id(SECRET_USAGE_TYPE, volume_id,
                                           instance.uuid)
        except ValueError:
            raise self._invalid(connection_info,
                                'its volume id %r cannot name a libvirt '
                                'secret' % (volume_id,))

    # -- the VolumeDriver interface --------------------------------------

    def connect(self, connection_info, instance):
        if self.transport == 'kernel':
            return self._kernel_connect(connection_info, instance)
        targets = self.targets(connection_info)
        credentials = self.chap(connection_info)
        target = self._choose(connection_info, targets)
        connection_info['data'][PORTAL_KEY] = target.portal
        if credentials is not None:
            username, password = credentials
            usage_id = self.secret_usage_id(connection_info, instance)
            secrets.create(
                self.host, SECRET_USAGE_TYPE, usage_id, password,
                description='CHAP password of user %s for iSCSI volume %s '
                            'of instance %s' % (
                                username, _volume_name(connection_info),
                                instance.uuid))
        LOG.debug('iSCSI volume %(vol)s: QEMU reaches %(name)s at %(portal)s'
                  '%(chap)s', {'vol': _volume_name(connection_info),
                               'name': target.source_name,
                               'portal': target.portal,
                               'chap': ' with CHAP' if credentials else ''},
                  instance=instance)

    def disk_source(self, connection_info, instance):
        if self.transport == 'kernel':
            path = (connection_info.get('data') or {}).get('device_path')
            if not path:
                raise self._invalid(connection_info,
                                    'it is not connected to this host (no '
                                    'device_path)')
            disk = devices.Disk(type='block', driver_type='raw')
            disk.source_path = path
            return disk
        target = self._chosen(connection_info)
        credentials = self.chap(connection_info)
        disk = devices.Disk(type='network', driver_type='raw')
        disk.source_protocol = 'iscsi'
        disk.source_name = target.source_name
        disk.source_hosts = [devices.DiskSourceHost(name=target.host,
                                                    port=str(target.port))]
        if credentials is not None:
            disk.source_auth = devices.DiskAuth(
                username=credentials[0], secret_type=SECRET_USAGE_TYPE,
                secret_usage=self.secret_usage_id(connection_info, instance))
        return disk

    def disconnect(self, connection_info, instance):
        if self.transport == 'kernel':
            return self._kernel_disconnect(connection_info, instance)
        method = (connection_info.get('data') or {}).get('auth_method')
        if not method or str(method).lower() == 'none':
            return
        usage_id = self.secret_usage_id(connection_info, instance)
        if secrets.remove(self.host, SECRET_USAGE_TYPE, usage_id):
            LOG.debug('iSCSI volume %(vol)s: removed its CHAP secret',
                      {'vol': _volume_name(connection_info)},
                      instance=instance)

    def extend(self, connection_info, instance, requested_size):
        if self.transport == 'kernel':
            return self._kernel_extend(connection_info, instance)
        target = self._chosen(connection_info)
        size = self._read_capacity(connection_info, target)
        if size is None:
            return requested_size
        if requested_size and size < requested_size:
            LOG.warning('iSCSI volume %(vol)s: the target reports '
                        '%(size)d bytes, less than the %(req)d requested; '
                        'the guest gets %(size)d',
                        {'vol': _volume_name(connection_info), 'size': size,
                         'req': requested_size}, instance=instance)
        return size

    # -- qemu transport --------------------------------------------------

    def _choose(self, connection_info, targets):
        """The first target whose portal accepts a TCP connection."""
        if len(targets) == 1:
            return targets[0]
        errors = []
        for target in targets:
            try:
                sock = socket.create_connection(
                    (target.host, target.port), timeout=PORTAL_PROBE_TIMEOUT)
            except OSError as exc:
                errors.append('%s: %s' % (target.portal, exc))
                continue
            sock.close()
            if errors:
                LOG.warning('iSCSI volume %(vol)s: using portal %(portal)s; '
                            'unreachable: %(errors)s',
                            {'vol': _volume_name(connection_info),
                             'portal': target.portal,
                             'errors': '; '.join(errors)})
            return target
        raise exception.VolumeAttachFailed(
            volume_id=_volume_name(connection_info),
            reason='no iSCSI portal of the volume is reachable: %s' %
            '; '.join(errors))

    def _chosen(self, connection_info):
        """The target :meth:`connect` chose, else the main one."""
        targets = self.targets(connection_info)
        chosen = (connection_info.get('data') or {}).get(PORTAL_KEY)
        for target in targets:
            if target.portal == chosen:
                return target
        return targets[0]

    def _read_capacity(self, connection_info, target):
        """The LUN's size in bytes as the target reports it, or None.

        None when libiscsi's tools are not installed.
        """
        credentials = self.chap(connection_info)
        env = dict(os.environ)
        env.pop(LIBISCSI_PASSWORD_ENV, None)
        username = None
        if credentials is not None:
            username = credentials[0]
            env[LIBISCSI_PASSWORD_ENV] = credentials[1]
        started = []
        try:
            out, _err = processutils.execute(
                READCAPACITY, '-s', target.url(username),
                env_variables=env, timeout=READCAPACITY_TIMEOUT,
                on_execute=started.append)
        except FileNotFoundError:
            LOG.warning('iSCSI volume %(vol)s: %(tool)s (libiscsi-bin) is '
                        'not installed; trusting the requested size',
                        {'vol': _volume_name(connection_info),
                         'tool': READCAPACITY})
            return None
        except subprocess.TimeoutExpired:
            for process in started:
                process.kill()
                process.wait()
            raise exception.VolumeExtendFailed(
                volume_id=_volume_name(connection_info),
                reason='%s %s did not answer within %d s' % (
                    READCAPACITY, target.url(username),
                    READCAPACITY_TIMEOUT))
        except processutils.ProcessExecutionError as exc:
            raise exception.VolumeExtendFailed(
                volume_id=_volume_name(connection_info),
                reason='reading the size of %s failed: %s' % (
                    target.url(username),
                    (exc.stderr or exc.stdout or '').strip() or exc))
        try:
            return int(out.strip())
        except ValueError:
            raise exception.VolumeExtendFailed(
                volume_id=_volume_name(connection_info),
                reason='%s printed %r, not a size' % (READCAPACITY,
                                                      out.strip()[:200]))

    # -- kernel transport ------------------------------------------------

    @property
    def connector(self):
        """os-brick's iSCSI connector (made on first use)."""
        if self._connector is None:
            self._connector = brick_connector.InitiatorConnector.factory(
                initiator.ISCSI, nova_utils.get_root_helper(),
                use_multipath=False)
        return self._connector

    def _kernel_connect(self, connection_info, instance):
        self.targets(connection_info)
        self.chap(connection_info)
        LOG.debug('iSCSI volume %s: logging in with os-brick',
                  _volume_name(connection_info), instance=instance)
        device_info = self.connector.connect_volume(connection_info['data'])
        path = (device_info or {}).get('path')
        if not path:
            raise exception.VolumeAttachFailed(
                volume_id=_volume_name(connection_info),
                reason='os-brick found no device for the LUN')
        connection_info['data']['device_path'] = path
        LOG.debug('iSCSI volume %(vol)s is %(path)s on this host',
                  {'vol': _volume_name(connection_info), 'path': path},
                  instance=instance)

    def _kernel_disconnect(self, connection_info, instance):
        try:
            self.connector.disconnect_volume(connection_info['data'], None)
        except brick_exception.VolumeDeviceNotFound as exc:
            # As nova does: the device is already gone.
            LOG.warning('iSCSI volume %(vol)s: no device to disconnect: '
                        '%(err)s', {'vol': _volume_name(connection_info),
                                    'err': exc}, instance=instance)
            return
        LOG.debug('iSCSI volume %s: logged out', _volume_name(
            connection_info), instance=instance)

    def _kernel_extend(self, connection_info, instance):
        new_size = self.connector.extend_volume(connection_info['data'])
        if new_size is None or new_size < 0:
            raise exception.VolumeExtendFailed(
                volume_id=_volume_name(connection_info),
                reason='os-brick could not find the new size of the device')
        return new_size
