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

``open_connection`` uses ``virConnectOpenAuth`` and leaves authentication to
libvirt's own lookup: SASL user names and passwords from ``auth.conf``,
TLS client certificates from ``pkipath=`` or the default PKI paths, ssh
keys of the service user. Nothing is prompted for, and no secret passes
through this process: the credential callback answers nothing, it only
notes which credentials libvirt could not find itself.

``auth_scheme`` and ``describe_failure`` turn a failed open into words an
operator can act on (which scheme, which files libvirt read or missed),
and ``redact_uri`` keeps a password out of a URI before it is shown.
"""

import os
import sys
import threading
import urllib.parse

import libvirt

# The credential types declared to libvirt. libvirt fills in from auth.conf
# only the SASL questions of types the client declares, so AUTHNAME and
# PASSPHRASE must be here for SASL with a password to work at all.
# VIR_CRED_USERNAME (SASL's authorization id) is left out on purpose: when
# declared, DIGEST-MD5 asks for it, auth.conf's usual "authname" and
# "password" do not answer it, and the connection fails; left out, SASL
# authorizes as the authentication name.
CREDENTIAL_TYPES = [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_ECHOPROMPT,
                    libvirt.VIR_CRED_REALM, libvirt.VIR_CRED_PASSPHRASE,
                    libvirt.VIR_CRED_NOECHOPROMPT, libvirt.VIR_CRED_EXTERNAL]

CREDENTIAL_NAMES = {
    libvirt.VIR_CRED_USERNAME: 'username',
    libvirt.VIR_CRED_AUTHNAME: 'authname',
    libvirt.VIR_CRED_LANGUAGE: 'language',
    libvirt.VIR_CRED_CNONCE: 'cnonce',
    libvirt.VIR_CRED_PASSPHRASE: 'password',
    libvirt.VIR_CRED_ECHOPROMPT: 'echo prompt',
    libvirt.VIR_CRED_NOECHOPROMPT: 'no-echo prompt',
    libvirt.VIR_CRED_REALM: 'realm',
    libvirt.VIR_CRED_EXTERNAL: 'external',
}

# URI transport -> the scheme that authenticates it. A URI with a host and
# no transport is TLS; a plain TCP libvirtd authenticates with SASL (its
# default "auth_tcp"), which is the only safe way to run one.
TRANSPORT_SCHEMES = {
    'tls': 'tls',
    'tcp': 'sasl',
    'ssh': 'ssh',
    'libssh': 'ssh',
    'libssh2': 'ssh',
    'unix': 'unix socket',
    'ext': 'external command',
}

# libvirt's client PKI files: name in a pkipath= directory, and the
# system-wide path used without pkipath= (as root, or when the user's
# ~/.pki/libvirt lacks the file).
TLS_CLIENT_FILES = (
    ('CA certificate', 'cacert.pem', '/etc/pki/CA/cacert.pem'),
    ('client certificate', 'clientcert.pem',
     '/etc/pki/libvirt/clientcert.pem'),
    ('client key', 'clientkey.pem',
     '/etc/pki/libvirt/private/clientkey.pem'),
)
SYSTEM_AUTH_CONF = '/etc/libvirt/auth.conf'

# QEMU runs as root inside the embedding process, so there is no ownership
# to remember and restore (remembering it only produces XATTR warnings).
EMBED_QEMU_CONF = '''# Written by nova-pyvirt for an embedded QEMU driver.
stdio_handler = "file"
user = "root"
group = "root"
remember_owner = 0
'''

#: Seconds of silence before libvirt's client probes its daemon, and
#: unanswered probes after which it closes the connection: libvirt's own
#: defaults for the connections its daemons open (``keepalive_interval``,
#: ``keepalive_count`` of ``libvirtd.conf`` and ``qemu.conf``).
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 5

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


def _no_interaction(credentials, unanswered):
    """libvirt's credential callback: answer nothing, note what was asked.

    libvirt's remote driver fills in what ``auth.conf`` answers before it
    calls this, and calls it only with the rest, so anything asked here is
    a credential the service's configuration lacks. Returning -1 makes
    libvirt fail with "Failed to collect auth credentials"; returning 0
    with empty results would send SASL on without them, to fail with
    "Unexpectedly missing a prompt result", which names nothing.

    No logging: this runs in whatever thread opens the connection (a
    native tpool thread under eventlet), and the caller reports the names
    collected in ``unanswered`` instead.
    """
    for credential in credentials:
        unanswered.append(CREDENTIAL_NAMES.get(
            credential[0], 'credential type %s' % credential[0]))
    return -1


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
    unanswered = []
    auth = [CREDENTIAL_TYPES, _no_interaction, unanswered]
    try:
        conn = libvirt.openAuth(uri, auth, flags)
    except libvirt.libvirtError as exc:
        # For describe_failure(): which credentials libvirt found nowhere.
        exc.unanswered_credentials = tuple(unanswered)
        raise
    try:
        _start_keepalive(conn)
    except libvirt.libvirtError:
        conn.close()
        raise
    return conn


def _start_keepalive(conn):
    """Have libvirt's client give up on a daemon that stopped answering.

    A libvirt client only advertises keepalive; it sends no probes of its
    own until asked, so a call to a daemon that hangs (or a host that
    vanished without closing the connection) would wait for ever. With
    probes, the connection closes after about ``KEEPALIVE_INTERVAL *
    (KEEPALIVE_COUNT + 1)`` seconds of silence, pending calls fail, and
    the close callback reports it. Drivers without a daemon (embedded
    QEMU, test) have nothing to probe and refuse.
    """
    try:
        conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise


def is_connection_error(exc):
    """True if ``exc`` (a libvirtError) says the daemon is out of reach.

    A daemon that died mid-call fails it with an RPC error ("client socket
    is closed", "End of file while reading data") rather than a code of
    its own.
    """
    if not isinstance(exc, libvirt.libvirtError):
        return False
    return (exc.get_error_domain() in (libvirt.VIR_FROM_RPC,
                                       libvirt.VIR_FROM_REMOTE) or
            exc.get_error_code() in (libvirt.VIR_ERR_NO_CONNECT,
                                     libvirt.VIR_ERR_INVALID_CONN))


def redact_uri(uri):
    """``uri`` with the password of its user part, if any, replaced.

    libvirt takes no password in a URI, but an operator may still write
    one; it must not reach a log or a fault.
    """
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return uri
    userinfo, at, hostport = parts.netloc.rpartition('@')
    if not at or ':' not in userinfo:
        return uri
    user = userinfo.split(':', 1)[0]
    return urllib.parse.urlunsplit(parts._replace(
        netloc='%s:***@%s' % (user, hostport)))


def _split(uri):
    parts = urllib.parse.urlsplit(uri)
    driver, _plus, transport = parts.scheme.partition('+')
    if not transport:
        transport = 'tls' if parts.hostname else 'unix'
    return driver, transport, parts


def auth_scheme(uri, unanswered=()):
    """How a connection to ``uri`` authenticates, in a word or two.

    ``'tls'``, ``'sasl'`` (plain TCP), ``'ssh'``, ``'unix socket'``,
    ``'external command'``, or ``'none'`` for drivers without a daemon
    (embedded QEMU, libvirt's test driver). A TLS connection whose daemon
    also asked for a SASL user name or password is ``'tls+sasl'``.
    """
    if is_embedded(uri):
        return 'none'
    try:
        driver, transport, _parts = _split(uri)
    except ValueError:
        return 'unknown'
    if driver == 'test' and transport == 'unix':
        return 'none'
    scheme = TRANSPORT_SCHEMES.get(transport, transport)
    if scheme == 'tls' and ({'authname', 'password'} & set(unanswered)):
        scheme = 'tls+sasl'
    return scheme


def auth_conf_path(uri, environ=None):
    """The ``auth.conf`` libvirt's client reads for ``uri``, or None.

    libvirt's order: ``$LIBVIRT_AUTH_FILE``, the URI's ``authfile=``,
    ``$XDG_CONFIG_HOME/libvirt/auth.conf`` (``~/.config`` when unset), then
    ``/etc/libvirt/auth.conf``; the last two only if they exist. libvirt
    (GLib) reads ``XDG_CONFIG_HOME`` and ``HOME`` once per process, so set
    them before the service starts.
    """
    environ = os.environ if environ is None else environ
    if environ.get('LIBVIRT_AUTH_FILE'):
        return environ['LIBVIRT_AUTH_FILE']
    try:
        query = urllib.parse.parse_qs(_split(uri)[2].query)
    except ValueError:
        query = {}
    if query.get('authfile'):
        return query['authfile'][0]
    config_home = environ.get('XDG_CONFIG_HOME') or os.path.join(
        environ.get('HOME') or os.path.expanduser('~'), '.config')
    for path in (os.path.join(config_home, 'libvirt', 'auth.conf'),
                 SYSTEM_AUTH_CONF):
        if os.path.exists(path):
            return path
    return None


def tls_client_files(uri, environ=None):
    """``[(role, path)]`` of the PKI files libvirt's client uses for ``uri``.

    From ``pkipath=`` when given. Else, for a user other than root, the CA
    certificate from ``~/.pki/libvirt`` if it is there, and the client
    certificate and key from there if both are; what is not found there
    comes from the system paths (libvirt's own fallback).
    """
    environ = os.environ if environ is None else environ
    try:
        query = urllib.parse.parse_qs(_split(uri)[2].query)
    except ValueError:
        query = {}
    pkipath = (query.get('pkipath') or [None])[0]
    if pkipath:
        return [(role, os.path.join(pkipath, name))
                for role, name, _system in TLS_CLIENT_FILES]
    files = [(role, system) for role, _name, system in TLS_CLIENT_FILES]
    if os.geteuid() == 0:
        return files
    user_dir = os.path.join(environ.get('HOME') or os.path.expanduser('~'),
                            '.pki', 'libvirt')
    user = [(role, os.path.join(user_dir, name))
            for role, name, _system in TLS_CLIENT_FILES]
    if os.path.exists(user[0][1]):
        files[0] = user[0]
    if os.path.exists(user[1][1]) and os.path.exists(user[2][1]):
        files[1:] = user[1:]
    return files


def describe_failure(uri, error, environ=None):
    """What an operator needs to fix a failed open, as ``(scheme, detail)``.

    ``detail`` is libvirt's own message followed by where the credentials
    of the scheme come from and what libvirt found missing: the
    credentials its ``auth.conf`` lookup did not answer, or PKI files that
    do not exist. It holds paths and names, never a secret.
    """
    unanswered = getattr(error, 'unanswered_credentials', ())
    scheme = auth_scheme(uri, unanswered)
    message = str(error)
    notes = []
    if 'sasl' in scheme:
        auth_conf = auth_conf_path(uri, environ)
        host = _split(uri)[2].hostname
        if unanswered:
            notes.append("libvirt's own lookup found no %s for %s %s" % (
                ', '.join(unanswered), host,
                'in %s' % auth_conf if auth_conf else
                '(no auth.conf exists)'))
        else:
            notes.append('SASL credentials for %s from %s' % (
                host, auth_conf or 'no auth.conf'))
    elif unanswered:
        notes.append('libvirt asked for %s, which nothing in its '
                     'configuration answered' % ', '.join(unanswered))
    if scheme.startswith('tls'):
        files = tls_client_files(uri, environ)
        missing = ['%s %s' % (role, path) for role, path in files
                   if not os.path.exists(path)]
        if missing:
            notes.append('missing: %s' % ', '.join(missing))
        else:
            notes.append('client certificate %s' % files[1][1])
    if notes:
        message = '%s (%s)' % (message, '; '.join(notes))
    return scheme, message


def default_uri(virt_type):
    """The URI used when ``[pyvirt] connection_uri`` is empty."""
    return {'kvm': 'qemu:///system', 'qemu': 'qemu:///system',
            'test': 'test:///default'}[virt_type]
