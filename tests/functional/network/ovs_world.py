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

"""The world a guest-on-OVS test runs in, and the proof it leaves nothing.

:class:`OvsWorldTest` gives each test a private Open vSwitch
(:class:`~tests.fixtures.ovs.OvsFixture`) and Neutron's DHCP agent on it
(:class:`~tests.fixtures.dhcp.DhcpFixture`), records what the machine
looked like before, and after every cleanup checks that no process,
namespace, device or directory of the test is left. :class:`NamespaceHost`
runs a helper module (a compute host) inside the OVS fixture's namespaces
and talks to it over JSON lines.
"""

import os
import subprocess
import sys
import threading
import time

import fixtures
from oslo_serialization import jsonutils
import testtools
from testtools import content

from tests.fixtures import dhcp
from tests.fixtures import ovs
from tests import process_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
HELPER = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
QEMU = '/usr/bin/qemu-system-x86_64'
PLUG_DEVICES = ('tap', 'qbr', 'qvb', 'qvo')
# What the test guest's web server answers (tools/guest_image/README.md).
HTTP_TEXT = 'PYVIRT-HTTP hello from the test guest'


def descendants(pid):
    """``{pid: cmdline}`` of every process below ``pid``."""
    parents = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name) as handle:
                    stat = handle.read().rsplit(')', 1)[-1].split()
                parents[int(name)] = int(stat[1])
            except (OSError, IndexError, ValueError):
                continue
    running = process_table.processes()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found and child in running:
                found[child] = running[child]
                todo.append(child)
    return found


def net_namespace(pid):
    try:
        return os.readlink('/proc/%d/ns/net' % pid)
    except OSError:
        return None


def machine_plug_devices():
    """Plug and DHCP devices in the machine's own network namespace.

    Taps, ``qbr``/``qvb``/``qvo`` and the DHCP fixture's veth ends: the
    test must never make any there.
    """
    out = subprocess.run([ovs.IP, '-json', 'link', 'show'],
                         capture_output=True, text=True, check=True).stdout
    return sorted(link['ifname'] for link in jsonutils.loads(out)
                  if link['ifname'].startswith(PLUG_DEVICES +
                                               ('dhcp-', 'ns-')))


def named_namespaces():
    out = subprocess.run([ovs.IP, 'netns', 'list'], capture_output=True,
                         text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines()
                  if line.strip())


class NamespaceHost(object):
    """A helper module run in the OVS fixture's namespaces, over JSON lines.

    The module reads one JSON request a line on stdin and answers one line
    on stdout; ``{"op": "quit"}`` stops it. Its stderr goes to a log that
    is attached to the test as ``<name>-log``. Its arguments are the
    privsep helper's path, then ``args``.
    """

    def __init__(self, test, ovs_fixture, module, stop_timeout=120,
                 log_tail=20000, args=()):
        self.name = module.rsplit('.', 1)[-1]
        self.log = os.path.join(test.tmp, self.name + '.log')
        self.stderr = open(self.log, 'wb')
        self.proc = subprocess.Popen(
            ovs_fixture.command([sys.executable, '-m', module, HELPER] +
                                list(args)),
            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True)
        self.test = test
        self.stop_timeout = stop_timeout
        self.log_tail = log_tail
        # Requests may come from the test and from an agent thread.
        self.lock = threading.Lock()
        test.addCleanup(self.stop)

    def call(self, op, **values):
        values['op'] = op
        with self.lock:
            self.proc.stdin.write(jsonutils.dumps(values) + '\n')
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise AssertionError('%s exited (%s); see its log'
                                 % (self.name, self.proc.poll()))
        reply = jsonutils.loads(line)
        if 'error' in reply:
            raise AssertionError('%s %s failed:\n%s'
                                 % (self.name, op, reply['error']))
        return reply

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(jsonutils.dumps({'op': 'quit'}) + '\n')
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                ovs._stop(self.proc.pid)
                self.proc.wait()
        if not self.stderr.closed:
            self.stderr.close()
            with open(self.log, errors='replace') as handle:
                self.test.addDetail(self.name + '-log', content.text_content(
                    handle.read()[-self.log_tail:]))


class OvsWorldTest(testtools.TestCase):
    """A private switch and DHCP agent per test, and nothing left after it.

    Subclasses set ``CIDR``, ``GATEWAY`` and ``LEASES`` (``[(mac, ip)]``).
    """

    CIDR = GATEWAY = None
    LEASES = ()

    def setUp(self):
        super(OvsWorldTest, self).setUp()
        if not os.access(QEMU, os.X_OK):
            self.skipTest('%s is missing: no QEMU to boot a guest' % QEMU)
        reason = dhcp.missing_capability()
        if reason:
            self.skipTest(reason)
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.held = {}
        self.machine_before = self.machine_state()
        # Runs last, after every fixture's cleanup.
        self.addCleanup(self.assertNoProcessLeft)
        self.ovs = self.useFixture(ovs.OvsFixture())
        self.pids_before = sorted(self.ovs.namespace_pids())
        self.dhcp = self.useFixture(dhcp.DhcpFixture(
            self.ovs, self.CIDR, list(self.LEASES), gateway=self.GATEWAY))
        # The namespaces the test made: none may outlive it.
        self.namespaces = [net_namespace(self.ovs.pid),
                           net_namespace(self.dhcp.holder_pid)]
        self.addCleanup(lambda: self.addDetail(
            'dnsmasq-log', content.text_content(self.dhcp.log())))
        self.dhcp_ports = self.ovs.ports()
        self.dhcp_links = self.ovs.links()

    def assertSwitchEmptyOnceHostStops(self, host):
        """Only the DHCP port is left, no QEMU; then ``host`` stops."""
        self.assertEqual(self.dhcp_ports, self.ovs.ports())
        self.assertEqual({}, self.ovs.iface_ids())
        self.assertEqual(self.dhcp_links, self.ovs.links())
        for link in self.ovs.links():
            self.assertFalse(link.startswith(PLUG_DEVICES), link)
        # The host process and its privsep daemons remain until it stops.
        running = process_table.processes()
        for pid in self.ovs.namespace_pids():
            self.assertNotIn(b'qemu-system', running.get(pid, b''))
        host.stop()
        deadline = time.monotonic() + 15
        while (sorted(self.ovs.namespace_pids()) != self.pids_before and
               time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(self.pids_before, sorted(self.ovs.namespace_pids()))

    def assertNoProcessLeft(self):
        # Runs after the fixtures' cleanups: every process started for the
        # test (OVS daemons, dnsmasq, namespace holders, QEMU, privsep) is
        # gone, and so are the namespaces they held and their directories.
        dirs = [fx.dir for fx in [getattr(self, 'dhcp', None)] if fx] + [
            fx.run_dir for fx in [getattr(self, 'ovs', None)] if fx]
        running = process_table.processes()
        left = ['%d: %s' % (pid, cmdline.decode(errors='replace'))
                for pid, cmdline in self.held.items()
                if running.get(pid) == cmdline]
        self.assertEqual([], left)
        for path in dirs:
            self.assertFalse(os.path.exists(path), path)
        # No process on the machine is still in a namespace of the test
        # (so the namespaces are gone), and the machine's devices, named
        # namespaces and this test's child processes are as before.
        namespaces = [ns for ns in getattr(self, 'namespaces', []) if ns]
        in_them = ['%d: %s' % (pid, cmdline.decode(errors='replace'))
                   for pid, cmdline in running.items()
                   if net_namespace(pid) in namespaces]
        self.assertEqual([], in_them)
        self.assertEqual(self.machine_before, self.machine_state())

    def machine_state(self):
        return {'devices': machine_plug_devices(),
                'named_namespaces': named_namespaces(),
                'child_processes': descendants(os.getpid())}

    def remember_processes(self):
        """Note every process of the test's namespaces (QEMU included)."""
        running = process_table.processes()
        for pid in self.ovs.namespace_pids() + self.dhcp.namespace_pids():
            if pid in running:
                self.held[pid] = running[pid]
        self.assertTrue(any(b'qemu-system' in cmd
                            for cmd in self.held.values()), self.held)
