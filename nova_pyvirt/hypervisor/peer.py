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

"""Another host's libvirt, as a live migration's source uses it.

Live migration checks ask the destination's libvirtd, over the same URI
the migration itself will use, whether it can run a guest's CPU and
machine type and has the memory for it, before anything is moved.  Those
calls change nothing (the connection is a read-write one all the same:
libvirt refuses CPU comparisons to read-only clients).

The one call that writes, :meth:`PeerHost.upload`, puts a file the
migration cannot carry (a read-only disk: QEMU's block copy refuses
those) into the destination's instance directory, through libvirt's
storage streams on that same connection: no other channel between the
hosts is needed. A connection is closed when its work is done.
"""

import contextlib
import os

import libvirt
from oslo_log import log as logging
from oslo_utils import uuidutils

from nova_pyvirt.hypervisor import connection
from nova_pyvirt import xml

LOG = logging.getLogger(__name__)

#: compareHypervisorCPU results that mean the destination can run the CPU.
_CPU_OK = (libvirt.VIR_CPU_COMPARE_IDENTICAL,
           libvirt.VIR_CPU_COMPARE_SUPERSET)


class PeerHost(object):
    """Questions to a peer's libvirtd over an open connection."""

    def __init__(self, conn, uri):
        self.conn = conn
        self.uri = uri

    def compare_cpu(self, emulator, arch, machine, virt_type, cpu_xml):
        """None if the peer's hypervisor can run ``cpu_xml``, else why not.

        libvirt compares the CPU with what the peer's QEMU can provide for
        that machine and domain type (not with the host's bare CPU), and
        with ``FAIL_INCOMPATIBLE`` names the features that are missing.
        """
        try:
            result = self.conn.compareHypervisorCPU(
                emulator, arch, machine, virt_type, cpu_xml,
                libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_CPU_INCOMPATIBLE:
                return exc.get_error_message()
            raise
        if result in _CPU_OK:
            return None
        return 'libvirt reports the CPU as incompatible (%s)' % result

    def machine_problem(self, emulator, arch, machine, virt_type):
        """None if the peer's QEMU has ``machine`` for ``arch``, else why."""
        try:
            self.conn.getDomainCapabilities(emulator, arch, machine,
                                            virt_type, 0)
        except libvirt.libvirtError as exc:
            return exc.get_error_message()
        return None

    def free_memory(self):
        """Bytes of memory free on the peer."""
        return self.conn.getFreeMemory()

    def hostname(self):
        return self.conn.getHostname()

    def upload(self, path, directory):
        """Copy the local file ``path`` to the same name in ``directory``.

        ``directory`` is a path on the peer, which must exist and hold a
        file of that name at least as large as ``path`` (the destination's
        preparation made it). libvirt's storage driver writes it, through
        a transient ``dir`` pool on ``directory`` that is removed again
        (the files stay). Raises ``libvirtError``; after a failure the
        peer's file may be partly written.
        """
        name = os.path.basename(path)
        size = os.path.getsize(path)
        pool = self.conn.storagePoolCreateXML(_dir_pool_xml(directory), 0)
        try:
            volume = pool.storageVolLookupByName(name)
            stream = self.conn.newStream(0)
            with open(path, 'rb') as handle:
                volume.upload(stream, 0, size, 0)
                try:
                    stream.sendAll(lambda _stream, nbytes, source:
                                   source.read(nbytes), handle)
                    stream.finish()
                except Exception:
                    _abort(stream)
                    raise
        finally:
            try:
                pool.destroy()
            except libvirt.libvirtError as exc:
                LOG.warning('could not remove the transient pool on %s of '
                            '%s: %s', directory,
                            connection.redact_uri(self.uri), exc)
        LOG.info('copied %s (%d bytes) to %s on %s', name, size, directory,
                 connection.redact_uri(self.uri))


def _dir_pool_xml(directory):
    """A ``dir`` pool on ``directory``, with a name of its own."""
    return xml.StoragePool(
        type='dir', target_path=directory,
        name='pyvirt-upload-%s' % uuidutils.generate_uuid(dashed=False),
    ).to_xml()


def _abort(stream):
    try:
        stream.abort()
    except libvirt.libvirtError as exc:
        LOG.debug('aborting the upload stream: %s', exc)


@contextlib.contextmanager
def opened(uri):
    """A :class:`PeerHost` on a connection to ``uri``."""
    conn = connection.open_connection(uri)
    try:
        yield PeerHost(conn, uri)
    finally:
        try:
            conn.close()
        except libvirt.libvirtError as exc:
            LOG.debug('closing %s: %s', connection.redact_uri(uri), exc)
