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

"""The libvirt host: event translation, STOPPED delay, dispatch, errors.

The connection is libvirt's real test driver (``test:///default``, no
daemon): real ``virConnect``/``virDomain`` objects and real lifecycle events
from its event loop.  ``test:///default`` is shared by every connection of a
process, so each test uses domains of its own and removes them.  A closed
connection cannot be produced with the test driver; those tests call the
close callback as libvirt would (the functional tests kill a real libvirtd).
"""

import os
import subprocess
import sys
import threading
import time
from unittest import mock

import libvirt
from nova import exception
from nova import utils
from nova.virt import event as virtevent
from oslo_serialization import jsonutils
from oslo_utils import uuidutils
from oslotest import base

from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host as host_mod
from nova_pyvirt.hypervisor import lifecycle_events
from nova_pyvirt import xml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TEST_URI = 'test:///default'
WAIT = 10

STARTED = virtevent.EVENT_LIFECYCLE_STARTED
STOPPED = virtevent.EVENT_LIFECYCLE_STOPPED
PAUSED = virtevent.EVENT_LIFECYCLE_PAUSED
RESUMED = virtevent.EVENT_LIFECYCLE_RESUMED
SUSPENDED = virtevent.EVENT_LIFECYCLE_SUSPENDED
POSTCOPY = virtevent.EVENT_LIFECYCLE_POSTCOPY_STARTED

DOMAIN_XML = '''<domain type='test'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='MiB'>64</memory>
  <os><type>hvm</type></os>
</domain>'''


class FakeClock(object):

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def native_thread_ident():
    """The OS thread's identity, also under eventlet monkey patching."""
    eventlet = utils.get_eventlet()
    if eventlet is None:
        return threading.get_ident()
    return eventlet.patcher.original('threading').get_ident()


class Recorder(object):
    """Collects handler calls with the thread they ran in."""

    def __init__(self):
        self.calls = []
        self._cond = threading.Condition()

    def lifecycle(self, event):
        with self._cond:
            self.calls.append(('lifecycle', event.uuid, event.transition,
                               threading.current_thread().name,
                               native_thread_ident()))
            self._cond.notify_all()

    def connection(self, up, reason):
        with self._cond:
            self.calls.append(('connection', up, reason,
                               threading.current_thread().name,
                               native_thread_ident()))
            self._cond.notify_all()

    def transitions(self, uuid):
        return [call[2] for call in self.calls
                if call[0] == 'lifecycle' and call[1] == uuid]

    def connection_events(self):
        return [call[1:3] for call in self.calls if call[0] == 'connection']

    def wait_for(self, predicate, timeout=WAIT):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError('timed out; calls so far: %r' %
                                     self.calls)


def lifecycle(uuid, transition):
    return virtevent.LifecycleEvent(uuid, transition)


class LifecycleTransitionTest(base.BaseTestCase):
    """Every libvirt lifecycle event and detail libvirt 9.0 defines."""

    TABLE = [
        ('DEFINED', 'ADDED', None),
        ('DEFINED', 'UPDATED', None),
        ('UNDEFINED', 'REMOVED', None),
        ('STARTED', 'BOOTED', STARTED),
        ('STARTED', 'MIGRATED', STARTED),
        ('STARTED', 'RESTORED', STARTED),
        ('STARTED', 'FROM_SNAPSHOT', STARTED),
        ('STARTED', 'WAKEUP', RESUMED),
        ('SUSPENDED', 'PAUSED', PAUSED),
        ('SUSPENDED', 'MIGRATED', PAUSED),
        ('SUSPENDED', 'IOERROR', PAUSED),
        ('SUSPENDED', 'WATCHDOG', PAUSED),
        ('SUSPENDED', 'RESTORED', PAUSED),
        ('SUSPENDED', 'FROM_SNAPSHOT', PAUSED),
        ('SUSPENDED', 'API_ERROR', PAUSED),
        ('SUSPENDED', 'POSTCOPY', POSTCOPY),
        ('SUSPENDED', 'POSTCOPY_FAILED', PAUSED),
        ('RESUMED', 'UNPAUSED', RESUMED),
        ('RESUMED', 'MIGRATED', RESUMED),
        ('RESUMED', 'FROM_SNAPSHOT', RESUMED),
        ('RESUMED', 'POSTCOPY', RESUMED),
        ('STOPPED', 'SHUTDOWN', STOPPED),
        ('STOPPED', 'DESTROYED', STOPPED),
        ('STOPPED', 'CRASHED', STOPPED),
        ('STOPPED', 'MIGRATED', STOPPED),
        ('STOPPED', 'SAVED', STOPPED),
        ('STOPPED', 'FAILED', STOPPED),
        ('STOPPED', 'FROM_SNAPSHOT', STOPPED),
        ('SHUTDOWN', 'FINISHED', None),
        ('SHUTDOWN', 'GUEST', None),
        ('SHUTDOWN', 'HOST', None),
        ('PMSUSPENDED', 'MEMORY', SUSPENDED),
        ('PMSUSPENDED', 'DISK', SUSPENDED),
        ('CRASHED', 'PANICKED', None),
    ]

    def test_table(self):
        for event_name, detail_name, expected in self.TABLE:
            event = getattr(libvirt, 'VIR_DOMAIN_EVENT_%s' % event_name)
            detail = getattr(libvirt, 'VIR_DOMAIN_EVENT_%s_%s' % (
                event_name, detail_name))
            self.assertEqual(
                expected, lifecycle_events.lifecycle_transition(event, detail),
                '%s/%s' % (event_name, detail_name))

    def test_every_stopped_detail_is_stopped(self):
        prefix = 'VIR_DOMAIN_EVENT_STOPPED_'
        details = [getattr(libvirt, name) for name in dir(libvirt)
                   if name.startswith(prefix)]
        self.assertGreaterEqual(len(details), 7)
        for detail in details:
            self.assertEqual(STOPPED, lifecycle_events.lifecycle_transition(
                libvirt.VIR_DOMAIN_EVENT_STOPPED, detail))

    def test_unknown_event_is_ignored(self):
        self.assertIsNone(lifecycle_events.lifecycle_transition(99, 0))


class StoppedEventDelayTest(base.BaseTestCase):
    """The reboot filter alone, with an explicit clock."""

    def setUp(self):
        super(StoppedEventDelayTest, self).setUp()
        self.delay = lifecycle_events.StoppedEventDelay(15)

    def test_other_events_pass_at_once(self):
        for transition in (STARTED, PAUSED, RESUMED, SUSPENDED):
            event = lifecycle('a', transition)
            self.assertEqual([event], self.delay.add(event, 0))
        self.assertIsNone(self.delay.next_deadline())

    def test_stopped_is_held_for_the_delay(self):
        stopped = lifecycle('a', STOPPED)
        self.assertEqual([], self.delay.add(stopped, 100))
        self.assertEqual(115, self.delay.next_deadline())
        self.assertEqual([], self.delay.due(114.9))
        self.assertEqual([stopped], self.delay.due(115))
        self.assertEqual([], self.delay.due(200))
        self.assertIsNone(self.delay.next_deadline())

    def test_started_within_the_delay_drops_stopped(self):
        stopped = lifecycle('a', STOPPED)
        started = lifecycle('a', STARTED)
        self.delay.add(stopped, 100)
        self.assertEqual([started], self.delay.add(started, 101))
        self.assertEqual([], self.delay.pending())
        self.assertEqual([], self.delay.due(1000))

    def test_started_of_another_guest_keeps_stopped(self):
        stopped = lifecycle('a', STOPPED)
        started = lifecycle('b', STARTED)
        self.delay.add(stopped, 100)
        self.assertEqual([started], self.delay.add(started, 101))
        self.assertEqual(['a'], self.delay.pending())
        self.assertEqual([stopped], self.delay.due(115))

    def test_started_after_the_delay_changes_nothing(self):
        stopped = lifecycle('a', STOPPED)
        started = lifecycle('a', STARTED)
        self.delay.add(stopped, 100)
        self.assertEqual([stopped], self.delay.due(116))
        self.assertEqual([started], self.delay.add(started, 117))

    def test_second_stopped_restarts_the_delay(self):
        first = lifecycle('a', STOPPED)
        second = lifecycle('a', STOPPED)
        self.delay.add(first, 100)
        self.delay.add(second, 110)
        self.assertEqual([], self.delay.due(115))
        self.assertEqual([second], self.delay.due(125))

    def test_due_in_deadline_order(self):
        events = [lifecycle(name, STOPPED) for name in 'cab']
        for offset, event in enumerate(events):
            self.delay.add(event, 100 + offset)
        self.assertEqual(100 + 15, self.delay.next_deadline())
        self.assertEqual(events, self.delay.due(200))

    def test_zero_delay_passes_stopped(self):
        delay = lifecycle_events.StoppedEventDelay(0)
        stopped = lifecycle('a', STOPPED)
        self.assertEqual([stopped], delay.add(stopped, 0))


class TestDriverCase(base.BaseTestCase):

    def setUp(self):
        super(TestDriverCase, self).setUp()
        self.recorder = Recorder()

    def make_host(self, uri=TEST_URI, **kwargs):
        host = host_mod.Host(uri, self.recorder.lifecycle,
                             self.recorder.connection, **kwargs)
        self.addCleanup(host.cleanup)
        return host

    def define(self, host):
        domain_uuid = uuidutils.generate_uuid()
        dom = host.define_domain(DOMAIN_XML % {
            'name': 'unit-%s' % domain_uuid[:8], 'uuid': domain_uuid})
        self.addCleanup(self._remove, host, domain_uuid)
        return dom, domain_uuid

    @staticmethod
    def _remove(host, domain_uuid):
        conn = libvirt.open(TEST_URI)
        try:
            dom = conn.lookupByUUIDString(domain_uuid)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        except libvirt.libvirtError:
            pass
        finally:
            conn.close()


class HostDispatchFakeClockTest(TestDriverCase):
    """Dispatch and the reboot filter inside Host, with no threads.

    The callbacks are called as libvirt's event thread would call them and
    the dispatcher's work is done with ``_dispatch()`` in the test thread.
    """

    def setUp(self):
        super(HostDispatchFakeClockTest, self).setUp()
        self.clock = FakeClock()
        self.host = self.make_host(clock=self.clock, stopped_event_delay=15)
        self.conn = self.host.get_connection()
        self.dom, self.uuid = self.define(self.host)

    def fire(self, event, detail):
        self.host._lifecycle_callback(self.conn, self.dom, event, detail,
                                      None)

    def test_callback_only_queues(self):
        self.fire(libvirt.VIR_DOMAIN_EVENT_STARTED,
                  libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED)
        self.assertEqual([], self.recorder.transitions(self.uuid))
        self.host._dispatch()
        self.assertEqual([STARTED], self.recorder.transitions(self.uuid))

    def test_untracked_events_are_not_queued(self):
        queued = len(self.host._events)
        self.fire(libvirt.VIR_DOMAIN_EVENT_DEFINED,
                  libvirt.VIR_DOMAIN_EVENT_DEFINED_ADDED)
        self.fire(libvirt.VIR_DOMAIN_EVENT_SHUTDOWN,
                  libvirt.VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED)
        self.assertEqual(queued, len(self.host._events))

    def test_reboot_stop_is_dropped(self):
        self.fire(libvirt.VIR_DOMAIN_EVENT_STOPPED,
                  libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
        self.host._dispatch()
        self.clock.advance(14)
        self.fire(libvirt.VIR_DOMAIN_EVENT_STARTED,
                  libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED)
        self.host._dispatch()
        self.clock.advance(60)
        self.host._dispatch()
        self.assertEqual([STARTED], self.recorder.transitions(self.uuid))

    def test_stop_is_delivered_after_the_delay(self):
        self.fire(libvirt.VIR_DOMAIN_EVENT_STOPPED,
                  libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN)
        self.host._dispatch()
        self.assertEqual(15, self.host._wait_timeout())
        self.clock.advance(14.9)
        self.host._dispatch()
        self.assertEqual([], self.recorder.transitions(self.uuid))
        self.clock.advance(0.1)
        self.assertEqual(0, self.host._wait_timeout())
        self.host._dispatch()
        self.assertEqual([STOPPED], self.recorder.transitions(self.uuid))
        self.assertIsNone(self.host._wait_timeout())

    def test_order_is_kept(self):
        for event, detail in (
                (libvirt.VIR_DOMAIN_EVENT_STARTED,
                 libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED),
                (libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                 libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED),
                (libvirt.VIR_DOMAIN_EVENT_RESUMED,
                 libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED),
                (libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED,
                 libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY)):
            self.fire(event, detail)
        self.host._dispatch()
        self.assertEqual([STARTED, PAUSED, RESUMED, SUSPENDED],
                         self.recorder.transitions(self.uuid))

    def test_handler_error_does_not_stop_dispatch(self):
        calls = []

        def failing(event):
            calls.append(event.transition)
            raise RuntimeError('handler bug')

        self.host._lifecycle_event_handler = failing
        self.fire(libvirt.VIR_DOMAIN_EVENT_STARTED, 0)
        self.fire(libvirt.VIR_DOMAIN_EVENT_SUSPENDED, 0)
        self.host._dispatch()
        self.assertEqual([STARTED, PAUSED], calls)


class HostEventsTest(TestDriverCase):
    """Real events from the test driver through the dispatcher thread."""

    def test_events_reach_the_handler_off_libvirts_thread(self):
        # Runs in whichever mode this test process is in; the probes
        # below run each mode in a process of its own.
        host = self.make_host(stopped_event_delay=0.3)
        host.initialize()
        threading_mode = utils.concurrency_mode_threading()
        self.assertEqual('native threads' if threading_mode else 'eventlet',
                         host.concurrency_mode)
        dom, domain_uuid = self.define(host)
        dom.create()
        dom.suspend()
        dom.resume()
        self.recorder.wait_for(
            lambda: len(self.recorder.transitions(domain_uuid)) == 3)
        self.assertEqual([STARTED, PAUSED, RESUMED],
                         self.recorder.transitions(domain_uuid))
        loop_thread = connection.start_event_loop().ident
        self.assertNotIn(loop_thread,
                         {call[4] for call in self.recorder.calls})
        if threading_mode:
            self.assertEqual({'pyvirt-host-events'},
                             {call[3] for call in self.recorder.calls})

    def test_destroy_and_create_is_a_reboot(self):
        host = self.make_host(stopped_event_delay=1.0)
        host.initialize()
        dom, domain_uuid = self.define(host)
        dom.create()
        dom.destroy()
        dom.create()
        self.recorder.wait_for(
            lambda: self.recorder.transitions(domain_uuid).count(
                STARTED) == 2)
        time.sleep(1.5)
        self.assertEqual([STARTED, STARTED],
                         self.recorder.transitions(domain_uuid))

    def test_stopped_is_delayed(self):
        host = self.make_host(stopped_event_delay=0.5)
        host.initialize()
        dom, domain_uuid = self.define(host)
        dom.create()
        self.recorder.wait_for(
            lambda: self.recorder.transitions(domain_uuid) == [STARTED])
        stopped_at = time.monotonic()
        dom.destroy()
        self.recorder.wait_for(
            lambda: STOPPED in self.recorder.transitions(domain_uuid))
        self.assertGreaterEqual(time.monotonic() - stopped_at, 0.5)

    def test_cleanup_while_another_cleanup_runs(self):
        # nova-compute's shutdown (cleanup_host) and the process that owns
        # the driver may tear the host down at the same time; the second
        # call arrives here while the first waits for the dispatcher.
        host = self.make_host()
        host.initialize()
        join = host._join_dispatcher
        second = []

        def join_after_a_second_cleanup():
            second.append(host.cleanup())
            join()

        host._join_dispatcher = join_after_a_second_cleanup
        host.cleanup()
        self.assertEqual([None], second)
        self.assertIsNone(host._waker)
        self.assertIsNone(host._conn)
        host.initialize()
        self.addCleanup(host.cleanup)
        self.assertIsNotNone(host.get_connection())

    def test_cleanup_drops_held_events_and_stops_the_thread(self):
        def dispatchers():
            return {t for t in threading.enumerate()
                    if t.name == 'pyvirt-host-events'}

        # Other hosts in this worker process may still run theirs.
        others = dispatchers()
        host = self.make_host(stopped_event_delay=30)
        host.initialize()
        self.assertEqual(1, len(dispatchers() - others))
        dom, domain_uuid = self.define(host)
        dom.create()
        dom.destroy()
        deadline = time.monotonic() + WAIT
        while host._delay.pending() != [domain_uuid]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        host.cleanup()
        self.assertEqual(set(), dispatchers() - others)
        self.assertEqual([STARTED], self.recorder.transitions(domain_uuid))
        # Idempotent, and a later initialize() works again.
        host.cleanup()
        host.initialize()
        self.assertEqual(1, host.get_connection().isAlive())


class HostConnectionEventsTest(TestDriverCase):

    def test_connected_is_reported_once(self):
        host = self.make_host()
        host.initialize()
        host.get_connection()
        host.get_version()
        self.recorder.wait_for(lambda: self.recorder.connection_events())
        time.sleep(0.1)
        self.assertEqual([(True, None)], self.recorder.connection_events())

    def test_close_is_reported_once_and_reconnect_follows(self):
        host = self.make_host(reconnect_interval=None)
        host.initialize()
        first = host.get_connection()
        generation = host._generation
        for _repeat in range(2):
            host._close_callback(first, libvirt.VIR_CONNECT_CLOSE_REASON_EOF,
                                 generation)
        self.recorder.wait_for(
            lambda: len(self.recorder.connection_events()) == 2)
        self.assertEqual(
            [(True, None),
             (False, 'Connection to libvirt at test:///default lost: '
                     'end of file from libvirt')],
            self.recorder.connection_events())
        self.assertIsNone(host._conn)

        second = host.get_connection()
        self.assertIsNot(first, second)
        self.recorder.wait_for(
            lambda: len(self.recorder.connection_events()) == 3)
        self.assertEqual((True, None), self.recorder.connection_events()[2])

        # Callbacks were registered again on the new connection.
        dom, domain_uuid = self.define(host)
        dom.create()
        self.recorder.wait_for(
            lambda: self.recorder.transitions(domain_uuid) == [STARTED])

    def test_close_of_an_old_connection_is_ignored(self):
        host = self.make_host()
        host.initialize()
        conn = host.get_connection()
        host._close_callback(conn, libvirt.VIR_CONNECT_CLOSE_REASON_EOF,
                             host._generation - 1)
        time.sleep(0.2)
        self.assertIs(conn, host.get_connection())
        self.assertEqual([(True, None)], self.recorder.connection_events())

    def test_background_reconnect(self):
        host = self.make_host(reconnect_interval=0.1)
        host.initialize()
        first = host.get_connection()
        host._close_callback(first, libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE,
                             host._generation)
        self.recorder.wait_for(
            lambda: len(self.recorder.connection_events()) == 3)
        events = self.recorder.connection_events()
        self.assertEqual(False, events[1][0])
        self.assertIn('keepalive timeout', events[1][1])
        self.assertEqual((True, None), events[2])
        self.assertIsNotNone(host._conn)

    def test_handler_may_call_back_into_host(self):
        seen = []

        def handler(up, reason):
            seen.append((up, host.get_hostname()))

        host = host_mod.Host(TEST_URI, conn_event_handler=handler)
        self.addCleanup(host.cleanup)
        host.initialize()
        deadline = time.monotonic() + WAIT
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual([(True, 'vm')], seen)


class HostErrorsTest(TestDriverCase):

    def test_unreachable_uri_is_named(self):
        uri = 'test:///nonexistent/pyvirt-node.xml'
        host = self.make_host(uri)
        error = self.assertRaises(exception.HypervisorUnavailable,
                                  host.initialize)
        message = str(error)
        self.assertIn('Cannot connect to libvirt at %s (auth scheme none): '
                      % uri, message)
        self.assertIn('pyvirt-node.xml', message)
        self.assertRaises(exception.HypervisorUnavailable,
                          host.get_connection)
        self.recorder.wait_for(lambda: self.recorder.connection_events())
        time.sleep(0.1)
        self.assertEqual([(False, message)],
                         self.recorder.connection_events())

    def test_instance_not_found(self):
        host = self.make_host()
        missing = uuidutils.generate_uuid()

        class Instance(object):
            pass

        instance = Instance()
        instance.uuid = missing
        error = self.assertRaises(exception.InstanceNotFound,
                                  host.get_guest, instance)
        self.assertEqual(missing, error.kwargs['instance_id'])
        self.assertIn(missing, str(error))

    def test_get_guest(self):
        host = self.make_host()
        dom, domain_uuid = self.define(host)

        class Instance(object):
            uuid = domain_uuid

        self.assertEqual(domain_uuid, host.get_guest(Instance()).UUIDString())
        self.assertEqual(domain_uuid,
                         host.get_domain_by_uuid(domain_uuid).UUIDString())

    def test_other_libvirt_errors_propagate(self):
        host = self.make_host()
        self.assertRaises(libvirt.libvirtError,
                          host.get_domain_by_uuid, 'not-a-uuid')


class HostFactsTest(TestDriverCase):

    def test_list_domains(self):
        host = self.make_host()
        dom, domain_uuid = self.define(host)
        everything = [d.UUIDString() for d in host.list_domains()]
        running = [d.UUIDString()
                   for d in host.list_domains(only_running=True)]
        self.assertIn(domain_uuid, everything)
        self.assertNotIn(domain_uuid, running)
        dom.create()
        self.assertIn(domain_uuid, [
            d.UUIDString() for d in host.list_domains(only_running=True)])

    def test_define_domain_takes_xml_objects(self):
        host = self.make_host()
        domain_uuid = uuidutils.generate_uuid()
        self.addCleanup(self._remove, host, domain_uuid)
        doc = xml.parse(DOMAIN_XML % {'name': 'unit-obj-%s' % domain_uuid[:8],
                                      'uuid': domain_uuid})
        dom = host.define_domain(doc)
        self.assertEqual(domain_uuid, dom.UUIDString())

    def test_node_facts(self):
        host = self.make_host()
        # The numbers of libvirt's built-in test node.
        self.assertEqual(16, host.get_cpu_count())
        self.assertEqual(3072, host.get_memory_mb_total())
        # No virNodeGetMemoryStats in the test driver: total - free.
        conn = host.get_connection()
        self.assertEqual(3072 - conn.getFreeMemory() // (1024 * 1024),
                         host.get_memory_mb_used())
        self.assertEqual(libvirt.getVersion(), host.get_libversion())
        self.assertEqual(conn.getVersion(), host.get_version())
        self.assertEqual(conn.getHostname(), host.get_hostname())

    def test_capabilities_are_cached_per_connection(self):
        host = self.make_host(reconnect_interval=None)
        host.initialize()
        caps = host.get_capabilities()
        self.assertIsInstance(caps, xml.Capabilities)
        self.assertIs(caps, host.get_capabilities())
        host._close_callback(host.get_connection(),
                             libvirt.VIR_CONNECT_CLOSE_REASON_EOF,
                             host._generation)
        self.recorder.wait_for(lambda: host._conn is None)
        again = host.get_capabilities()
        self.assertIsNot(caps, again)
        self.assertEqual(caps, again)

    def test_driver_without_domain_capabilities_gets_empty_document(self):
        # libvirt's test driver has no virConnectGetDomainCapabilities; the
        # functional tests check the cache against the embedded QEMU driver.
        host = self.make_host()
        caps = host.get_domain_capabilities('i686', None, 'test')
        self.assertIsInstance(caps, xml.DomainCapabilities)
        self.assertEqual(('i686', 'test'), (caps.arch, caps.domain_type))
        self.assertIsNone(caps.device('disk'))
        self.assertIsNone(caps.os)
        self.assertEqual([], list(caps.cpu_modes))

    def test_domain_capabilities_errors_propagate(self):
        host = self.make_host()
        conn = host.get_connection()

        def refuse(*args):
            raise libvirt.libvirtError('internal error: probe failed')

        internal = libvirt.VIR_ERR_INTERNAL_ERROR
        with mock.patch.object(conn, 'getDomainCapabilities', refuse):
            with mock.patch.object(libvirt.libvirtError, 'get_error_code',
                                   return_value=internal):
                self.assertRaises(libvirt.libvirtError,
                                  host.get_domain_capabilities,
                                  'x86_64', None, 'kvm')


MODE_PROBE = r'''
import json
import sys
import time

from nova import monkey_patch
monkey_patch.patch()

from nova import utils
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host as host_mod

eventlet = utils.get_eventlet()
if eventlet is None:
    import threading as native
    sleep = time.sleep
    spawn = lambda func: native.Thread(target=func, daemon=True).start()
    current = lambda: native.current_thread().name
else:
    native = eventlet.patcher.original('threading')
    sleep = eventlet.sleep
    spawn = eventlet.spawn
    current = lambda: type(eventlet.getcurrent()).__name__
main_thread = native.get_ident()
calls = []


def where():
    ident = native.get_ident()
    if ident == main_thread:
        return 'main OS thread'
    if ident == connection.start_event_loop().ident:
        return 'libvirt event thread'
    return 'other OS thread'


def lifecycle(event):
    calls.append(['lifecycle', event.transition, where(), current()])


def conn_event(up, reason):
    calls.append(['connection', up, where(), current()])


ticks = []


def ticker():
    while True:
        ticks.append(time.monotonic())
        sleep(0.01)


spawn(ticker)
host = host_mod.Host('test:///default', lifecycle, conn_event,
                     stopped_event_delay=0.2)
host.initialize()
uuid = sys.argv[1]
dom = host.define_domain(
    "<domain type='test'><name>mode-%s</name><uuid>%s</uuid>"
    "<memory>65536</memory><os><type>hvm</type></os></domain>"
    % (uuid[:8], uuid))
dom.create()
dom.destroy()
sleep(0.6)
domains = host.list_domains()
sleep(0.1)
before = len(ticks)
# A blocking call (C code holding no GIL) must not stop other threads.
host._concurrency.execute(time.sleep, 0.5)
# The periodic calls' batches run in one worker call in eventlet mode.
periodic = [uuid in host.domain_uuids(), uuid in host.domain_states(),
            uuid in host.active_vcpus(),
            'mode-%s' % uuid[:8] in host.domain_names()]
dom.undefine()
result = {
    'periodic': periodic,
    'mode': host.concurrency_mode,
    'connection': type(host.get_connection()).__name__,
    'domain': type(dom).__name__,
    'listed': sorted({type(d).__name__ for d in domains}),
    'ticks_while_blocked': len(ticks) - before,
    'calls': calls,
}
host.cleanup()
print(json.dumps(result))
'''


class ConcurrencyModeTest(base.BaseTestCase):
    """Each of nova's modes in a child process of its own.

    Monkey patching is process-wide and one-way, and which mode a test
    worker ends up in depends on what test discovery imported, so each
    mode is set up from scratch the way nova-compute does it
    (``nova.monkey_patch.patch()``).
    """

    def probe(self, disable_eventlet):
        env = dict(os.environ)
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        if disable_eventlet:
            env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p])
        proc = subprocess.run(
            [sys.executable, '-W', 'ignore', '-c', MODE_PROBE,
             uuidutils.generate_uuid()],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            universal_newlines=True, timeout=120, cwd=REPO)
        self.assertEqual(0, proc.returncode, proc.stderr)
        return jsonutils.loads(proc.stdout.strip().splitlines()[-1])

    def test_native_threads(self):
        result = self.probe(disable_eventlet=True)
        self.assertEqual('native threads', result['mode'])
        self.assertEqual([True, True, False, True], result['periodic'])
        self.assertEqual('virConnect', result['connection'])
        self.assertEqual('virDomain', result['domain'])
        self.assertEqual(['virDomain'], result['listed'])
        self.assertGreater(result['ticks_while_blocked'], 10)
        # Handlers ran on the dispatcher thread, STOPPED after its delay.
        where = ['other OS thread', 'pyvirt-host-events']
        self.assertEqual([['connection', True] + where,
                          ['lifecycle', STARTED] + where,
                          ['lifecycle', STOPPED] + where],
                         result['calls'])

    def test_eventlet(self):
        result = self.probe(disable_eventlet=False)
        self.assertEqual('eventlet', result['mode'])
        self.assertEqual([True, True, False, True], result['periodic'])
        # Every libvirt object a caller gets runs its calls in eventlet's
        # native thread pool.
        self.assertEqual('Proxy', result['connection'])
        self.assertEqual('Proxy', result['domain'])
        self.assertEqual(['Proxy'], result['listed'])
        # 0.5 s blocked in a native thread; the 10 ms green ticker ran on.
        self.assertGreater(result['ticks_while_blocked'], 10)
        # Handlers ran in a green thread on the hub's OS thread.
        where = ['main OS thread', 'GreenThread']
        self.assertEqual([['connection', True] + where,
                          ['lifecycle', STARTED] + where,
                          ['lifecycle', STOPPED] + where],
                         result['calls'])


class CompletedJobTest(TestDriverCase):
    """libvirt's job-completed statistics, kept until asked for once."""

    class _Dom(object):
        def __init__(self, uuid):
            self.uuid = uuid

        def UUIDString(self):
            return self.uuid

    def test_taken_once(self):
        host = self.make_host()
        stats = {'memory_total': 1 << 27, 'memory_remaining': 0}
        host._job_completed_callback(None, self._Dom('a'), stats, None)
        self.assertEqual(stats, host.completed_job('a'))
        self.assertEqual({}, host.completed_job('a'))

    def test_waits_for_the_event(self):
        host = self.make_host()
        timer = threading.Timer(0.1, host._job_completed_callback,
                                (None, self._Dom('b'), {'disk_total': 1},
                                 None))
        timer.start()
        self.addCleanup(timer.join)
        self.assertEqual({'disk_total': 1},
                         host.completed_job('b', timeout=WAIT))

    def test_bounded(self):
        host = self.make_host()
        for number in range(host_mod.MAX_COMPLETED_JOBS + 10):
            host._job_completed_callback(None, self._Dom(str(number)),
                                         {'n': number}, None)
        self.assertEqual({}, host.completed_job('0'))
        last = str(host_mod.MAX_COMPLETED_JOBS + 9)
        self.assertEqual({'n': host_mod.MAX_COMPLETED_JOBS + 9},
                         host.completed_job(last))
