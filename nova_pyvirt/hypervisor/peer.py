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

"""A read-only look at another host's libvirt: what it could run.

Live migration checks ask the destination's libvirtd, over the same URI
the migration itself will use, whether it can run a guest's CPU and
machine type and has the memory for it, before anything is moved.  Only
calls that change nothing are made (the connection is a read-write one
all the same: libvirt refuses CPU comparisons to read-only clients); it
is closed when the check is done.
"""

import contextlib

import libvirt
from oslo_log import log as logging

from nova_pyvirt.hypervisor import connection

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
