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

"""Opening libvirt connections: openAuth, the event loop, embedded roots.

``open_connection`` uses ``virConnectOpenAuth`` with the credential types a
non-interactive service can answer, so libvirt's own lookup (``auth.conf``,
SASL, TLS certificates in the standard PKI paths) does the work; nothing is
prompted for and no secret passes through this process's logs.
"""

import os
import sys
import threading

import libvirt
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

CREDENTIAL_TYPES = [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_ECHOPROMPT,
                    libvirt.VIR_CRED_REALM, libvirt.VIR_CRED_PASSPHRASE,
                    libvirt.VIR_CRED_NOECHOPROMPT, libvirt.VIR_CRED_EXTERNAL]

# QEMU runs as root inside the embedding process, so there is no ownership
# to remember and restore (remembering it only produces XATTR warnings).
EMBED_QEMU_CONF = '''# Written by nova-pyvirt for an embedded QEMU driver.
stdio_handler = "file"
user = "root"
group = "root"
remember_owner = 0
'''

_loop_lock = threading.Lock()
_loop_thread = None


def _native_threading():
    """``threading`` as it was before eventlet monkey-patched it, if it did.

    A green thread would run the blocking event loop on the hub's own OS
    thread and stall every other green thread.
    """
    eventlet = sys.modules.get('eventlet')
    if eventlet is not None and eventlet.patcher.is_monkey_patched('thread'):
        return eventlet.patcher.original('threading')
    return threading


def start_event_loop():
    """Register libvirt's default event loop and run it in a native thread.

    Idempotent. It must run before the first connection is opened: the
    embedded QEMU driver and lifecycle events both depend on it.
    """
    global _loop_thread
    if _loop_thread is not None:
        return _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return _loop_thread
        libvirt.virEventRegisterDefaultImpl()

        def run():
            while True:
                libvirt.virEventRunDefaultImpl()

        _loop_thread = _native_threading().Thread(
            target=run, name='libvirt-events', daemon=True)
        _loop_thread.start()
        return _loop_thread


def embedded_uri(root):
    """The ``qemu:///embed`` URI of an embedded root."""
    return 'qemu:///embed?root=%s' % os.path.abspath(root)


def prepare_embedded_root(root, settings=None):
    """Create an embedded QEMU root and return its ``qemu:///embed`` URI.

    :param settings: extra ``qemu.conf`` settings, ``{name: value}`` (ints
        or strings), for example a VNC port range of its own.
    """
    etc = os.path.join(root, 'etc')
    os.makedirs(etc, exist_ok=True)
    # Packaging creates these for the system daemon; an embedded root needs
    # them too, or managed save, snapshots and dumps fail.
    for name in ('save', 'snapshot', 'dump'):
        os.makedirs(os.path.join(root, 'lib', 'qemu', name), exist_ok=True)
    conf_path = os.path.join(etc, 'qemu.conf')
    wanted = EMBED_QEMU_CONF + ''.join(
        '%s = %s\n' % (name, value if isinstance(value, int) else
                       '"%s"' % value)
        for name, value in sorted((settings or {}).items()))
    try:
        with open(conf_path) as handle:
            current = handle.read()
    except FileNotFoundError:
        current = None
    if current != wanted:
        with open(conf_path, 'w') as handle:
            handle.write(wanted)
    return embedded_uri(root)


def _no_interaction(credentials, user_data):
    # Returning 0 without filling results lets libvirt rely on what it found
    # itself (auth.conf, certificates); -1 would abort the connection.
    for credential in credentials:
        LOG.debug('libvirt asked for credential type %s (%s); relying on '
                  "libvirt's own configuration", credential[0], credential[1])
    return 0


class _EventFanout(object):
    """Domain event callbacks of many users on one connection.

    libvirt-python accepts one registration per event type and connection
    ("event callback already tracked"), so each event type is registered
    once and every subscriber is called from that one callback.
    """

    def __init__(self, conn):
        self.conn = conn
        self.lock = threading.Lock()
        self.next_id = 1
        self.subscribers = {}     # subscription id -> (event id, dom, cb, ..)
        self.registrations = {}   # event id -> libvirt callback id

    def register(self, user, dom, event_id, callback, opaque):
        with self.lock:
            sub_id = self.next_id
            self.next_id += 1
            self.subscribers[sub_id] = (event_id, dom, callback, opaque, user)
            if event_id not in self.registrations:
                self.registrations[event_id] = \
                    self.conn.domainEventRegisterAny(
                        None, event_id, self._dispatch, event_id)
        return sub_id

    def deregister(self, sub_id):
        with self.lock:
            event_id = self.subscribers.pop(sub_id)[0]
            if not any(s[0] == event_id
                       for s in self.subscribers.values()):
                self.conn.domainEventDeregisterAny(
                    self.registrations.pop(event_id))
        return 0

    def _dispatch(self, conn, dom, *args):
        # libvirt passes the registration's opaque (the event id) last.
        event_id = args[-1]
        for entry in list(self.subscribers.values()):
            sub_event, sub_dom, callback, opaque, user = entry
            if sub_event != event_id:
                continue
            if sub_dom is not None and \
                    sub_dom.UUIDString() != dom.UUIDString():
                continue
            callback(user, dom, *(args[:-1] + (opaque,)))


class SharedEmbeddedConnection(object):
    """A process's one connection to an embedded root, shared by its users.

    Every ``qemu:///embed`` open registers libvirt's QEMU driver in the
    process again, and libvirt refuses after about fifteen ("Too many
    drivers"), so an embedded root is opened once and its users share the
    connection: ``close()`` leaves it open for the others, domain events
    are fanned out to every user, and close callbacks are accepted and
    never called (an embedded driver lives as long as the process).
    """

    def __init__(self, conn, fanout):
        self._conn = conn
        self._fanout = fanout

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def domainEventRegisterAny(self, dom, event_id, callback, opaque):
        return self._fanout.register(self, dom, event_id, callback, opaque)

    def domainEventDeregisterAny(self, callback_id):
        return self._fanout.deregister(callback_id)

    def registerCloseCallback(self, callback, opaque):
        return 0

    def unregisterCloseCallback(self):
        return 0

    def close(self):
        return 0


_embedded_lock = threading.Lock()
_embedded = {}     # uri -> (virConnect, _EventFanout)


def is_embedded(uri):
    return uri.startswith('qemu:///embed')


def open_connection(uri, read_only=False):
    """Open ``uri`` through ``virConnectOpenAuth``.

    Embedded roots are opened once per process (see
    :class:`SharedEmbeddedConnection`); ``read_only`` does not apply to
    them, since the embedding process runs the driver itself.
    """
    start_event_loop()
    if not is_embedded(uri):
        return _open(uri, read_only)
    with _embedded_lock:
        if uri not in _embedded:
            conn = _open(uri, False)
            _embedded[uri] = (conn, _EventFanout(conn))
        return SharedEmbeddedConnection(*_embedded[uri])


def _open(uri, read_only):
    flags = libvirt.VIR_CONNECT_RO if read_only else 0
    auth = [CREDENTIAL_TYPES, _no_interaction, None]
    return libvirt.openAuth(uri, auth, flags)


def default_uri(virt_type):
    """The URI used when ``[pyvirt] connection_uri`` is empty."""
    return {'kvm': 'qemu:///system', 'qemu': 'qemu:///system',
            'test': 'test:///default'}[virt_type]
