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

"""The processes of a copy, watched while they run.

``processutils.execute`` runs one command and returns its output once it
has exited. A copy needs either two commands joined by a pipe (``tar -c |
ssh HOST tar -x``) or one whose output is read while it runs (rsync's
progress lines), and it reports progress while it runs. This module starts
those commands with ``subprocess.Popen``, as ``processutils`` does
internally: argv lists, no shell, descriptors closed.

* :func:`pipe` joins the producer's stdout to the consumer's stdin with an
  OS pipe, as a shell pipeline would: the data never passes through this
  process. Progress is read from ``/proc/PID/io`` of one of the two
  commands (the bytes it has read or written so far).
* :func:`stream` hands a command's stdout to a callback as it comes.
* Each command's stderr is kept (the last :data:`STDERR_LIMIT` bytes) for
  the error message.

Every wait is a ``select.select`` on non-blocking descriptors. Under
eventlet, which patches ``select``, a copy therefore yields to the other
green threads; with native threads it blocks only the calling thread.
If the caller is interrupted (an exception in the progress callback, a
killed green thread), the commands are terminated and reaped.
"""

import fcntl
import os
import select
import signal
import subprocess
import time

#: Bytes of each command's stderr kept for error messages.
STDERR_LIMIT = 64 * 1024
#: Capacity asked for the pipe between the two commands of a pipeline.
PIPE_SIZE = 1 << 20
#: Seconds between two calls of a progress callback.
PROGRESS_INTERVAL = 0.25
#: Seconds a stream may stay open once every command has exited.
ORPHAN_GRACE = 2.0
_F_SETPIPE_SZ = 1031
#: What :func:`pipe` can count: ``/proc/PID/io`` field of which command.
PRODUCER_READ = ('producer', 'rchar')
CONSUMER_WRITE = ('consumer', 'wchar')


class Outcome(object):
    """How one command ended: ``argv``, ``returncode``, ``stderr``."""

    def __init__(self, argv, returncode, stderr):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr

    @property
    def ok(self):
        return self.returncode == 0

    @property
    def program(self):
        return os.path.basename(self.argv[0])

    def describe(self):
        """``'ssh' exited with status 255: <stderr>`` (one line each)."""
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = 'signal %d' % -self.returncode
            how = 'was killed by %s' % name
        else:
            how = 'exited with status %s' % self.returncode
        text = '%s %s' % (self.program, how)
        stderr = ' '.join(self.stderr.split())
        if stderr:
            text += ': %s' % stderr
        return text

    def __repr__(self):
        return 'Outcome(%r, %r, %r)' % (self.argv, self.returncode,
                                        self.stderr)


class _Child(object):

    def __init__(self, argv, env, stdin, stdout):
        self.argv = list(argv)
        self.process = subprocess.Popen(
            self.argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
            env=env, close_fds=True)
        self.stderr_fd = self.process.stderr.fileno()
        os.set_blocking(self.stderr_fd, False)
        self._stderr = bytearray()

    @property
    def pid(self):
        return self.process.pid

    def read_stderr(self):
        """Take what stderr has; False once it reached end of file."""
        while True:
            try:
                data = os.read(self.stderr_fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            self._stderr += data
            del self._stderr[:-STDERR_LIMIT]

    def exited(self):
        return self.process.poll() is not None

    def stop(self, timeout=5):
        """Terminate (then kill) the command if it still runs; reap it."""
        if self.process.poll() is None:
            try:
                self.process.terminate()
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
        self._close()

    def wait(self):
        self.process.wait()
        self.read_stderr()
        self._close()

    def _close(self):
        for stream in (self.process.stdin, self.process.stdout,
                       self.process.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass

    def outcome(self):
        return Outcome(self.argv, self.process.returncode,
                       self._stderr.decode('utf-8', 'replace'))


def _grow_pipe(fd):
    """Raise a pipe's capacity to PIPE_SIZE, if the system allows it."""
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def io_counter(pid, field):
    """A field of ``/proc/PID/io`` (``rchar``, ``wchar``); None if gone."""
    try:
        with open('/proc/%d/io' % pid) as handle:
            for line in handle:
                name, _sep, value = line.partition(':')
                if name == field:
                    return int(value)
    except (OSError, ValueError):
        pass
    return None


class _Loop(object):
    """One ``select`` loop over the commands' stderr (and one stdout)."""

    def __init__(self, children, stdout=None, on_output=None, tick=None):
        self.children = children
        self.readers = {c.stderr_fd: c for c in children}
        self.on_output = on_output
        self.tick = tick
        self.out = stdout
        if stdout is not None:
            os.set_blocking(stdout.fileno(), False)
        self._all_exited_at = None

    def run(self):
        last_tick = time.monotonic()
        while self.readers or self.out is not None:
            rlist = list(self.readers)
            if self.out is not None:
                rlist.append(self.out.fileno())
            ready, _w, _x = select.select(rlist, [], [], PROGRESS_INTERVAL)
            for fd in ready:
                child = self.readers.get(fd)
                if child is not None and not child.read_stderr():
                    del self.readers[fd]
            if self.out is not None and self.out.fileno() in ready:
                self._read_output()
            now = time.monotonic()
            if self.tick is not None and now - last_tick >= PROGRESS_INTERVAL:
                last_tick = now
                self.tick()
            if not ready:
                self._forget_orphaned_streams()

    def _read_output(self):
        while True:
            try:
                data = os.read(self.out.fileno(), 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b''
            if not data:
                self.out.close()
                self.out = None
                return
            if self.on_output is not None:
                self.on_output(data)

    def _forget_orphaned_streams(self):
        """Stop waiting for streams :data:`ORPHAN_GRACE` s after the end.

        A grandchild (an ssh connection master, say) may hold a stream
        open long after the command itself is done. A short grace period
        still collects what a grandchild writes as it winds down (rsync's
        ssh passing on the remote side's error).
        """
        if not all(c.exited() for c in self.children):
            return
        now = time.monotonic()
        if self._all_exited_at is None:
            self._all_exited_at = now
        if now - self._all_exited_at < ORPHAN_GRACE:
            return
        for child in list(self.readers.values()):
            child.read_stderr()
        self.readers.clear()
        if self.out is not None:
            self._read_output()
            if self.out is not None:
                self.out.close()
                self.out = None


def _io_reporter(child, field, on_progress):
    def tick():
        value = io_counter(child.pid, field)
        if value is not None:
            on_progress(value)
    return tick


def _environment(env):
    merged = dict(os.environ)
    # Messages in English, whatever the service's locale: they end up in
    # errors and logs, and rsync's progress is parsed.
    merged['LC_ALL'] = 'C'
    if env:
        merged.update(env)
    return merged


def pipe(producer_argv, consumer_argv, on_progress=None,
         count=PRODUCER_READ, env=None):
    """Run ``producer | consumer``.

    :param on_progress: called with the bytes counted so far, at most
        every :data:`PROGRESS_INTERVAL` seconds while the commands run.
    :param count: what is counted: :data:`PRODUCER_READ` (bytes the
        producer has read) or :data:`CONSUMER_WRITE` (bytes the consumer
        has written).
    :returns: ``(producer_outcome, consumer_outcome)``.
    """
    env = _environment(env)
    read_fd, write_fd = os.pipe()
    _grow_pipe(write_fd)
    children = []
    try:
        try:
            children.append(_Child(producer_argv, env, subprocess.DEVNULL,
                                   write_fd))
            children.append(_Child(consumer_argv, env, read_fd,
                                   subprocess.DEVNULL))
        finally:
            # The commands hold their ends now; ours would keep the
            # consumer from ever seeing the end of its input.
            os.close(write_fd)
            os.close(read_fd)
        tick = None
        if on_progress is not None:
            tick = _io_reporter(children[0 if count[0] == 'producer' else 1],
                                count[1], on_progress)
        _Loop(children, tick=tick).run()
        for child in children:
            child.wait()
    except BaseException:
        for child in children:
            child.stop()
        raise
    return children[0].outcome(), children[1].outcome()


def stream(argv, on_output=None, env=None):
    """Run ``argv``, handing each chunk of its stdout to ``on_output``.

    :returns: the command's :class:`Outcome`.
    """
    child = _Child(argv, _environment(env), subprocess.DEVNULL,
                   subprocess.PIPE)
    try:
        _Loop([child], stdout=child.process.stdout,
              on_output=on_output).run()
        child.wait()
    except BaseException:
        child.stop()
        raise
    return child.outcome()
