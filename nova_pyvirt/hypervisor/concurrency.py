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

"""Threads, locks and wake-ups for both of nova 34's concurrency modes.

nova 34 runs in one of two concurrency modes (:func:`nova.utils.
concurrency_mode_threading`):

* native threads: libvirt-python releases the GIL around every C call, so a
  blocking call blocks only its own thread. The dispatcher is a native
  thread.
* eventlet (monkey-patched): every green thread shares one OS thread, so a
  blocking C call would stall them all. As nova's own libvirt driver does,
  connections and the domains they return are wrapped in eventlet's
  ``tpool.Proxy`` (:func:`nova.utils.tpool_wrap`), which runs each call in
  a native worker thread, and the dispatcher is a green thread that waits on
  the pipe with a green ``select``, so handlers run where nova expects them.

:func:`current` returns the primitives of the mode this process runs in.
"""

import os
import select
import threading

import libvirt
from nova import utils


class NativeThreads(object):
    """Concurrency primitives for nova's native-threads mode."""

    name = 'native threads'

    def __init__(self):
        self.write = os.write
        self.read = os.read
        self.select = select.select

    @staticmethod
    def execute(func, *args, **kwargs):
        return func(*args, **kwargs)

    @staticmethod
    def wrap(obj):
        return obj

    @staticmethod
    def lock():
        return threading.Lock()

    @staticmethod
    def native_lock():
        return threading.Lock()

    @staticmethod
    def spawn(func, name):
        thread = threading.Thread(target=func, name=name, daemon=True)
        thread.start()
        return thread.join


class Eventlet(object):
    """Concurrency primitives for nova's eventlet (monkey-patched) mode."""

    name = 'eventlet'

    def __init__(self, eventlet):
        # Imported here, not at module import: in native-threads mode nova
        # forbids importing eventlet at all.
        from eventlet.green import select as green_select
        from eventlet import semaphore
        from eventlet import tpool

        self._eventlet = eventlet
        self._semaphore = semaphore
        self._tpool = tpool
        native_os = eventlet.patcher.original('os')
        # Called from libvirt's native thread: must not touch the hub.
        self.write = native_os.write
        # Called on a non-blocking pipe after select said it is readable.
        self.read = native_os.read
        # Called from the dispatcher green thread: yields to the hub.
        self.select = green_select.select
        self._native_threading = eventlet.patcher.original('threading')
        self._classes = tuple(
            getattr(libvirt, name) for name in dir(libvirt)
            if name.startswith('vir') and
            isinstance(getattr(libvirt, name), type))

    def execute(self, func, *args, **kwargs):
        return self._tpool.execute(func, *args, **kwargs)

    def wrap(self, obj):
        if isinstance(obj, self._tpool.Proxy):
            return obj
        return utils.tpool_wrap(obj, autowrap=self._classes)

    def lock(self):
        return self._semaphore.Semaphore(1)

    def native_lock(self):
        return self._native_threading.Lock()

    def spawn(self, func, name):
        # A green thread of its own for the host's lifetime, as callers
        # and tests of this mode expect (nova's default executor would
        # run it on a pool worker instead).
        return self._eventlet.spawn(func).wait  # noqa: N340


def current():
    """The primitives of the concurrency mode nova runs in."""
    eventlet = utils.get_eventlet()
    if eventlet is None:
        return NativeThreads()
    return Eventlet(eventlet)


class Waker(object):
    """A self-pipe: any thread wakes the dispatcher without locks it shares.

    ``notify`` is safe in libvirt's native event thread in both modes (a
    raw ``write`` on a non-blocking pipe); ``wait`` uses the mode's
    ``select``, so in eventlet mode it yields to the hub instead of blocking.
    """

    def __init__(self, concurrency):
        self._concurrency = concurrency
        self._lock = concurrency.native_lock()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)

    def notify(self):
        # No logging here: this runs in libvirt's event thread.
        with self._lock:
            if self._write_fd is None:
                return
            try:
                self._concurrency.write(self._write_fd, b'.')
            except BlockingIOError:
                pass  # the pipe is full: the dispatcher is awake anyway

    def wait(self, timeout):
        if timeout is not None and timeout < 0:
            timeout = 0
        self._concurrency.select([self._read_fd], [], [], timeout)
        try:
            while self._concurrency.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self):
        with self._lock:
            for fd in (self._read_fd, self._write_fd):
                if fd is not None:
                    os.close(fd)
            self._read_fd = self._write_fd = None
