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


def open_connection(uri, read_only=False):
    """Open ``uri`` through ``virConnectOpenAuth``."""
    start_event_loop()
    flags = libvirt.VIR_CONNECT_RO if read_only else 0
    auth = [CREDENTIAL_TYPES, _no_interaction, None]
    return libvirt.openAuth(uri, auth, flags)


def default_uri(virt_type):
    """The URI used when ``[pyvirt] connection_uri`` is empty."""
    return {'kvm': 'qemu:///system', 'qemu': 'qemu:///system'}[virt_type]
