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

"""The driver's libvirt connection, its events and the host facts behind it.

:class:`Host` owns the one ``virConnect`` of a compute host: it opens it
through :func:`nova_pyvirt.hypervisor.connection.open_connection`, notices
when it closes, reopens it, and is the only code that asks libvirt for domains,
capabilities and node information.

Events travel like this::

    libvirt event loop thread         dispatcher              nova
    (native, runs the callbacks)      (own thread)
    lifecycle/close callback  ──────> translate, delay STOPPED ──> handler
                  deque + self-pipe

The callbacks run in libvirt's event loop thread. They only translate the
event, append it to a deque and write one byte to a pipe; they never log and
never call back into nova. A dispatcher thread owned by the ``Host`` reads
the pipe, holds STOPPED events back for ``stopped_event_delay`` seconds
(a reboot is a STOPPED followed by a STARTED: the STARTED cancels the
pending STOPPED) and calls the handlers, one event at a time, in order.

Threads and wake-ups come from :mod:`~nova_pyvirt.hypervisor.concurrency`
(native threads or eventlet, as nova runs), event translation and the
STOPPED delay from :mod:`~nova_pyvirt.hypervisor.lifecycle_events`.
"""

import collections
import itertools
import time

import libvirt
from nova import exception
from nova.i18n import _
from nova.virt import event as virtevent
from oslo_log import log as logging
from oslo_utils import units

from nova_pyvirt.design import request
from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.hypervisor import concurrency
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host_facts
from nova_pyvirt.hypervisor import lifecycle_events
from nova_pyvirt import xml

LOG = logging.getLogger(__name__)
# Completed-job statistics kept for domains nobody asked about yet.
MAX_COMPLETED_JOBS = 256

# While disconnected, the dispatcher tries to reconnect this often.
RECONNECT_INTERVAL = 10.0
# Domains whose last state change is remembered (see recent_state).
MAX_REMEMBERED_CHANGES = 100000

CLOSE_REASONS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: 'I/O error',
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: 'end of file from libvirt',
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: 'keepalive timeout',
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: 'closed by the client',
}


class Host(object):
    """One libvirt connection, its events, and what it says of the host.

    :param uri: libvirt URI, for example ``qemu:///system``.
    :param lifecycle_event_handler: called with each
        :class:`nova.virt.event.LifecycleEvent`, in order, on the
        dispatcher thread (a green thread in eventlet mode).
    :param conn_event_handler: called as ``(False, reason)`` once when the
        connection is lost or cannot be opened, and ``(True, None)`` when
        it is (re)established; on the dispatcher thread too.
    :param read_only: open the connection read-only.
    :param stopped_event_delay: seconds a STOPPED event is held back.
    :param reconnect_interval: seconds between reconnection attempts while
        disconnected; ``None`` or 0 to reconnect only on
        :meth:`get_connection`.
    :param clock: monotonic time source for the delays.
    """

    def __init__(self, uri, lifecycle_event_handler=None,
                 conn_event_handler=None, read_only=False,
                 stopped_event_delay=lifecycle_events.STOPPED_EVENT_DELAY,
                 reconnect_interval=RECONNECT_INTERVAL,
                 clock=time.monotonic):
        self._open_uri = uri
        # The URI as shown in logs and faults: never with a password.
        self._uri = connection.redact_uri(uri)
        self._lifecycle_event_handler = lifecycle_event_handler
        self._conn_event_handler = conn_event_handler
        self._read_only = read_only
        self._reconnect_interval = reconnect_interval
        self._clock = clock
        self._concurrency = concurrency.current()

        # Connection state, guarded by _lock (a green lock in eventlet
        # mode).  Never taken in libvirt's event thread.
        self._lock = self._concurrency.lock()
        self._conn = None          # a tpool.Proxy in eventlet mode
        self._generation = 0       # counts connections opened
        self._callback_ids = []
        self._reported_up = None   # last state given to conn_event_handler
        self._caps = None
        self._domain_caps = {}
        self._hostname = None
        self._cpu_features = {}
        self._host_cpu_features = None
        # Periodic work on a dense host (see domain_states, active_vcpus):
        # the last power states read in one call, (time, generation,
        # change number when the read began, {uuid: (state, id)}); the
        # change number of the last event or operation of each domain
        # (itertools.count: next() is atomic, the libvirt event thread
        # and callers of forget_state both write); the vCPUs of each
        # running domain, {uuid: (id, vcpus)}.
        self._states = None
        self._changes = {}
        self._change_numbers = itertools.count()
        self._vcpus = {}
        self._memory_stats_unsupported = None

        # Hand-over from libvirt's thread: deque appends and pops are
        # atomic, so the callbacks need no lock.
        self._events = collections.deque()
        self._removed_devices = collections.deque(maxlen=256)
        self._completed_jobs = {}
        self._waker = None
        self._delay = lifecycle_events.StoppedEventDelay(stopped_event_delay)
        self._next_retry = None
        self._stopping = False
        self._join_dispatcher = None
        self._initialized = False

    @property
    def uri(self):
        return self._uri

    @property
    def concurrency_mode(self):
        """``'native threads'`` or ``'eventlet'``."""
        return self._concurrency.name

    # -- set-up and tear-down -------------------------------------------------

    def initialize(self):
        """Start events and open the connection.

        Starts libvirt's default event loop (needed before the first
        connection for events and keepalive), the dispatcher, then opens
        the connection and registers the lifecycle and close callbacks.

        :raises nova_pyvirt.exception.LibvirtConnectionFailed: (a
            ``HypervisorUnavailable``) the connection cannot be opened;
            ``conn_event_handler(False, reason)`` is called too.
        """
        if self._initialized:
            return
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        connection.start_event_loop()
        self._stopping = False
        self._waker = concurrency.Waker(self._concurrency)
        self._join_dispatcher = self._concurrency.spawn(
            self._dispatch_loop, 'pyvirt-host-events')
        self._initialized = True
        # Connection events queued by get_connection() calls made before.
        self._waker.notify()
        LOG.debug('libvirt events for %s are dispatched with %s',
                  self._uri, self._concurrency.name)
        with self._lock:
            if self._conn is not None:
                # Opened before initialize(), without callbacks.
                self._register_callbacks_locked()
        self.get_connection()

    def cleanup(self):
        """Drop held events, stop the dispatcher and close the connection.

        Held STOPPED events are dropped, not delivered: nova syncs power
        states when it starts again.
        """
        with self._lock:
            self._close_locked()
            if not self._initialized:
                return
            # Claimed under the lock: nova-compute's shutdown and its
            # caller may both clean up, from two threads.
            self._initialized = False
            self._stopping = True
            waker = self._waker
        waker.notify()
        self._join_dispatcher()
        self._waker = None
        waker.close()
        self._delay.clear()
        self._events.clear()

    # -- the connection -------------------------------------------------------

    def get_connection(self):
        """The live ``virConnect``, reconnecting if it was lost.

        :raises nova_pyvirt.exception.LibvirtConnectionFailed: (a
            ``HypervisorUnavailable``) no connection can be opened; the
            message names the URI, the auth scheme, libvirt's error and
            the credentials libvirt's lookup missed
            (:func:`~nova_pyvirt.hypervisor.connection.describe_failure`).
        """
        with self._lock:
            conn = self._conn
            if conn is not None and not self._is_alive(conn):
                self._lost_locked(_('Connection to libvirt at %s lost') %
                                  self._uri)
                conn = None
            if conn is None:
                conn = self._connect_locked()
            return conn

    def _is_alive(self, conn):
        try:
            # Client-side state only, no round trip to the daemon.
            return conn.isAlive() == 1
        except libvirt.libvirtError as exc:
            LOG.debug('Connection to %s is broken: %s', self._uri, exc)
            return False

    def _connect_locked(self, retry=False):
        LOG.debug('Connecting to libvirt at %s', self._uri)
        try:
            raw = self._concurrency.execute(
                connection.open_connection, self._open_uri, self._read_only)
        except libvirt.libvirtError as exc:
            scheme, detail = connection.describe_failure(self._open_uri, exc)
            error = pyvirt_exception.LibvirtConnectionFailed(
                uri=self._uri, scheme=scheme, error=detail)
            message = str(error)
            if retry:
                LOG.debug('%s', message)
            else:
                LOG.error('%s', message)
            self._report_locked(False, message)
            if self._initialized and self._reconnect_interval:
                self._next_retry = self._clock() + self._reconnect_interval
            raise error
        self._generation += 1
        self._conn = self._concurrency.wrap(raw)
        self._caps = None
        self._domain_caps = {}
        self._states = None
        self._vcpus = {}
        self._memory_stats_unsupported = None
        self._next_retry = None
        self._register_callbacks_locked()
        LOG.info('Connected to libvirt at %s', self._uri)
        self._report_locked(True, None)
        return self._conn

    def _register_callbacks_locked(self):
        conn = self._conn
        self._callback_ids = []
        if not self._initialized:
            return
        for event_id, callback, what in (
                (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                 self._lifecycle_callback, 'domain lifecycle'),
                (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                 self._device_removed_callback, 'device-removed'),
                (libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                 self._job_completed_callback, 'job-completed')):
            try:
                self._callback_ids.append(conn.domainEventRegisterAny(
                    None, event_id, callback, None))
            except libvirt.libvirtError as exc:
                LOG.warning('libvirt at %(uri)s does not send %(what)s '
                            'events: %(error)s', {'uri': self._uri,
                                                  'what': what,
                                                  'error': exc})
        try:
            conn.registerCloseCallback(self._close_callback,
                                       self._generation)
        except libvirt.libvirtError as exc:
            LOG.warning('libvirt at %(uri)s does not report closed '
                        'connections: %(error)s', {'uri': self._uri,
                                                   'error': exc})

    def _close_locked(self):
        """Unregister the callbacks of the current connection and close it."""
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        for callback_id in self._callback_ids:
            try:
                conn.domainEventDeregisterAny(callback_id)
            except libvirt.libvirtError as exc:
                LOG.debug('Deregistering event callback %(id)s: %(error)s',
                          {'id': callback_id, 'error': exc})
        self._callback_ids = []
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError as exc:
            LOG.debug('Unregistering the close callback: %s', exc)
        try:
            conn.close()
        except libvirt.libvirtError as exc:
            LOG.debug('Closing the connection to %(uri)s: %(error)s',
                      {'uri': self._uri, 'error': exc})

    def _lost_locked(self, reason):
        LOG.warning('%s', reason)
        self._close_locked()
        self._report_locked(False, reason)
        if self._reconnect_interval:
            self._next_retry = self._clock() + self._reconnect_interval

    def _report_locked(self, up, reason):
        """Queue a state change for ``conn_event_handler``, once per change.

        Queued, not called: the handler may call back into this object.
        """
        if self._reported_up == up:
            return
        self._reported_up = up
        if self._conn_event_handler is None:
            return
        self._events.append(('connection', up, reason))
        self._notify()

    # -- libvirt's event thread: no logging, no calls into nova ---------------

    def _lifecycle_callback(self, conn, dom, event, detail, opaque):
        # Any event may change the domain's state: a state read before it
        # is no longer good (see recent_state).
        self._changes[dom.UUIDString()] = next(self._change_numbers)
        transition = lifecycle_events.lifecycle_transition(event, detail)
        if transition is None:
            return
        self._events.append(('lifecycle', virtevent.LifecycleEvent(
            dom.UUIDString(), transition)))
        self._notify()

    def _device_removed_callback(self, conn, dom, alias, opaque):
        self._removed_devices.append((dom.UUIDString(), alias))

    def _job_completed_callback(self, conn, dom, params, opaque):
        # The last completed job per domain: a migration that ends between
        # two polls of its statistics still has its counters here.
        jobs = self._completed_jobs
        jobs.pop(dom.UUIDString(), None)
        jobs[dom.UUIDString()] = dict(params)
        while len(jobs) > MAX_COMPLETED_JOBS:
            # Jobs nobody asked about (saves, dumps) of gone domains.
            jobs.pop(next(iter(jobs)), None)

    def _close_callback(self, conn, reason, generation):
        self._events.append(('closed', generation, reason))
        self._notify()

    def _notify(self):
        waker = self._waker
        if waker is not None:
            # None before initialize(): the dispatcher picks up what was
            # queued when it starts.
            waker.notify()

    # -- the dispatcher -------------------------------------------------------

    def _dispatch_loop(self):
        while not self._stopping:
            self._waker.wait(self._wait_timeout())
            if self._stopping:
                break
            try:
                self._dispatch()
            except Exception:
                LOG.exception('Dispatching libvirt events failed')

    def _wait_timeout(self):
        deadlines = [d for d in (self._delay.next_deadline(),
                                 self._next_retry) if d is not None]
        if not deadlines:
            return None
        return max(0, min(deadlines) - self._clock())

    def _dispatch(self):
        """Handle what arrived, then what fell due."""
        while self._events:
            item = self._events.popleft()
            kind = item[0]
            if kind == 'lifecycle':
                for event in self._delay.add(item[1], self._clock()):
                    self._emit(event)
            elif kind == 'closed':
                self._handle_close(item[1], item[2])
            elif kind == 'connection':
                self._call_conn_handler(item[1], item[2])
        for event in self._delay.due(self._clock()):
            self._emit(event)
        if (self._next_retry is not None and
                self._clock() >= self._next_retry):
            self._retry_connection()

    def _emit(self, event):
        LOG.debug('Lifecycle event of %(uuid)s: %(transition)s',
                  {'uuid': event.uuid,
                   'transition': lifecycle_events.transition_name(
                       event.transition)})
        if self._lifecycle_event_handler is None:
            return
        try:
            self._lifecycle_event_handler(event)
        except Exception:
            LOG.exception('Lifecycle event handler failed on %s', event)

    def _call_conn_handler(self, up, reason):
        try:
            self._conn_event_handler(up, reason)
        except Exception:
            LOG.exception('Connection event handler failed')

    def _handle_close(self, generation, reason):
        with self._lock:
            if self._conn is None or generation != self._generation:
                return  # an older connection, already replaced or closed
            self._lost_locked(
                _('Connection to libvirt at %(uri)s lost: %(reason)s') % {
                    'uri': self._uri,
                    'reason': CLOSE_REASONS.get(
                        reason, 'close reason %s' % reason)})
        # Anything still queued is from the dead connection; the close
        # event itself was handled in order after it.

    def _retry_connection(self):
        if not self._lock.acquire(blocking=False):
            return  # a caller of get_connection is connecting right now
        try:
            if self._conn is not None:
                self._next_retry = None
                return
            try:
                self._connect_locked(retry=True)
            except exception.HypervisorUnavailable:
                pass  # _connect_locked planned the next attempt
        finally:
            self._lock.release()

    # -- domains --------------------------------------------------------------

    def device_removed(self, uuid, alias):
        """True (once) if libvirt reported ``alias`` of ``uuid`` removed."""
        try:
            self._removed_devices.remove((uuid, alias))
        except ValueError:
            return False
        return True

    def completed_job(self, uuid, timeout=0, poll=0.05):
        """Statistics libvirt sent when a job of ``uuid`` completed.

        Taken once; waits up to ``timeout`` seconds for the event, which
        comes a moment after the call that ran the job returned. ``{}``
        when none came.
        """
        deadline = time.monotonic() + timeout
        while True:
            stats = self._completed_jobs.pop(uuid, None)
            if stats is not None or time.monotonic() >= deadline:
                return stats or {}
            time.sleep(poll)

    def get_guest(self, instance):
        """The ``virDomain`` of a nova instance.

        :raises nova.exception.InstanceNotFound: libvirt has no such domain.
        """
        return self.get_domain_by_uuid(instance.uuid)

    def get_domain_by_uuid(self, uuid):
        """The ``virDomain`` with this UUID string.

        :raises nova.exception.InstanceNotFound: libvirt has no such domain.
        """
        conn = self.get_connection()
        try:
            return conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise exception.InstanceNotFound(instance_id=uuid)
            raise

    def list_domains(self, only_running=False):
        """Every ``virDomain`` libvirt knows, or only the running ones."""
        flags = libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE if only_running else 0
        domains = self.get_connection().listAllDomains(flags)
        # A tpool.Proxy wraps returned objects but not lists of them.
        return [self._concurrency.wrap(dom) for dom in domains]

    def domain_uuids(self):
        """The UUID of every domain: one listing call, no call per domain.

        (A domain's UUID and name are kept in its handle: reading them is
        no round trip.)
        """
        return self._concurrency.execute(
            lambda conn: [d.UUIDString() for d in conn.listAllDomains(0)],
            self.get_connection())

    def domain_names(self):
        """The name of every domain, as :meth:`domain_uuids`."""
        return self._concurrency.execute(
            lambda conn: [d.name() for d in conn.listAllDomains(0)],
            self.get_connection())

    def domain_states(self):
        """``{uuid: (libvirt state, id)}`` of every domain, in one call.

        ``virConnectGetAllDomainStats`` with the state group only, so the
        cost is one round trip whatever the number of domains (drivers
        without it: ``listAllDomains`` and each domain's state).  The
        result is remembered for :meth:`recent_state`.
        """
        conn = self._connection_for_states()
        generation = self._generation
        taken = self._clock()
        # Numbered before the read: an event or operation that comes while
        # libvirt answers is numbered after, and wins over what was read.
        began = next(self._change_numbers)
        states = self._concurrency.execute(_read_states, conn)
        self._states = (taken, generation, began, states)
        return states

    def _connection_for_states(self):
        if len(self._changes) > MAX_REMEMBERED_CHANGES:
            # Domains come and go: forget every change and, to stay on the
            # safe side, every state read before.
            self._states = None
            self._changes = {}
        return self.get_connection()

    def recent_state(self, uuid, max_age):
        """``(state, id)`` from :meth:`domain_states` if read recently.

        None when the last read is older than ``max_age`` seconds, was made
        on an earlier connection, did not include the domain, or a
        lifecycle event of the domain arrived, or :meth:`forget_state` was
        called for it, after that read began.
        """
        states = self._states
        if (states is None or states[1] != self._generation or
                self._clock() - states[0] > max_age or
                self._changes.get(uuid, -1) > states[2]):
            return None
        return states[3].get(uuid)

    def forget_state(self, uuid):
        """A state of ``uuid`` read until now is no longer good."""
        self._changes[uuid] = next(self._change_numbers)

    def active_vcpus(self):
        """vCPUs of every running domain, ``{uuid: count}``.

        One ``listAllDomains`` call; a domain's count is asked for only the
        first time it is seen running with its current id.  A running
        domain's maximum vCPUs cannot change until it stops, and a domain
        started again gets a new id.
        """
        conn = self.get_connection()
        known = self._vcpus
        current = self._concurrency.execute(_read_vcpus, conn, known)
        self._vcpus = current
        return {uuid: entry[1] for uuid, entry in current.items()}

    def define_domain(self, xml_text):
        """Define (or redefine) a persistent domain; returns the virDomain.

        :param xml_text: domain XML, or an object with ``to_xml()``.
        """
        if hasattr(xml_text, 'to_xml'):
            xml_text = xml_text.to_xml()
        return self.get_connection().defineXML(xml_text)

    # -- host facts -----------------------------------------------------------

    def get_capabilities(self):
        """:class:`nova_pyvirt.xml.Capabilities`, read once per connection."""
        conn = self.get_connection()
        caps = self._caps
        if caps is None or caps[0] != self._generation:
            generation = self._generation
            caps = (generation,
                    xml.Capabilities.from_xml(conn.getCapabilities()))
            self._caps = caps
        return caps[1]

    def get_domain_capabilities(self, arch, machine, virt_type):
        """:class:`nova_pyvirt.xml.DomainCapabilities`, cached.

        Read once per ``(arch, machine, virt_type)`` and connection.
        ``machine`` may be ``None`` (the default machine type of ``arch``).
        """
        conn = self.get_connection()
        key = (self._generation, arch, machine, virt_type)
        caps = self._domain_caps.get(key)
        if caps is None:
            caps = host_facts.read_domain_capabilities(conn, arch, machine,
                                                       virt_type)
            self._domain_caps[key] = caps
        return caps

    def host_facts(self):
        """:class:`nova_pyvirt.design.request.HostFacts` of this host."""
        caps = self.get_capabilities()
        arch = caps.host.cpu.arch
        if arch not in self._cpu_features:
            self._cpu_features[arch] = host_facts.known_cpu_features(arch)
        return request.HostFacts(caps, self.get_domain_capabilities,
                                 self._cpu_features[arch],
                                 self.get_host_cpu_features())

    def get_host_cpu_features(self):
        """Every feature of the host CPU, read once per connection."""
        caps = self.get_capabilities()
        cached = self._host_cpu_features
        if cached is None or cached[0] is not caps:
            cached = (caps, host_facts.host_cpu_features(
                self.get_connection(), caps))
            self._host_cpu_features = cached
        return cached[1]

    def get_version(self):
        """Hypervisor (QEMU) version as libvirt encodes it (7002000)."""
        return self.get_connection().getVersion()

    def get_libversion(self):
        """libvirt version as libvirt encodes it (9000000)."""
        return self.get_connection().getLibVersion()

    def get_hostname(self):
        """The hypervisor's host name, as first seen.

        nova keys the compute node on it, so a later change is logged and
        ignored until nova-compute restarts.
        """
        hostname = self.get_connection().getHostname()
        if self._hostname is None:
            self._hostname = hostname
        elif hostname != self._hostname:
            LOG.error('libvirt at %(uri)s now reports the host name '
                      '%(new)s; still using %(old)s until nova-compute '
                      'restarts', {'uri': self._uri, 'new': hostname,
                                   'old': self._hostname})
        return self._hostname

    def get_cpu_count(self):
        """Logical CPUs of the host (virNodeGetInfo)."""
        return self.get_connection().getInfo()[2]

    def get_memory_mb_total(self):
        """Host memory in MiB (virNodeGetInfo)."""
        return self.get_connection().getInfo()[1]

    def get_memory_mb_used(self):
        """Host memory in use in MiB: total - free - buffers - page cache.

        From virNodeGetMemoryStats; drivers without it (libvirt's test
        driver) fall back to total - free from virNodeGetFreeMemory.
        """
        conn = self.get_connection()
        generation = self._generation
        if self._memory_stats_unsupported != generation:
            try:
                stats = conn.getMemoryStats(
                    libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                    raise
                # Asked once per connection, not once per audit.
                self._memory_stats_unsupported = generation
        if self._memory_stats_unsupported == generation:
            total = conn.getInfo()[1]
            return total - conn.getFreeMemory() // units.Mi
        used_kib = stats['total'] - sum(
            stats.get(key, 0) for key in ('free', 'buffers', 'cached'))
        return used_kib // units.Ki


def _read_states(conn):
    try:
        return {dom.UUIDString(): (stats.get('state.state',
                                             libvirt.VIR_DOMAIN_NOSTATE),
                                   dom.ID())
                for dom, stats in conn.getAllDomainStats(
                    libvirt.VIR_DOMAIN_STATS_STATE)}
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
    return {dom.UUIDString(): (dom.state()[0], dom.ID())
            for dom in conn.listAllDomains(0)}


def _read_vcpus(conn, known):
    current = {}
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        uuid = dom.UUIDString()
        dom_id = dom.ID()
        entry = known.get(uuid)
        if entry is None or entry[0] != dom_id:
            try:
                entry = (dom_id, dom.maxVcpus())
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in (
                        libvirt.VIR_ERR_NO_DOMAIN,
                        libvirt.VIR_ERR_OPERATION_INVALID):
                    raise
                continue   # stopped or gone since it was listed
        current[uuid] = entry
    return current


def _ignore_libvirt_error(context, error):
    # libvirt prints every error to stderr unless a handler is set; the
    # errors reach the caller as exceptions anyway.
    pass
