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

"""The libvirt host on real libvirt: guest events and a dying libvirtd.

* Guests of the process-wide embedded QEMU driver (``tests.fixtures.
  embedded``) boot the test guest image (TCG, direct kernel boot). Their
  QEMU is killed with SIGKILL, rebooted by the guest's ACPI handler, and
  destroyed and started again, and the tests check which lifecycle events
  reach the handler.
* A private libvirtd (``tests.fixtures.libvirtd``) is killed and started
  again under a connected ``Host``: the connection handler must hear of the
  loss once, then of the reconnection, and events must flow again. A
  SIGSTOPped libvirtd makes a libvirt call block for real, in both of
  nova's concurrency modes.
"""

import html
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import fixtures
import libvirt
from nova import exception
from nova.virt import event as virtevent
from oslo_serialization import jsonutils
from oslo_utils import uuidutils
from oslotest import base

from nova_pyvirt.hypervisor import host as host_mod
from tests.fixtures import embedded
from tests.fixtures import libvirtd

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD_PY = os.path.join(REPO, 'tools', 'guest_image', 'build.py')
IMAGE_DIR = os.path.join(REPO, '.cache', 'guest-image')
BOOT_TIMEOUT = int(os.environ.get('PYVIRT_GUEST_BOOT_TIMEOUT', '120'))
WAIT = 60

STARTED = virtevent.EVENT_LIFECYCLE_STARTED
STOPPED = virtevent.EVENT_LIFECYCLE_STOPPED

# Long enough for destroy + create (~2 s, more on a busy host), short
# enough for the tests.
STOP_DELAY = 6.0

DOMAIN_XML = '''<domain type='qemu'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>%(image)s/vmlinuz</kernel>
    <initrd>%(image)s/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <serial type='file'><source path='%(console)s'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>'''

_built = []


def ensure_image():
    """Build the guest image once per process (build.py is idempotent)."""
    if not _built:
        proc = subprocess.run([sys.executable, BUILD_PY],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=900)
        if proc.returncode != 0:
            raise AssertionError('build.py failed (exit %s):\n%s' % (
                proc.returncode, proc.stdout))
        _built.append(IMAGE_DIR)
    return _built[0]


def domain_xml(name, domain_uuid, console):
    return DOMAIN_XML % {'name': name, 'uuid': domain_uuid,
                         'image': html.escape(ensure_image()),
                         'console': html.escape(console)}


class Recorder(object):
    """Handler calls, waitable."""

    def __init__(self):
        self.calls = []
        self._cond = threading.Condition()

    def lifecycle(self, event):
        with self._cond:
            self.calls.append(('lifecycle', event.uuid, event.transition,
                               time.monotonic()))
            self._cond.notify_all()

    def connection(self, up, reason):
        with self._cond:
            self.calls.append(('connection', up, reason, time.monotonic()))
            self._cond.notify_all()

    def transitions(self, domain_uuid):
        return [call[2] for call in self.calls
                if call[0] == 'lifecycle' and call[1] == domain_uuid]

    def time_of(self, domain_uuid, transition):
        for call in self.calls:
            if call[0] == 'lifecycle' and call[1:3] == (domain_uuid,
                                                        transition):
                return call[3]
        return None

    def connection_events(self):
        return [call[1:3] for call in self.calls if call[0] == 'connection']

    def wait_for(self, predicate, timeout=WAIT):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError('timed out; handler calls so far: %r'
                                     % self.calls)


def wait_until(predicate, timeout, what, console=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            message = 'timed out waiting for %s' % what
            if console:
                message += '; console:\n%s' % read_text(console)
            raise AssertionError(message)
        time.sleep(0.1)


def read_text(path):
    try:
        with open(path, errors='replace') as handle:
            return handle.read()
    except FileNotFoundError:
        return ''


def remove_domain(conn, domain_uuid):
    try:
        dom = conn.lookupByUUIDString(domain_uuid)
    except libvirt.libvirtError:
        return
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    try:
        dom.undefine()
    except libvirt.libvirtError:
        pass


def qemu_pid(run_dir, name, domain_uuid):
    """PID of a guest's QEMU: libvirt's pid file, checked against /proc.

    Falls back to a /proc scan for ``-uuid <uuid>``.  Only a process whose
    command line carries the guest's UUID is returned, never the libvirt
    process itself (the embedded driver's ``driver.pid`` holds the test
    process's PID).
    """
    needle = domain_uuid.encode()

    def is_guest(pid):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                argv = handle.read().split(b'\0')
        except OSError:
            return False
        return (pid != os.getpid() and b'qemu' in argv[0] and
                needle in argv)

    try:
        with open(os.path.join(run_dir, '%s.pid' % name)) as handle:
            pid = int(handle.read().strip())
        if is_guest(pid):
            return pid
    except (OSError, ValueError):
        pass
    for entry in os.listdir('/proc'):
        if entry.isdigit() and is_guest(int(entry)):
            return int(entry)
    raise AssertionError('no QEMU process found for %s' % domain_uuid)


class GuestLifecycleEventsTest(base.BaseTestCase):
    """Lifecycle events of real QEMU guests (embedded driver)."""

    def setUp(self):
        super(GuestLifecycleEventsTest, self).setUp()
        ensure_image()
        self.conn = embedded.get()
        self.root = embedded.root()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.recorder = Recorder()
        self.host = host_mod.Host(
            embedded.uri(),
            self.recorder.lifecycle, self.recorder.connection,
            stopped_event_delay=STOP_DELAY)
        self.addCleanup(self.host.cleanup)
        self.host.initialize()

    def boot(self):
        domain_uuid = uuidutils.generate_uuid()
        name = 'host-events-%s' % domain_uuid[:8]
        console = os.path.join(self.tmp, '%s.log' % name)
        # Through the shared connection: it outlives this test's Host.
        self.addCleanup(remove_domain, self.conn, domain_uuid)
        dom = self.host.define_domain(domain_xml(name, domain_uuid, console))
        dom.create()
        self.recorder.wait_for(
            lambda: STARTED in self.recorder.transitions(domain_uuid))
        return dom, name, domain_uuid, console

    def test_killed_qemu_is_stopped(self):
        dom, name, domain_uuid, _console = self.boot()
        # libvirt 9.0 reports RESUMED (CPUs started) right before STARTED.
        before = self.recorder.transitions(domain_uuid)
        self.assertEqual(STARTED, before[-1])
        pid = qemu_pid(os.path.join(self.root, 'run', 'qemu'), name,
                       domain_uuid)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        self.recorder.wait_for(
            lambda: STOPPED in self.recorder.transitions(domain_uuid))
        self.assertEqual(before + [STOPPED],
                         self.recorder.transitions(domain_uuid))
        # Held back for the reboot window, then delivered.
        self.assertGreaterEqual(
            self.recorder.time_of(domain_uuid, STOPPED) - killed_at,
            STOP_DELAY)
        self.assertFalse(dom.isActive())

    def test_destroy_and_start_within_the_delay_is_not_stopped(self):
        dom, _name, domain_uuid, _console = self.boot()
        dom.destroy()
        dom.create()
        self.recorder.wait_for(
            lambda: self.recorder.transitions(domain_uuid).count(
                STARTED) == 2)
        restarted_at = time.monotonic()
        # Nothing may come out once the delay has passed.
        time.sleep(STOP_DELAY + 2)
        self.assertNotIn(STOPPED, self.recorder.transitions(domain_uuid))

        # A plain destroy is reported, after the delay.
        self.assertLess(time.monotonic() - restarted_at, 60)
        destroyed_at = time.monotonic()
        dom.destroy()
        self.recorder.wait_for(
            lambda: STOPPED in self.recorder.transitions(domain_uuid))
        self.assertGreaterEqual(
            self.recorder.time_of(domain_uuid, STOPPED) - destroyed_at,
            STOP_DELAY)

    def test_guest_reboot_is_not_stopped(self):
        dom, _name, domain_uuid, console = self.boot()
        # The guest's acpid turns the ACPI power button into a power-off,
        # which libvirt's reboot (ACPI + fake reboot) turns into a reset.
        wait_until(lambda: 'PYVIRT-GUEST: ready' in read_text(console),
                   BOOT_TIMEOUT, 'the guest to boot', console)
        # "acpid started" is printed as busybox acpid forks: on a busy
        # host the first button press can come before acpid listens, and
        # libvirt does not press again by itself.
        deadline = time.monotonic() + BOOT_TIMEOUT
        while 'PYVIRT-GUEST: acpi shutdown' not in read_text(console):
            if time.monotonic() > deadline:
                raise AssertionError('the guest ignored ACPI reboot '
                                     'requests; console:\n%s' %
                                     read_text(console))
            dom.reboot(0)
            for _tick in range(100):
                if 'PYVIRT-GUEST: acpi shutdown' in read_text(console):
                    break
                time.sleep(0.1)
        wait_until(lambda: read_text(console).count(
            'PYVIRT-GUEST: boot start') >= 2, BOOT_TIMEOUT,
            'the guest to boot again', console)
        time.sleep(STOP_DELAY + 2)
        self.assertNotIn(STOPPED, self.recorder.transitions(domain_uuid))
        self.assertTrue(dom.isActive())

    def test_host_facts(self):
        facts = self.host.host_facts()
        self.assertEqual('x86_64', facts.arch)
        self.assertTrue(facts.known_cpu_features)
        self.assertIs(facts.capabilities, self.host.get_capabilities())
        domcaps = facts.domain_capabilities('x86_64', None, 'qemu')
        self.assertIs(domcaps, self.host.get_domain_capabilities(
            'x86_64', None, 'qemu'))
        self.assertIsNot(domcaps, self.host.get_domain_capabilities(
            'x86_64', 'q35', 'qemu'))
        self.assertGreaterEqual(self.host.get_version(), 7000000)
        self.assertGreater(self.host.get_cpu_count(), 0)
        self.assertGreater(self.host.get_memory_mb_total(),
                           self.host.get_memory_mb_used())
        self.assertGreater(self.host.get_memory_mb_used(), 0)


class LibvirtdConnectionTest(base.BaseTestCase):
    """A Host connected to a private libvirtd that dies and comes back."""

    def setUp(self):
        super(LibvirtdConnectionTest, self).setUp()
        self.daemon = self.useFixture(libvirtd.LibvirtdFixture())
        self.recorder = Recorder()

    def make_host(self, **kwargs):
        host = host_mod.Host(self.daemon.uri, self.recorder.lifecycle,
                             self.recorder.connection, **kwargs)
        self.addCleanup(host.cleanup)
        host.initialize()
        self.recorder.wait_for(
            lambda: self.recorder.connection_events() == [(True, None)])
        return host

    def test_killed_daemon_disables_then_background_reconnect(self):
        host = self.make_host(reconnect_interval=0.5,
                              stopped_event_delay=STOP_DELAY)
        old = host.get_connection()

        self.daemon.kill(signal.SIGKILL)
        self.recorder.wait_for(
            lambda: len(self.recorder.connection_events()) == 2)
        up, reason = self.recorder.connection_events()[1]
        self.assertFalse(up)
        self.assertIn(self.daemon.uri, reason)
        self.assertIn('end of file', reason)

        error = self.assertRaises(exception.HypervisorUnavailable,
                                  host.get_connection)
        self.assertIn('Cannot connect to libvirt at %s' % self.daemon.uri,
                      str(error))
        # Failed retries do not report the loss again.
        time.sleep(1.5)
        self.assertEqual(2, len(self.recorder.connection_events()))

        self.daemon.start()
        self.recorder.wait_for(
            lambda: len(self.recorder.connection_events()) == 3)
        self.assertEqual((True, None), self.recorder.connection_events()[2])
        new = host.get_connection()
        self.assertIsNot(old, new)
        self.assertEqual(1, new.isAlive())
        self.assertEqual(libvirt.getVersion(), host.get_libversion())

        # The callbacks were registered again: a guest of the restarted
        # daemon reports its start.
        tmp = self.useFixture(fixtures.TempDir()).path
        domain_uuid = uuidutils.generate_uuid()
        name = 'host-daemon-%s' % domain_uuid[:8]
        self.addCleanup(self._remove_domain, domain_uuid)
        dom = host.define_domain(domain_xml(
            name, domain_uuid, os.path.join(tmp, 'console.log')))
        dom.create()
        self.recorder.wait_for(
            lambda: STARTED in self.recorder.transitions(domain_uuid))
        dom.destroy()
        self.assertEqual(3, len(self.recorder.connection_events()))

    def _remove_domain(self, domain_uuid):
        if not self.daemon.running():
            return  # the fixture's cleanup sweeps the daemon's QEMUs
        conn = libvirt.open(self.daemon.uri)
        try:
            remove_domain(conn, domain_uuid)
        finally:
            conn.close()

    def test_stopped_daemon_then_get_connection_reconnects(self):
        host = self.make_host(reconnect_interval=None)
        self.daemon.stop()  # SIGTERM: an orderly daemon shutdown
        self.recorder.wait_for(
            lambda: len(self.recorder.connection_events()) == 2)
        self.assertFalse(self.recorder.connection_events()[1][0])
        self.assertIsNone(host._conn)

        self.daemon.start()
        time.sleep(0.5)
        # No background retry: nothing happens until someone asks.
        self.assertEqual(2, len(self.recorder.connection_events()))
        self.assertTrue(host.get_hostname())
        self.recorder.wait_for(
            lambda: len(self.recorder.connection_events()) == 3)
        self.assertEqual((True, None), self.recorder.connection_events()[2])

    def test_blocked_call_holds_up_nothing_else(self):
        # In whatever mode this process runs; the probes below run each
        # mode in a process of its own.
        host = self.make_host()
        results = []

        def call():
            results.append(host.get_version())

        self.daemon.pause()
        self.addCleanup(self.daemon.resume)
        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.5)
        self.assertEqual([], results)  # really blocked in libvirt
        started = time.monotonic()
        self.assertIsNotNone(host.get_connection())
        self.assertLess(time.monotonic() - started, 0.5)
        self.daemon.resume()
        caller.join(WAIT)
        self.assertEqual(1, len(results))
        self.assertGreater(results[0], 7000000)


STALL_PROBE = r'''
import json
import os
import signal
import sys
import time

from nova import monkey_patch
monkey_patch.patch()

from nova import utils
from nova_pyvirt.hypervisor import host as host_mod

eventlet = utils.get_eventlet()
if eventlet is None:
    import threading as native
    sleep = time.sleep

    def spawn(func):
        thread = native.Thread(target=func, daemon=True)
        thread.start()
        return thread
else:
    native = eventlet.patcher.original('threading')
    sleep = eventlet.sleep
    spawn = eventlet.spawn

uri, pid = sys.argv[1], int(sys.argv[2])
host = host_mod.Host(uri)
host.initialize()
ticks = []
results = []


def ticker():
    while True:
        ticks.append(time.monotonic())
        sleep(0.01)


def call():
    results.append(host.get_version())


spawn(ticker)
os.kill(pid, signal.SIGSTOP)
# Continued from a native thread, so that a stalled process ends too.
waker = native.Timer(1.5, os.kill, (pid, signal.SIGCONT))
waker.start()
spawn(call)
sleep(0.2)
before = len(ticks)
sleep(1.0)
ticks_while_blocked = len(ticks) - before
blocked = not results
waker.join()
deadline = time.monotonic() + 30
while not results and time.monotonic() < deadline:
    sleep(0.05)
print(json.dumps({'mode': host.concurrency_mode, 'blocked': blocked,
                  'ticks_while_blocked': ticks_while_blocked,
                  'results': results}))
host.cleanup()
'''


class BlockingCallModesTest(base.BaseTestCase):
    """A libvirt call stuck on a SIGSTOPped daemon, in both of nova's modes.

    Each mode is set up from scratch in a child process, the way
    nova-compute does it (``nova.monkey_patch.patch()``).
    """

    def setUp(self):
        super(BlockingCallModesTest, self).setUp()
        self.daemon = self.useFixture(libvirtd.LibvirtdFixture())

    def probe(self, disable_eventlet):
        env = dict(os.environ)
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        if disable_eventlet:
            env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p])
        with tempfile.TemporaryFile('w+') as stderr:
            try:
                proc = subprocess.run(
                    [sys.executable, '-W', 'ignore', '-c', STALL_PROBE,
                     self.daemon.uri, str(self.daemon.pid)],
                    stdout=subprocess.PIPE, stderr=stderr, env=env,
                    universal_newlines=True, timeout=120, cwd=REPO)
            finally:
                # Whatever happened to the child, never leave it stopped.
                os.kill(self.daemon.pid, signal.SIGCONT)
            stderr.seek(0)
            self.assertEqual(0, proc.returncode, stderr.read())
        return jsonutils.loads(proc.stdout.strip().splitlines()[-1])

    def check(self, result, mode):
        self.assertEqual(mode, result['mode'])
        self.assertTrue(result['blocked'])
        # ~100 ticks of 10 ms in the second the call was stuck.
        self.assertGreater(result['ticks_while_blocked'], 50)
        self.assertEqual(1, len(result['results']))

    def test_native_threads(self):
        self.check(self.probe(disable_eventlet=True), 'native threads')

    def test_eventlet(self):
        self.check(self.probe(disable_eventlet=False), 'eventlet')
