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

"""libvirt secrets holding the credentials of volumes.

A guest disk that needs a credential (an iSCSI CHAP password) names a
libvirt secret in its ``<auth>`` element by *usage*: a usage type
(``iscsi``) and a usage id unique within that type. libvirt hands the
value to QEMU when the disk is opened, at guest start or hot-plug, so the
credential appears neither in the domain XML nor on QEMU's command line.

Secrets made here are persistent (``ephemeral='no'``: they survive a
libvirtd restart, which a stopped guest that is started later needs) and
private (``private='yes'``: libvirt never gives the value back to a
client). Their XML is built with :class:`nova_pyvirt.xml.Secret`.

The value is passed to ``virSecretSetValue`` and nowhere else: it is never
logged, at any level, and never put in an exception message.

libvirt's embedded QEMU driver (``qemu:///embed``) and its test driver have
no secret driver; :func:`create` then fails with
:class:`SecretsUnavailable`, while :func:`lookup` and :func:`remove` find
nothing, since nothing can have been stored there.
"""

import libvirt
from oslo_concurrency import lockutils
from oslo_log import log as logging

from nova import exception
from nova.i18n import _

from nova_pyvirt.xml import secret as xml_secret

LOG = logging.getLogger(__name__)

# libvirt's usage type names, their virSecretUsageType numbers, and the
# field of nova_pyvirt.xml.secret.Secret that holds the usage id.
USAGE_TYPES = {
    'iscsi': (libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, 'usage_target'),
    'volume': (libvirt.VIR_SECRET_USAGE_TYPE_VOLUME, 'usage_volume'),
    'ceph': (libvirt.VIR_SECRET_USAGE_TYPE_CEPH, 'usage_name'),
    'tls': (libvirt.VIR_SECRET_USAGE_TYPE_TLS, 'usage_name'),
    'vtpm': (libvirt.VIR_SECRET_USAGE_TYPE_VTPM, 'usage_name'),
}

# Every usage id made by this driver starts with this, so an operator can
# tell them from other secrets in ``virsh secret-list``.
USAGE_PREFIX = 'nova-pyvirt'


class SecretsUnavailable(exception.NovaException):
    msg_fmt = _("libvirt at %(uri)s cannot store secrets (%(reason)s); "
                "volumes with credentials need a libvirt daemon, such as "
                "qemu:///system")


class SecretError(exception.NovaException):
    msg_fmt = _("libvirt secret for %(usage_type)s usage %(usage_id)s: "
                "%(reason)s")


def volume_usage_id(kind, volume_id, instance_uuid):
    """The usage id of the secret of one volume attachment.

    Made from the volume id and the instance, so that each attachment of a
    multi-attach volume has its own secret and detaching one leaves the
    others' secrets in place: ``nova-pyvirt:iscsi:<volume>:<instance>``
    (libvirt's schema allows no ``/`` in a disk's secret usage).
    """
    usage_id = '%s:%s:%s:%s' % (USAGE_PREFIX, kind, volume_id,
                                instance_uuid)
    if '/' in usage_id or '\n' in usage_id:
        raise ValueError('no secret usage id can be made of %r' % usage_id)
    return usage_id


def _usage(usage_type):
    try:
        return USAGE_TYPES[usage_type]
    except KeyError:
        raise ValueError('unknown secret usage type %r; expected one of %s'
                         % (usage_type, ', '.join(sorted(USAGE_TYPES))))


def _lock(usage_type, usage_id):
    return lockutils.lock('pyvirt-secret-%s-%s' % (usage_type, usage_id))


def _unsupported(exc):
    return exc.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT,
                                    libvirt.VIR_ERR_NO_CONNECT)


def secret_xml(usage_type, usage_id, description=None):
    """The ``<secret>`` document for a new persistent, private secret."""
    _number, field = _usage(usage_type)
    secret = xml_secret.Secret(ephemeral=False, private=True)
    if description:
        secret.description = description
    secret.usage_type = usage_type
    setattr(secret, field, usage_id)
    return secret.to_xml()


def lookup(host, usage_type, usage_id):
    """The ``virSecret`` with this usage, or None.

    :param host: a :class:`nova_pyvirt.hypervisor.host.Host`.
    """
    number, _field = _usage(usage_type)
    conn = host.get_connection()
    try:
        return conn.secretLookupByUsage(number, usage_id)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
            return None
        if _unsupported(exc):
            # No secret driver: nothing can have been stored.
            return None
        raise


def create(host, usage_type, usage_id, value, description=None):
    """Store ``value`` in the secret with this usage; returns its UUID.

    Defines the secret if it does not exist yet, then sets its value, so
    calling it again (with a new value, say) is safe. A secret this call
    defined is undefined again if its value cannot be set.

    :param value: ``str`` (stored UTF-8 encoded) or ``bytes``; never logged.
    :raises SecretsUnavailable: libvirt has no secret driver.
    :raises SecretError: libvirt refused the secret or its value.
    """
    _usage(usage_type)
    if isinstance(value, str):
        value = value.encode('utf-8')
    if not value:
        raise SecretError(usage_type=usage_type, usage_id=usage_id,
                          reason=_('the value is empty'))
    with _lock(usage_type, usage_id):
        secret = lookup(host, usage_type, usage_id)
        defined = False
        if secret is None:
            conn = host.get_connection()
            try:
                secret = conn.secretDefineXML(
                    secret_xml(usage_type, usage_id, description), 0)
            except libvirt.libvirtError as exc:
                if _unsupported(exc):
                    raise SecretsUnavailable(uri=host.uri,
                                             reason=exc.get_error_message())
                raise SecretError(usage_type=usage_type, usage_id=usage_id,
                                  reason=exc.get_error_message())
            defined = True
        uuid = secret.UUIDString()
        try:
            secret.setValue(value, 0)
        except libvirt.libvirtError as exc:
            if defined:
                _undefine(secret, usage_type, usage_id)
            raise SecretError(usage_type=usage_type, usage_id=usage_id,
                              reason=_('setting its value failed: %s') %
                              exc.get_error_message())
    LOG.debug('%(action)s libvirt secret %(uuid)s for %(type)s usage '
              '%(usage)s', {'action': 'Defined' if defined else 'Updated',
                            'uuid': uuid, 'type': usage_type,
                            'usage': usage_id})
    return uuid


def _undefine(secret, usage_type, usage_id):
    try:
        secret.undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
            return False
        raise SecretError(usage_type=usage_type, usage_id=usage_id,
                          reason=_('undefining it failed: %s') %
                          exc.get_error_message())
    return True


def remove(host, usage_type, usage_id):
    """Undefine the secret with this usage; True if there was one.

    Idempotent: a missing secret (or a libvirt without secrets) is fine.
    """
    with _lock(usage_type, usage_id):
        secret = lookup(host, usage_type, usage_id)
        if secret is None:
            return False
        uuid = secret.UUIDString()
        removed = _undefine(secret, usage_type, usage_id)
    if removed:
        LOG.debug('Undefined libvirt secret %(uuid)s of %(type)s usage '
                  '%(usage)s', {'uuid': uuid, 'type': usage_type,
                                'usage': usage_id})
    return removed
