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

"""Another compute host's filesystem, over ssh or rsync.

:func:`transport_for` returns the :class:`RemoteFilesystem` that
nova's ``[libvirt] remote_filesystem_transport`` names: :class:`SshFilesystem`
(``ssh``) or :class:`RsyncFilesystem` (``rsync``). Both create and remove
directories, test for files and detect shared storage with short commands
run over ssh; they differ in how a file is copied.

What a copy keeps
-----------------
A copy moves one regular file byte for byte, and never converts it: a
qcow2 overlay arrives as the same qcow2 overlay, naming the same backing
file. Holes stay holes: the destination file is sparse where the source
is. The file's mode and modification time are kept; its owner is the user
that writes it on the destination (root for nova-compute). An existing
destination file is replaced. A copy never changes its source. When a copy
fails (connection lost, destination disk full, a command killed or
missing), the error names the host, the paths and the stderr of the
commands, and the partial destination file is removed when the
destination can still be reached.

* ``ssh``: GNU tar streams the file through ssh into GNU tar on the other
  host (``tar --create | ssh HOST tar --extract``), the two joined by an OS
  pipe, as a shell pipeline would (:mod:`.pipeline`). A file with holes is
  archived with ``--sparse``: tar finds the holes with ``SEEK_DATA`` /
  ``SEEK_HOLE`` and sends only the data, and the receiving tar recreates
  them, so the bytes on the wire are about the allocated size plus tar
  headers and ssh's framing. tar 1.34 moves sparse data 512 bytes per
  system call, which costs more CPU than sending a few zero bytes, so a
  file whose holes are small (at most 1 MiB or 1/64 of its allocated
  size, see :func:`has_holes`) goes as a plain member: qcow2 files written
  by QEMU usually are such files. The receiving tar writes under the final
  name (``--transform`` renames the member); after a failure, a second ssh
  command removes what it wrote. A copy from the other host is written
  under a temporary name here and renamed once complete. ``on_progress``
  is fed from ``/proc/PID/io`` of the local tar (bytes read from the
  source, or written to the destination). Needs GNU tar and coreutils on
  both hosts.
* ``rsync``: ``rsync --sparse --whole-file`` over ssh. rsync writes its
  own temporary file next to the destination and renames it, and removes
  it when the transfer fails; this module then also looks for one left
  behind. ``--sparse`` makes the receiver turn runs of zeros back into
  holes, but rsync's sender reads holes as zeros and sends them: a sparse
  file costs its full apparent size on the wire unless ``[pyvirt]
  remote_copy_compression`` is on (zeros then compress to almost nothing,
  at the cost of CPU). qcow2 files have few holes, so this matters mostly
  for raw disks. ``--inplace`` is not used (rsync 3.2.7 accepts it with
  ``--sparse``): the temporary file keeps a half-copied disk from ever
  appearing under its real name. Progress comes from
  ``--info=progress2``.

Commands and quoting
--------------------
Every local command is an argv list; no local shell is ever involved.

There is one shell in the path, on the remote host, and it cannot be
avoided: ssh has no way to pass an argv. It joins its command arguments
with spaces into one string, which the remote sshd hands to the remote
user's login shell (``$SHELL -c STRING``). Every remote command is
therefore built here as an argv list and turned into that one string by
:func:`remote_command`, which quotes *every* argument with
:func:`shlex.quote`. The remote shell then sees exactly the words
intended, and nothing in a path (spaces, quotes, ``$``, ``;``, backquotes)
is interpreted. The remote user's login shell must be a POSIX shell (sh,
dash, bash, zsh, ksh), as for any account nova uses for migrations.

rsync's ``-e`` value (the ssh command rsync runs) is not given to a shell
either: rsync splits it into an argv itself, on spaces, honouring single
and double quotes, with a doubled quote standing for a literal one and no
backslash escapes. :func:`quote_rsync_arg` quotes for that parser. The
paths of an rsync copy go to the remote rsync through its protocol
(``--secluded-args``, ``-s``), not through the remote shell.

ssh itself expands ``~``, ``%`` tokens and ``${VAR}`` in the identity and
known-hosts file names, and splits ``-o`` values on whitespace. Both are
given as ``-o IdentityFile=`` and ``-o UserKnownHostsFile=`` values, quoted
for ssh's own parser, with a literal ``%`` written ``%%``; a file name
containing ``${`` is refused.

Every ssh command runs with ``BatchMode=yes`` (never a prompt),
``ConnectTimeout`` from the options, ``ServerAliveInterval=15`` and
``ServerAliveCountMax=4`` (a dead connection fails within about a minute
instead of hanging), no connection sharing (``ControlMaster=no``,
``ControlPath=none``), no forwarding, and ``LogLevel=ERROR``.
"""

import fnmatch
import os
import re
import shlex
import time

from nova import exception
from nova.i18n import _
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import uuidutils

from nova_pyvirt import exception as pyvirt_exception
from nova_pyvirt.migration import pipeline

LOG = logging.getLogger(__name__)

SSH = 'ssh'
RSYNC = 'rsync'
TAR = 'tar'

#: The options this module reads, with the defaults used while an option
#: is not registered. They are ``[pyvirt]`` options, except those of
#: OPTION_GROUPS.
OPTION_DEFAULTS = {
    'remote_filesystem_transport': 'ssh',
    'remote_ssh_user': None,
    'remote_ssh_port': 22,
    'remote_ssh_identity_file': None,
    'remote_ssh_strict_host_key_checking': True,
    'remote_ssh_known_hosts_file': None,
    'remote_ssh_connect_timeout': 30,
    'remote_copy_compression': False,
}

#: nova's own options among them, by their group: the transport is the
#: one the libvirt driver's option names.
OPTION_GROUPS = {'remote_filesystem_transport': 'libvirt'}

SERVER_ALIVE_INTERVAL = 15
SERVER_ALIVE_COUNT = 4
PART_SUFFIX = '.pyvirt-part'
#: ``tar --sparse`` is used when a file's holes exceed both of these: at
#: least SPARSE_MIN_HOLES bytes, and more than 1/SPARSE_HOLE_RATIO of the
#: allocated size.
SPARSE_MIN_HOLES = 1024 * 1024
SPARSE_HOLE_RATIO = 64
SHARED_MARKER_PREFIX = '.pyvirt-shared-storage-'

# How GNU tar reports a write the file system cut short (ENOSPC, EDQUOT,
# EFBIG): without the reason.
SHORT_WRITE = ': Wrote only '
# Remote cleanup after a failed copy must not hang on a dead network.
_CLEANUP_CONNECT_TIMEOUT = 10
_RSYNC_PROGRESS = re.compile(r'^\s*([\d,.]+)\s+(\d+)%')


class RemoteFilesystemError(exception.NovaException):
    """A command on, or a copy to or from, another host failed.

    ``host``, ``path`` and ``outcomes`` (the :class:`pipeline.Outcome` of
    each failed command, with its stderr) are kept as attributes.
    """

    msg_fmt = _('%(action)s %(path)s on host %(host)s failed: %(reason)s')

    def __init__(self, message=None, outcomes=(), **kwargs):
        self.host = kwargs.get('host')
        self.path = kwargs.get('path')
        self.outcomes = list(outcomes)
        super(RemoteFilesystemError, self).__init__(message, **kwargs)


class RemoteCopyError(RemoteFilesystemError):
    msg_fmt = _('Copying %(source)s to %(destination)s failed: %(reason)s')


def _option(conf, name):
    group = getattr(conf, OPTION_GROUPS.get(name, 'pyvirt'), None)
    default = OPTION_DEFAULTS[name]
    if group is None:
        return default
    return getattr(group, name, default)


def remote_command(argv):
    """The one string ssh sends for ``argv``: every argument quoted."""
    return ' '.join(shlex.quote(str(arg)) for arg in argv)


def quote_rsync_arg(arg):
    """Quote ``arg`` for rsync's own split of its ``-e`` value."""
    if arg and not any(c in arg for c in ' \t\'"'):
        return arg
    return "'%s'" % arg.replace("'", "''")


def _ssh_file_name(path, option):
    """``path`` as ssh wants it where it expands ``%`` and ``${``."""
    if '${' in path or '\n' in path or '\0' in path:
        raise pyvirt_exception.InvalidHostConfiguration(
            option=option, value=path,
            reason='ssh would expand ${...} in it; use a file name without '
                   '"${" or line breaks')
    return path.replace('%', '%%')


def _ssh_config_quote(value):
    """Quote a ``-o Key=value`` value for ssh's configuration parser."""
    return '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"')


def _check_host(host):
    if (not host or not isinstance(host, str) or host.startswith('-') or
            any(c.isspace() or ord(c) < 32 for c in host) or
            '@' in host or '/' in host):
        raise ValueError('invalid host name %r' % (host,))


def _check_path(path):
    if (not isinstance(path, str) or not os.path.isabs(path) or
            '\0' in path or '\n' in path or
            os.path.normpath(path) != path or path == '/'):
        raise ValueError('%r is not a normalized absolute path of a file or '
                         'directory' % (path,))


def _part_name(name):
    """A unique temporary name for a copy of ``name``.

    Only ``[A-Za-z0-9._-]``: it is also used in tar's ``--transform``.
    """
    safe = re.sub(r'[^A-Za-z0-9._-]', '_', name)[:100]
    unique = uuidutils.generate_uuid(dashed=False)[:12]
    return '.%s.%s%s' % (safe, unique, PART_SUFFIX)


def has_holes(size, allocated):
    """Whether a file's holes are worth ``tar --sparse`` (see the docs)."""
    holes = size - allocated
    return holes > max(SPARSE_MIN_HOLES, allocated // SPARSE_HOLE_RATIO)


def _tar_transform(member):
    """tar's ``--transform`` expression that renames anything to ``member``.

    A sed ``s`` command: the delimiter is a character ``member`` does not
    contain, and ``\\`` and ``&`` are escaped in the replacement.
    """
    for delimiter in ',|#:;@!%^~+=':
        if delimiter not in member:
            break
    else:
        raise ValueError('cannot rename a tar member to %r' % member)
    replacement = member.replace('\\', '\\\\').replace('&', '\\&')
    return 's%s.*%s%s%s' % (delimiter, delimiter, replacement, delimiter)


def _tar_create(directory, name, member, sparse):
    """tar writing ``directory/name`` to stdout as member ``member``."""
    argv = [TAR, '--create', '--file=-', '--format=gnu', '--no-recursion']
    if sparse:
        argv.append('--sparse')
    return argv + ['--directory', directory,
                   '--transform', _tar_transform(member), '--', name]


def _tar_extract(directory, member):
    """tar reading stdin and writing only ``member`` into ``directory``."""
    return [TAR, '--extract', '--file=-', '--no-same-owner',
            '--directory', directory, '--', member]


def _rsync_temp_pattern(name):
    """The ``find -name`` / fnmatch pattern of rsync's temporary files."""
    escaped = re.sub(r'([*?\[\]\\])', r'\\\1', name)
    return '.%s.??????' % escaped


class SshSettings(object):
    """How to reach other hosts with ssh; see the module documentation."""

    def __init__(self, user=None, port=22, identity_file=None,
                 strict_host_key_checking=True, known_hosts_file=None,
                 connect_timeout=30, program=SSH):
        self.user = user
        self.port = int(port) if port is not None else None
        self.identity_file = identity_file
        self.strict_host_key_checking = bool(strict_host_key_checking)
        self.known_hosts_file = known_hosts_file
        self.connect_timeout = int(connect_timeout)
        self.program = program

    @classmethod
    def from_conf(cls, conf):
        return cls(
            user=_option(conf, 'remote_ssh_user'),
            port=_option(conf, 'remote_ssh_port'),
            identity_file=_option(conf, 'remote_ssh_identity_file'),
            strict_host_key_checking=_option(
                conf, 'remote_ssh_strict_host_key_checking'),
            known_hosts_file=_option(conf, 'remote_ssh_known_hosts_file'),
            connect_timeout=_option(conf, 'remote_ssh_connect_timeout'))

    def argv(self, compression=False, connect_timeout=None):
        """``ssh`` and its options, without the host."""
        strict = self.strict_host_key_checking
        argv = [self.program,
                '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=%d' % (connect_timeout or
                                             self.connect_timeout),
                '-o', 'ServerAliveInterval=%d' % SERVER_ALIVE_INTERVAL,
                '-o', 'ServerAliveCountMax=%d' % SERVER_ALIVE_COUNT,
                '-o', 'ControlMaster=no',
                '-o', 'ControlPath=none',
                '-o', 'ClearAllForwardings=yes',
                '-o', 'ForwardAgent=no',
                '-o', 'ForwardX11=no',
                '-o', 'LogLevel=ERROR',
                '-o', 'StrictHostKeyChecking=%s' % ('yes' if strict
                                                    else 'no')]
        if self.known_hosts_file:
            known = _ssh_file_name(self.known_hosts_file,
                                   'remote_ssh_known_hosts_file')
            argv += ['-o', 'UserKnownHostsFile=%s' % _ssh_config_quote(known)]
        elif not strict:
            # Accept any host key and record none.
            argv += ['-o', 'UserKnownHostsFile=/dev/null']
        if self.port is not None:
            argv += ['-p', str(self.port)]
        if self.user:
            argv += ['-l', self.user]
        if self.identity_file:
            # Not "-i": ssh checks an -i file name as given but later reads
            # it with % expanded, so no spelling of "%" works there.
            identity = _ssh_file_name(self.identity_file,
                                      'remote_ssh_identity_file')
            argv += ['-o', 'IdentityFile=%s' % _ssh_config_quote(identity),
                     '-o', 'IdentitiesOnly=yes']
        if compression:
            argv.append('-C')
        return argv

    def command(self, host, remote_argv, compression=False,
                connect_timeout=None):
        """``ssh ... -- HOST 'quoted remote argv'``."""
        _check_host(host)
        return (self.argv(compression, connect_timeout) +
                ['--', host, remote_command(remote_argv)])

    def rsync_shell(self):
        """The ssh command as rsync's ``-e`` value."""
        return ' '.join(quote_rsync_arg(arg) for arg in self.argv())


class RemoteFilesystem(object):
    """Files on another compute host; see the module documentation.

    Every ``host`` is a host name or address (no user: that is
    ``[pyvirt] remote_ssh_user``); every path is absolute. The same path
    string may name different directories on the two hosts.
    """

    name = None

    def __init__(self, ssh_settings, compression=False):
        self.ssh = ssh_settings
        self.compression = bool(compression)

    @classmethod
    def from_conf(cls, conf):
        return cls(SshSettings.from_conf(conf),
                   compression=_option(conf, 'remote_copy_compression'))

    # -- short commands ------------------------------------------------------

    def _remote(self, action, host, path, remote_argv, connect_timeout=None):
        """Run ``remote_argv`` on ``host``; returns stdout."""
        argv = self.ssh.command(host, remote_argv,
                                connect_timeout=connect_timeout)
        try:
            out, _err = processutils.execute(*argv)
        except processutils.ProcessExecutionError as error:
            outcome = pipeline.Outcome(argv, error.exit_code,
                                       error.stderr or '')
            raise RemoteFilesystemError(
                action=action, host=host, path=path,
                reason='%s (command: %s)' % (outcome.describe(),
                                             remote_command(remote_argv)),
                outcomes=[outcome]) from None
        return out

    def create_dir(self, host, path):
        """Create ``path`` and its missing parents on ``host``."""
        _check_path(path)
        self._remote('Creating directory', host, path,
                     ['mkdir', '-p', '--', path])

    def remove_dir(self, host, path):
        """Remove ``path`` and everything in it; nothing if it is gone."""
        _check_path(path)
        if os.path.normpath(path) == '/':
            raise ValueError('refusing to remove / on %s' % host)
        self._remote('Removing directory', host, path,
                     ['rm', '-rf', '--', path])

    def exists(self, host, path):
        """Whether ``path`` exists on ``host`` (symbolic links followed)."""
        _check_path(path)
        argv = self.ssh.command(host, ['test', '-e', path])
        try:
            processutils.execute(*argv)
        except processutils.ProcessExecutionError as error:
            if error.exit_code == 1:
                return False
            outcome = pipeline.Outcome(argv, error.exit_code,
                                       error.stderr or '')
            raise RemoteFilesystemError(
                action='Looking for', host=host, path=path,
                reason=outcome.describe(), outcomes=[outcome]) from None
        return True

    def is_shared_storage(self, host, path):
        """Whether the local directory ``path`` is ``path`` on ``host``.

        Writes a uniquely named marker file into ``path`` here, looks for
        it on ``host``, and removes it. With NFS and similar, the remote
        host must see new files at once (no negative lookup caching).
        """
        _check_path(path)
        marker = os.path.join(
            path, SHARED_MARKER_PREFIX + uuidutils.generate_uuid(dashed=False))
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        try:
            shared = self.exists(host, marker)
        finally:
            os.unlink(marker)
        LOG.debug('%s is %son storage shared with %s', path,
                  '' if shared else 'not ', host)
        return shared

    def _source_sizes(self, host, src_path, dest_path):
        """:meth:`_remote_sizes` of a copy's source, failing as a copy."""
        try:
            return self._remote_sizes(host, src_path)
        except RemoteFilesystemError as error:
            raise RemoteCopyError(
                source='%s:%s' % (host, src_path), destination=dest_path,
                host=host, path=src_path, outcomes=error.outcomes,
                reason='; '.join(o.describe() for o in error.outcomes) or
                error.kwargs.get('reason')) from None

    def _remote_sizes(self, host, path):
        """``(apparent size, allocated bytes)`` of ``path`` on ``host``."""
        out = self._remote('Reading the size of', host, path,
                           ['stat', '-L', '-c', '%s %b %B', '--', path])
        try:
            size, blocks, block_size = (int(v) for v in out.split())
        except ValueError:
            raise RemoteFilesystemError(
                action='Reading the size of', host=host, path=path,
                reason='unexpected stat output %r' % out) from None
        return size, blocks * block_size

    def _cleanup_remote(self, host, argv, what):
        """Best effort: run a cleanup command; None, or why it failed."""
        try:
            self._remote('Removing the partial copy', host, what, argv,
                         connect_timeout=_CLEANUP_CONNECT_TIMEOUT)
            return None
        except RemoteFilesystemError as error:
            LOG.warning('Could not remove the partial copy %s on %s: %s',
                        what, host, error)
            return '; '.join(o.describe() for o in error.outcomes)

    # -- copies ------------------------------------------------------------

    def copy_to(self, src_path, host, dest_path, on_progress=None):
        """Copy the local file ``src_path`` to ``dest_path`` on ``host``.

        :param on_progress: called as ``on_progress(bytes_done,
            bytes_total)`` while the copy runs and once at the end;
            ``bytes_total`` is the source's allocated size, and
            ``bytes_done`` counts up to it.
        """
        raise NotImplementedError()

    def copy_from(self, host, src_path, dest_path, on_progress=None):
        """Copy ``src_path`` on ``host`` to the local file ``dest_path``.

        ``on_progress`` as for :meth:`copy_to`; asking for it costs one
        more ssh command (the remote file's size).
        """
        raise NotImplementedError()

    @staticmethod
    def _local_source(src_path, host, dest_path):
        _check_host(host)
        _check_path(src_path)
        _check_path(dest_path)
        destination = '%s:%s' % (host, dest_path)
        try:
            st = os.stat(src_path)
        except OSError as error:
            raise RemoteCopyError(
                source=src_path, destination=destination, host=host,
                path=dest_path,
                reason='cannot read the source: %s' % error.strerror
            ) from None
        if not os.path.isfile(src_path):
            raise RemoteCopyError(
                source=src_path, destination=destination, host=host,
                path=dest_path, reason='the source is not a regular file')
        return st

    @staticmethod
    def _local_destination(host, src_path, dest_path):
        _check_path(dest_path)
        directory = os.path.dirname(dest_path)
        if not os.path.isdir(directory):
            raise RemoteCopyError(
                source='%s:%s' % (host, src_path), destination=dest_path,
                reason='the directory %s does not exist' % directory,
                host=host, path=src_path)
        return directory

    @staticmethod
    def _reporter(on_progress, total):
        if on_progress is None:
            return None

        def report(done):
            on_progress(min(done, total), total)
        return report

    def _done(self, source, destination, started, on_progress, total):
        if on_progress is not None:
            on_progress(total, total)
        LOG.info('Copied %(src)s to %(dst)s over %(transport)s in '
                 '%(secs).1f s',
                 {'src': source, 'dst': destination, 'transport': self.name,
                  'secs': time.monotonic() - started})

    def _fail(self, source, destination, host, path, outcomes, cleanup_note):
        reason = '; '.join(o.describe() for o in outcomes).rstrip('.')
        if any(SHORT_WRITE in o.stderr for o in outcomes):
            reason += (' (a short write: the destination file system is '
                       'full, or a quota or file size limit was reached)')
        raise RemoteCopyError(
            source=source, destination=destination, host=host, path=path,
            reason='%s. The source is untouched; %s' % (reason, cleanup_note),
            outcomes=outcomes)


class SshFilesystem(RemoteFilesystem):
    """Copies with ``tar --sparse`` through ssh; see the module docs."""

    name = 'ssh'

    def copy_to(self, src_path, host, dest_path, on_progress=None):
        st = self._local_source(src_path, host, dest_path)
        total = st.st_blocks * 512
        dest_dir, dest_name = os.path.split(dest_path)
        producer = _tar_create(os.path.dirname(src_path),
                               os.path.basename(src_path), dest_name,
                               has_holes(st.st_size, total))
        consumer = self.ssh.command(host, _tar_extract(dest_dir, dest_name),
                                    compression=self.compression)
        destination = '%s:%s' % (host, dest_path)
        started = time.monotonic()
        LOG.debug('Copying %s to %s: %s | %s', src_path, destination,
                  remote_command(producer), remote_command(consumer))
        sent, received = pipeline.pipe(
            producer, consumer, on_progress=self._reporter(on_progress, total),
            count=pipeline.PRODUCER_READ)
        failed = [o for o in (sent, received) if not o.ok]
        if failed:
            problem = self._cleanup_remote(
                host, ['rm', '-f', '--', dest_path], dest_path)
            self._fail(src_path, destination, host, dest_path, failed,
                       _cleanup_note('the partial copy %s' % dest_path,
                                     problem))
        self._done(src_path, destination, started, on_progress, total)

    def copy_from(self, host, src_path, dest_path, on_progress=None):
        _check_host(host)
        _check_path(src_path)
        dest_dir = self._local_destination(host, src_path, dest_path)
        size, total = self._source_sizes(host, src_path, dest_path)
        part = _part_name(os.path.basename(dest_path))
        part_path = os.path.join(dest_dir, part)
        producer = self.ssh.command(
            host, _tar_create(os.path.dirname(src_path),
                              os.path.basename(src_path), part,
                              has_holes(size, total)),
            compression=self.compression)
        consumer = _tar_extract(dest_dir, part)
        source = '%s:%s' % (host, src_path)
        started = time.monotonic()
        LOG.debug('Copying %s to %s: %s | %s', source, dest_path,
                  remote_command(producer), remote_command(consumer))
        try:
            sent, received = pipeline.pipe(
                producer, consumer,
                on_progress=self._reporter(on_progress, total),
                count=pipeline.CONSUMER_WRITE)
            failed = [o for o in (sent, received) if not o.ok]
            if not failed:
                os.replace(part_path, dest_path)
        except BaseException:
            _unlink(part_path)
            raise
        if failed:
            _unlink(part_path)
            self._fail(source, dest_path, host, src_path, failed,
                       _cleanup_note(part_path, None))
        self._done(source, dest_path, started, on_progress, total)


class RsyncFilesystem(RemoteFilesystem):
    """Copies with ``rsync --sparse`` over ssh; see the module docs."""

    name = 'rsync'

    def _rsync_argv(self, source, destination, progress):
        argv = [RSYNC, '--sparse', '--whole-file', '--perms', '--times',
                '-s', '--no-human-readable']
        if progress:
            argv.append('--info=progress2')
        if self.compression:
            argv.append('--compress')
        return argv + ['-e', self.ssh.rsync_shell(), '--', source,
                       destination]

    @staticmethod
    def _remote_spec(host, path):
        _check_host(host)
        if ':' in host:
            host = '[%s]' % host
        return '%s:%s' % (host, path)

    def _run(self, argv, on_progress, apparent, total):
        if on_progress is None:
            return pipeline.stream(argv)
        parser = _RsyncProgress(on_progress, apparent, total)
        return pipeline.stream(argv, on_output=parser.feed)

    def copy_to(self, src_path, host, dest_path, on_progress=None):
        st = self._local_source(src_path, host, dest_path)
        destination = self._remote_spec(host, dest_path)
        total = st.st_blocks * 512
        argv = self._rsync_argv(src_path, destination,
                                on_progress is not None)
        started = time.monotonic()
        LOG.debug('Copying %s to %s: %s', src_path, destination,
                  remote_command(argv))
        outcome = self._run(argv, on_progress, st.st_size, total)
        if not outcome.ok:
            dest_dir, dest_name = os.path.split(dest_path)
            pattern = _rsync_temp_pattern(dest_name)
            temp = os.path.join(dest_dir, pattern)
            problem = self._cleanup_remote(
                host, ['find', dest_dir, '-maxdepth', '1', '-type', 'f',
                       '-name', pattern, '-delete'], temp)
            self._fail(src_path, destination, host, dest_path, [outcome],
                       _cleanup_note("rsync's partial copy %s" % temp,
                                     problem))
        self._done(src_path, destination, started, on_progress, total)

    def copy_from(self, host, src_path, dest_path, on_progress=None):
        _check_path(src_path)
        source = self._remote_spec(host, src_path)
        dest_dir = self._local_destination(host, src_path, dest_path)
        apparent = total = 0
        if on_progress is not None:
            apparent, total = self._source_sizes(host, src_path, dest_path)
        argv = self._rsync_argv(source, dest_path, on_progress is not None)
        started = time.monotonic()
        LOG.debug('Copying %s to %s: %s', source, dest_path,
                  remote_command(argv))
        outcome = self._run(argv, on_progress, apparent, total)
        if not outcome.ok:
            pattern = _rsync_temp_pattern(os.path.basename(dest_path))
            for name in os.listdir(dest_dir):
                if fnmatch.fnmatchcase(name, pattern):
                    _unlink(os.path.join(dest_dir, name))
            self._fail(source, dest_path, host, src_path, [outcome],
                       _cleanup_note("rsync's partial copy", None))
        self._done(source, dest_path, started, on_progress, total)


class _RsyncProgress(object):
    """Turns ``--info=progress2`` output into ``on_progress`` calls.

    rsync reports how far into the file it is (up to the apparent size);
    that is scaled to the allocated size, the unit of ``on_progress``.
    """

    def __init__(self, on_progress, apparent, total):
        self.on_progress = on_progress
        self.apparent = apparent
        self.total = total
        self._pending = ''

    def feed(self, data):
        text = self._pending + data.decode('ascii', 'replace')
        lines = re.split(r'[\r\n]', text)
        self._pending = lines.pop()
        for line in lines:
            match = _RSYNC_PROGRESS.match(line)
            if not match:
                continue
            position = int(re.sub(r'\D', '', match.group(1)))
            if self.apparent:
                done = self.total * min(position, self.apparent) // (
                    self.apparent)
            else:
                done = self.total
            self.on_progress(done, self.total)


def _cleanup_note(what, problem):
    if problem is None:
        return '%s was removed' % what
    return '%s could not be removed: %s' % (what, problem)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


TRANSPORTS = {
    SshFilesystem.name: SshFilesystem,
    RsyncFilesystem.name: RsyncFilesystem,
}


def transport_for(conf):
    """The transport ``[libvirt] remote_filesystem_transport`` names.

    :returns: a :class:`SshFilesystem` (``ssh``) or a
        :class:`RsyncFilesystem` (``rsync``), configured from ``conf``.
    """
    name = _option(conf, 'remote_filesystem_transport')
    try:
        cls = TRANSPORTS[name]
    except KeyError:
        raise pyvirt_exception.InvalidHostConfiguration(
            group=OPTION_GROUPS['remote_filesystem_transport'],
            option='remote_filesystem_transport', value=repr(name),
            reason='expected one of %s' % ', '.join(sorted(TRANSPORTS)))
    return cls.from_conf(conf)
