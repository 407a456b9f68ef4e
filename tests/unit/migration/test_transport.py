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

"""The argv each transport builds, its quoting, options and errors.

Nothing here talks to another host: ``processutils.execute`` and
``pipeline.pipe``/``pipeline.stream`` are replaced, and the commands they
would have run are checked. The local half of a tar copy (tar to tar
through a pipe) runs for real at the end, because its argv only means
something to tar. tests/functional/migration runs everything over a real
sshd.
"""

import os
import shlex

import fixtures
from nova.conf import libvirt as nova_libvirt_conf
from nova import exception
from oslo_concurrency import processutils
from oslo_config import cfg
from oslotest import base

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt.migration import pipeline
from nova_pyvirt.migration import transport

HOST = '192.0.2.20'
NASTY = "/srv/in stances/it's $(touch pwned); `id` \"q\" \\ *?[x]"


def rsync_split(text):
    """rsync's own split of an ``-e`` value (main.c, do_cmd)."""
    args = []
    i = 0
    while i < len(text):
        if text[i] == ' ':
            i += 1
            continue
        arg = ''
        quote = None
        while i < len(text) and (text[i] != ' ' or quote):
            char = text[i]
            if char in '\'"':
                if not quote:
                    quote = char
                    i += 1
                    continue
                if char == quote:
                    if i + 1 < len(text) and text[i + 1] == quote:
                        arg += quote
                        i += 2
                        continue
                    quote = None
                    i += 1
                    continue
            arg += char
            i += 1
        args.append(arg)
    return args


def make_conf(**values):
    """A private ConfigOpts with the options the transport reads.

    The ``[pyvirt]`` options and nova's ``[libvirt]
    remote_filesystem_transport``, each value set in its option's group.
    """
    conf = cfg.ConfigOpts()
    pyvirt_conf.register_opts(conf)
    conf.register_opts(nova_libvirt_conf.libvirt_remotefs_opts,
                       group='libvirt')
    conf([])
    for name, value in values.items():
        conf.set_override(name, value,
                          group=transport.OPTION_GROUPS.get(name, 'pyvirt'))
    return conf


def outcome(argv, returncode=0, stderr=''):
    return pipeline.Outcome(argv, returncode, stderr)


def options_of(argv):
    """``-o`` values of an ssh argv, as a dict."""
    found = {}
    for flag, value in zip(argv, argv[1:]):
        if flag == '-o':
            key, _sep, val = value.partition('=')
            found[key] = val
    return found


class TransportForTest(base.BaseTestCase):

    def test_picks_the_configured_transport(self):
        self.assertIsInstance(transport.transport_for(make_conf()),
                              transport.SshFilesystem)
        self.assertIsInstance(
            transport.transport_for(
                make_conf(remote_filesystem_transport='rsync')),
            transport.RsyncFilesystem)

    def test_unknown_transport_is_a_configuration_error(self):
        # nova's option has choices; one without them lets 'scp' through
        # to the driver's own check.
        conf = cfg.ConfigOpts()
        conf.register_opts([cfg.StrOpt('remote_filesystem_transport',
                                       default='scp')], group='libvirt')
        conf([])
        error = self.assertRaises(exception.InvalidConfiguration,
                                  transport.transport_for, conf)
        self.assertIn("[libvirt] remote_filesystem_transport = 'scp'",
                      str(error))
        self.assertIn('rsync, ssh', str(error))

    def test_unregistered_options_have_defaults(self):
        conf = cfg.ConfigOpts()
        conf.register_opts([cfg.StrOpt('remote_filesystem_transport',
                                       default='rsync')], group='libvirt')
        conf([])
        fs = transport.transport_for(conf)
        self.assertIsInstance(fs, transport.RsyncFilesystem)
        self.assertIsNone(fs.ssh.user)
        self.assertEqual(22, fs.ssh.port)
        self.assertTrue(fs.ssh.strict_host_key_checking)
        self.assertFalse(fs.compression)
        # No [pyvirt] group at all.
        fs = transport.transport_for(cfg.ConfigOpts())
        self.assertIsInstance(fs, transport.SshFilesystem)

    def test_options_are_honoured(self):
        conf = make_conf(remote_ssh_user='nova', remote_ssh_port=2222,
                         remote_ssh_identity_file='/etc/nova/id',
                         remote_ssh_strict_host_key_checking=False,
                         remote_ssh_known_hosts_file='/etc/nova/known',
                         remote_ssh_connect_timeout=7,
                         remote_copy_compression=True)
        fs = transport.transport_for(conf)
        argv = fs.ssh.argv(compression=fs.compression)
        self.assertEqual('ssh', argv[0])
        self.assertEqual(['-p', '2222'], argv[argv.index('-p'):][:2])
        self.assertEqual(['-l', 'nova'], argv[argv.index('-l'):][:2])
        self.assertIn('-C', argv)
        opts = options_of(argv)
        self.assertEqual('"/etc/nova/id"', opts['IdentityFile'])
        self.assertEqual('no', opts['StrictHostKeyChecking'])
        self.assertEqual('"/etc/nova/known"', opts['UserKnownHostsFile'])
        self.assertEqual('7', opts['ConnectTimeout'])
        self.assertEqual('yes', opts['IdentitiesOnly'])


class SshArgvTest(base.BaseTestCase):

    def test_defaults(self):
        argv = transport.SshSettings().argv()
        opts = options_of(argv)
        self.assertEqual('yes', opts['BatchMode'])
        self.assertEqual('yes', opts['StrictHostKeyChecking'])
        self.assertEqual('30', opts['ConnectTimeout'])
        self.assertEqual('15', opts['ServerAliveInterval'])
        self.assertEqual('4', opts['ServerAliveCountMax'])
        self.assertEqual('no', opts['ControlMaster'])
        self.assertEqual('none', opts['ControlPath'])
        self.assertEqual('ERROR', opts['LogLevel'])
        self.assertNotIn('UserKnownHostsFile', opts)
        self.assertNotIn('-l', argv)
        self.assertNotIn('IdentityFile', opts)
        self.assertNotIn('-C', argv)
        self.assertEqual(['-p', '22'], argv[argv.index('-p'):][:2])

    def test_no_strict_checking_records_nothing(self):
        opts = options_of(transport.SshSettings(
            strict_host_key_checking=False).argv())
        self.assertEqual('no', opts['StrictHostKeyChecking'])
        self.assertEqual('/dev/null', opts['UserKnownHostsFile'])

    def test_file_names_are_quoted_for_ssh(self):
        settings = transport.SshSettings(
            identity_file='/keys/my key %d',
            known_hosts_file='/keys/known "hosts" \\ 100%')
        opts = options_of(settings.argv())
        self.assertEqual('"/keys/my key %%d"', opts['IdentityFile'])
        self.assertEqual('"/keys/known \\"hosts\\" \\\\ 100%%"',
                         opts['UserKnownHostsFile'])

    def test_dollar_brace_is_refused(self):
        settings = transport.SshSettings(identity_file='/keys/${HOME}/id')
        error = self.assertRaises(exception.InvalidConfiguration,
                                  settings.argv)
        self.assertIn('remote_ssh_identity_file', str(error))

    def test_remote_command_is_one_quoted_string(self):
        argv = transport.SshSettings().command(HOST, ['mkdir', '-p', NASTY])
        self.assertEqual(['--', HOST], argv[-3:-1])
        self.assertEqual(['mkdir', '-p', NASTY], shlex.split(argv[-1]))
        self.assertEqual("'%s'" % NASTY.replace("'", "'\"'\"'"),
                         argv[-1].split(' ', 2)[2])

    def test_bad_hosts_are_refused(self):
        settings = transport.SshSettings()
        for host in ('', '-oProxyCommand=x', 'a b', 'root@h', 'h/x',
                     'h\n', None):
            self.assertRaises(ValueError, settings.command, host, ['true'])

    def test_rsync_shell_survives_rsync_split(self):
        settings = transport.SshSettings(
            user='no va', identity_file="/k/it's \"a\" key",
            known_hosts_file='/k/known hosts')
        self.assertEqual(settings.argv(),
                         rsync_split(settings.rsync_shell()))

    def test_quote_rsync_arg(self):
        for arg in ('plain', '', 'a b', "it's", 'say "hi"', "''", ' '):
            self.assertEqual([arg], rsync_split(
                transport.quote_rsync_arg(arg)))
        self.assertEqual('plain', transport.quote_rsync_arg('plain'))


class ShortCommandTest(base.BaseTestCase):

    def setUp(self):
        super(ShortCommandTest, self).setUp()
        self.execute = self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', return_value=('', ''))).mock
        self.fs = transport.SshFilesystem(transport.SshSettings(port=2022))

    def remote(self):
        argv = self.execute.call_args[0]
        self.assertEqual(HOST, argv[-2])
        return shlex.split(argv[-1])

    def test_create_dir(self):
        self.fs.create_dir(HOST, NASTY)
        self.assertEqual(['mkdir', '-p', '--', NASTY], self.remote())

    def test_remove_dir(self):
        self.fs.remove_dir(HOST, NASTY)
        self.assertEqual(['rm', '-rf', '--', NASTY], self.remote())

    def test_remove_dir_refuses_root_and_relative_paths(self):
        for path in ('/', 'relative', '/a/../b', '/a/'):
            self.assertRaises(ValueError, self.fs.remove_dir, HOST, path)
        self.execute.assert_not_called()

    def test_exists(self):
        self.assertTrue(self.fs.exists(HOST, NASTY))
        self.assertEqual(['test', '-e', NASTY], self.remote())
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1)
        self.assertFalse(self.fs.exists(HOST, NASTY))

    def test_exists_raises_when_ssh_fails(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=255, stderr='ssh: connect to host 192.0.2.20 port '
                                  '2022: Connection refused\n')
        error = self.assertRaises(transport.RemoteFilesystemError,
                                  self.fs.exists, HOST, '/srv/x')
        self.assertEqual(HOST, error.host)
        self.assertEqual('/srv/x', error.path)
        self.assertIn('Connection refused', str(error))
        self.assertIn(HOST, str(error))
        self.assertIn('/srv/x', str(error))
        self.assertIn('status 255', str(error))

    def test_errors_name_host_path_command_and_stderr(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1, stderr="mkdir: cannot create directory '/srv/x': "
                                "Permission denied\n")
        error = self.assertRaises(transport.RemoteFilesystemError,
                                  self.fs.create_dir, HOST, '/srv/x')
        text = str(error)
        self.assertIn('Creating directory /srv/x on host %s' % HOST, text)
        self.assertIn('Permission denied', text)
        self.assertIn('mkdir -p -- /srv/x', text)
        self.assertEqual(1, error.outcomes[0].returncode)

    def test_is_shared_storage(self):
        local = self.useFixture(fixtures.TempDir()).path
        seen = []

        def execute(*argv, **kwargs):
            marker = shlex.split(argv[-1])[-1]
            seen.append(marker)
            self.assertTrue(os.path.exists(marker))
            return '', ''
        self.execute.side_effect = execute
        self.assertTrue(self.fs.is_shared_storage(HOST, local))
        self.assertEqual(1, len(seen))
        self.assertEqual(local, os.path.dirname(seen[0]))
        self.assertTrue(os.path.basename(seen[0]).startswith(
            transport.SHARED_MARKER_PREFIX))
        self.assertEqual([], os.listdir(local))

        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1)
        self.assertFalse(self.fs.is_shared_storage(HOST, local))
        self.assertEqual([], os.listdir(local))

    def test_is_shared_storage_removes_the_marker_on_errors(self):
        local = self.useFixture(fixtures.TempDir()).path
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=255, stderr='Host key verification failed.')
        self.assertRaises(transport.RemoteFilesystemError,
                          self.fs.is_shared_storage, HOST, local)
        self.assertEqual([], os.listdir(local))


class CopyArgvTest(base.BaseTestCase):
    """What a copy runs, with the commands themselves replaced."""

    def setUp(self):
        super(CopyArgvTest, self).setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.src = os.path.join(self.tmp, 'disk')
        with open(self.src, 'wb') as handle:
            handle.write(b'x' * 8192)
        self.execute = self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', return_value=('', ''))).mock
        self.pipe = self.useFixture(fixtures.MockPatchObject(
            pipeline, 'pipe', side_effect=self._pipe)).mock
        self.stream = self.useFixture(fixtures.MockPatchObject(
            pipeline, 'stream', side_effect=self._stream)).mock
        self.results = {}

    def _pipe(self, producer, consumer, on_progress=None, count=None):
        self.piped = (producer, consumer, count)
        if consumer[0] == 'tar':
            # A local tar extracting: it writes its member.
            member = os.path.join(consumer[consumer.index('--directory') + 1],
                                  consumer[-1])
            open(member, 'w').close()
        if on_progress is not None:
            on_progress(10 ** 12)
        return (outcome(producer, *self.results.get('producer', (0, ''))),
                outcome(consumer, *self.results.get('consumer', (0, ''))))

    def _stream(self, argv, on_output=None):
        self.streamed = argv
        if on_output is not None:
            on_output(b'\r      4,096  50%  0.00kB/s  0:00:00  \r')
        return outcome(argv, *self.results.get('rsync', (0, '')))

    # -- ssh --------------------------------------------------------------

    def test_ssh_copy_to(self):
        fs = transport.SshFilesystem(transport.SshSettings(user='nova'),
                                     compression=True)
        progress = []
        fs.copy_to(self.src, HOST, '/srv/b/disk.new',
                   on_progress=lambda d, t: progress.append((d, t)))
        producer, consumer, count = self.piped
        self.assertEqual(pipeline.PRODUCER_READ, count)
        self.assertEqual(
            ['tar', '--create', '--file=-', '--format=gnu',
             '--no-recursion', '--directory', self.tmp,
             '--transform', 's,.*,disk.new,', '--', 'disk'], producer)
        self.assertEqual('ssh', consumer[0])
        self.assertIn('-C', consumer)
        self.assertEqual(['-l', 'nova'], consumer[consumer.index('-l'):][:2])
        self.assertEqual(['--', HOST], consumer[-3:-1])
        self.assertEqual(['tar', '--extract', '--file=-', '--no-same-owner',
                          '--directory', '/srv/b', '--', 'disk.new'],
                         shlex.split(consumer[-1]))
        total = os.stat(self.src).st_blocks * 512
        self.assertEqual([(total, total), (total, total)], progress)
        self.execute.assert_not_called()

    def test_ssh_uses_tar_sparse_only_for_files_with_holes(self):
        sparse = os.path.join(self.tmp, 'sparse')
        with open(sparse, 'wb') as handle:
            handle.write(b'x' * 4096)
            handle.truncate(64 * 1024 * 1024)
        fs = transport.SshFilesystem(transport.SshSettings())
        fs.copy_to(sparse, HOST, '/srv/b/sparse')
        self.assertIn('--sparse', self.piped[0])
        fs.copy_to(self.src, HOST, '/srv/b/disk')
        self.assertNotIn('--sparse', self.piped[0])

    def test_has_holes(self):
        mib = 1024 * 1024
        self.assertFalse(transport.has_holes(mib, mib))
        self.assertFalse(transport.has_holes(mib, 0))
        self.assertTrue(transport.has_holes(2 * mib + 1, mib))
        # 1/64 of the allocated size
        self.assertFalse(transport.has_holes(65 * 10 * mib, 64 * 10 * mib))
        self.assertTrue(transport.has_holes(66 * 10 * mib, 64 * 10 * mib))
        self.assertFalse(transport.has_holes(mib, 2 * mib))

    def test_ssh_copy_to_failure(self):
        self.results['consumer'] = (
            2, 'tar: disk.new: Cannot write: No space left on device\n'
               'tar: Exiting with failure status due to previous errors\n')
        self.results['producer'] = (-13, '')
        fs = transport.SshFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_to,
                                  self.src, HOST, '/srv/b/disk.new')
        text = str(error)
        self.assertNotIn('file system is full', text)
        self.assertIn('Copying %s to %s:/srv/b/disk.new failed' % (
            self.src, HOST), text)
        self.assertIn('No space left on device', text)
        self.assertIn('tar was killed by SIGPIPE', text)
        self.assertIn('ssh exited with status 2', text)
        self.assertIn('The source is untouched', text)
        self.assertIn('the partial copy /srv/b/disk.new was removed', text)
        self.assertEqual(HOST, error.host)
        self.assertEqual('/srv/b/disk.new', error.path)
        self.assertEqual(2, len(error.outcomes))
        cleanup = self.execute.call_args[0]
        self.assertEqual(['rm', '-f', '--', '/srv/b/disk.new'],
                         shlex.split(cleanup[-1]))
        self.assertEqual('ConnectTimeout=10', cleanup[
            cleanup.index('-o', cleanup.index('BatchMode=yes')) + 1])

    def test_a_short_write_is_explained(self):
        self.results['consumer'] = (
            2, 'tar: disk: Wrote only 2560 of 10240 bytes\n'
               'tar: Exiting with failure status due to previous errors\n')
        fs = transport.SshFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_to,
                                  self.src, HOST, '/srv/b/disk')
        self.assertIn('Wrote only 2560 of 10240 bytes', str(error))
        self.assertIn('the destination file system is full', str(error))

    def test_ssh_copy_to_failure_when_cleanup_fails_too(self):
        self.results['consumer'] = (255, 'Connection reset by peer')
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=255, stderr='ssh: connect to host 192.0.2.20 port 22: '
                                  'No route to host')
        fs = transport.SshFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_to,
                                  self.src, HOST, '/srv/b/disk')
        self.assertIn('Connection reset by peer', str(error))
        self.assertIn('/srv/b/disk could not be removed: ssh exited with '
                      'status 255: ssh: connect to host 192.0.2.20 port 22: '
                      'No route to host', str(error))

    def test_copy_to_checks_the_source(self):
        fs = transport.SshFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_to,
                                  self.src + '.missing', HOST, '/srv/b/x')
        self.assertIn('cannot read the source: No such file', str(error))
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_to,
                                  self.tmp, HOST, '/srv/b/x')
        self.assertIn('not a regular file', str(error))
        self.assertRaises(ValueError, fs.copy_to, self.src, HOST, 'rel')
        self.assertRaises(ValueError, fs.copy_to, self.src, '-x', '/srv/x')
        self.pipe.assert_not_called()

    def test_ssh_copy_from(self):
        self.execute.return_value = ('1000000 2048 512\n', '')
        fs = transport.SshFilesystem(transport.SshSettings())
        dest = os.path.join(self.tmp, 'base')
        part = []

        def pipe(producer, consumer, on_progress=None, count=None):
            self.piped = (producer, consumer, count)
            # The local tar writes a temporary name, renamed when done.
            member = consumer[-1]
            part.append(member)
            with open(os.path.join(self.tmp, member), 'w') as handle:
                handle.write('data')
            on_progress(5000)
            return outcome(producer), outcome(consumer)
        self.pipe.side_effect = pipe
        progress = []
        fs.copy_from(HOST, '/srv/a/_base/abc', dest,
                     on_progress=lambda d, t: progress.append((d, t)))
        stat = shlex.split(self.execute.call_args[0][-1])
        self.assertEqual(['stat', '-L', '-c', '%s %b %B', '--',
                          '/srv/a/_base/abc'], stat)
        producer, consumer, count = self.piped
        self.assertEqual(pipeline.CONSUMER_WRITE, count)
        self.assertEqual(
            ['tar', '--create', '--file=-', '--format=gnu',
             '--no-recursion', '--directory', '/srv/a/_base',
             '--transform', 's,.*,%s,' % part[0], '--', 'abc'],
            shlex.split(producer[-1]))
        self.assertTrue(part[0].startswith('.base.'))
        self.assertTrue(part[0].endswith(transport.PART_SUFFIX))
        self.assertEqual(['tar', '--extract', '--file=-', '--no-same-owner',
                          '--directory', self.tmp, '--', part[0]], consumer)
        with open(dest) as handle:
            self.assertEqual('data', handle.read())
        self.assertEqual(['base', 'disk'], sorted(os.listdir(self.tmp)))
        self.assertEqual([(5000, 2048 * 512), (2048 * 512, 2048 * 512)],
                         progress)

    def test_ssh_copy_from_sparse_source(self):
        self.execute.return_value = ('%d 2048 512\n' % (1 << 30), '')
        fs = transport.SshFilesystem(transport.SshSettings())
        fs.copy_from(HOST, '/srv/a/raw', os.path.join(self.tmp, 'raw'))
        self.assertIn('--sparse', shlex.split(self.piped[0][-1]))

    def test_ssh_copy_from_failure_removes_the_partial_file(self):
        self.execute.return_value = ('1000 8 512\n', '')

        def pipe(producer, consumer, on_progress=None, count=None):
            with open(os.path.join(self.tmp, consumer[-1]), 'w') as handle:
                handle.write('partial')
            return (outcome(producer, 255, 'Connection to 192.0.2.20 '
                            'closed by remote host.'),
                    outcome(consumer, 2, 'tar: Unexpected EOF in archive'))
        self.pipe.side_effect = pipe
        fs = transport.SshFilesystem(transport.SshSettings())
        dest = os.path.join(self.tmp, 'base')
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_from,
                                  HOST, '/srv/a/base', dest)
        self.assertIn('Copying %s:/srv/a/base to %s failed' % (HOST, dest),
                      str(error))
        self.assertIn('closed by remote host', str(error))
        self.assertIn('Unexpected EOF', str(error))
        self.assertEqual(['disk'], os.listdir(self.tmp))

    def test_copy_from_needs_the_local_directory(self):
        fs = transport.SshFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_from,
                                  HOST, '/srv/a/base',
                                  os.path.join(self.tmp, 'no', 'base'))
        self.assertIn('does not exist', str(error))

    def test_copy_from_missing_remote_file(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1, stderr="stat: cannot statx '/srv/a/base': No such "
                                "file or directory")
        fs = transport.SshFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_from,
                                  HOST, '/srv/a/base',
                                  os.path.join(self.tmp, 'base'))
        self.assertIn('Copying %s:/srv/a/base' % HOST, str(error))
        self.assertIn('No such file or directory', str(error))
        self.pipe.assert_not_called()

    def test_tar_transform_escapes_the_new_name(self):
        self.assertEqual('s,.*,disk,', transport._tar_transform('disk'))
        self.assertEqual('s|.*|a,b|', transport._tar_transform('a,b'))
        self.assertEqual('s,.*,x\\&y\\\\z,',
                         transport._tar_transform('x&y\\z'))
        self.assertRaises(ValueError, transport._tar_transform,
                          ',|#:;@!%^~+=')

    # -- rsync ------------------------------------------------------------

    def test_rsync_copy_to(self):
        fs = transport.RsyncFilesystem(
            transport.SshSettings(port=2022, identity_file='/k/my key'))
        progress = []
        fs.copy_to(self.src, HOST, '/srv/b/disk',
                   on_progress=lambda d, t: progress.append((d, t)))
        argv = self.streamed
        self.assertEqual(['rsync', '--sparse', '--whole-file', '--perms',
                          '--times', '-s', '--no-human-readable',
                          '--info=progress2', '-e'], argv[:9])
        self.assertEqual(fs.ssh.argv(), rsync_split(argv[9]))
        self.assertEqual(['--', self.src, '%s:/srv/b/disk' % HOST],
                         argv[10:])
        self.assertNotIn('--compress', argv)
        total = os.stat(self.src).st_blocks * 512
        # 4096 of 8192 apparent bytes: half of the allocated size.
        self.assertEqual([(total // 2, total), (total, total)], progress)

    def test_rsync_compression_and_ipv6(self):
        fs = transport.RsyncFilesystem(transport.SshSettings(),
                                       compression=True)
        fs.copy_to(self.src, '2001:db8::7', '/srv/b/disk')
        self.assertIn('--compress', self.streamed)
        self.assertNotIn('--info=progress2', self.streamed)
        self.assertEqual('[2001:db8::7]:/srv/b/disk', self.streamed[-1])
        # ssh's own compression is not added on top of rsync's.
        self.assertNotIn('-C', rsync_split(
            self.streamed[self.streamed.index('-e') + 1]))

    def test_rsync_copy_to_failure_removes_rsyncs_temporary_file(self):
        self.results['rsync'] = (
            12, 'rsync: connection unexpectedly closed (0 bytes received '
                'so far) [sender]\nrsync error: error in rsync protocol '
                'data stream (code 12)\n')
        fs = transport.RsyncFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_to,
                                  self.src, HOST, '/srv/b/d*sk [1]')
        self.assertIn('rsync exited with status 12', str(error))
        self.assertIn('connection unexpectedly closed', str(error))
        self.assertIn('%s:/srv/b/d*sk [1]' % HOST, str(error))
        self.assertEqual(['find', '/srv/b', '-maxdepth', '1', '-type', 'f',
                          '-name', '.d\\*sk \\[1\\].??????', '-delete'],
                         shlex.split(self.execute.call_args[0][-1]))

    def test_rsync_copy_from(self):
        self.execute.return_value = ('8192 16 512\n', '')
        fs = transport.RsyncFilesystem(transport.SshSettings())
        dest = os.path.join(self.tmp, 'base')
        progress = []
        fs.copy_from(HOST, '/srv/a/base', dest,
                     on_progress=lambda d, t: progress.append((d, t)))
        self.assertEqual(['--', '%s:/srv/a/base' % HOST, dest],
                         self.streamed[-3:])
        self.assertEqual([(4096, 8192), (8192, 8192)], progress)

    def test_rsync_copy_from_failure_removes_local_temporary_files(self):
        self.results['rsync'] = (23, 'rsync: [sender] link_stat failed')
        leftover = os.path.join(self.tmp, '.base.Ab3dE9')
        unrelated = os.path.join(self.tmp, '.other.Ab3dE9')
        for path in (leftover, unrelated):
            open(path, 'w').close()
        fs = transport.RsyncFilesystem(transport.SshSettings())
        error = self.assertRaises(transport.RemoteCopyError, fs.copy_from,
                                  HOST, '/srv/a/base',
                                  os.path.join(self.tmp, 'base'))
        self.assertIn('link_stat failed', str(error))
        self.assertFalse(os.path.exists(leftover))
        self.assertTrue(os.path.exists(unrelated))

    def test_rsync_progress_parser(self):
        seen = []
        parser = transport._RsyncProgress(
            lambda d, t: seen.append((d, t)), apparent=1000, total=100)
        parser.feed(b'\r         32   3%    0.00kB/s    0:00:00  \r     ')
        parser.feed(b'    500  50%  1.00MB/s    0:00:01  \r')
        parser.feed(b'  1,000 100%  1.00MB/s    0:00:01 (xfr#1, '
                    b'to-chk=0/1)\n')
        self.assertEqual([(3, 100), (50, 100), (100, 100)], seen)


class LocalTarTest(base.BaseTestCase):
    """The tar argv, run for real between two local directories."""

    def test_tar_pipe_keeps_holes_and_renames(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        src_dir = os.path.join(tmp, 'a b')
        dest_dir = os.path.join(tmp, "c'd")
        os.mkdir(src_dir)
        os.mkdir(dest_dir)
        src = os.path.join(src_dir, '-disk $x')
        mib = 1024 * 1024
        with open(src, 'wb') as handle:
            for offset in (0, 40 * mib, 90 * mib):
                handle.seek(offset)
                handle.write(os.urandom(mib))
            handle.truncate(128 * mib)
        st = os.stat(src)
        self.assertTrue(transport.has_holes(st.st_size, st.st_blocks * 512))
        name = 'x&y,\\z'
        producer = transport._tar_create(src_dir, os.path.basename(src),
                                         name, True)
        consumer = transport._tar_extract(dest_dir, name)
        seen = []
        sent, received = pipeline.pipe(producer, consumer,
                                       on_progress=seen.append)
        self.assertTrue(sent.ok, sent)
        self.assertTrue(received.ok, received)
        dest = os.path.join(dest_dir, name)
        with open(src, 'rb') as a, open(dest, 'rb') as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(st.st_size, os.stat(dest).st_size)
        self.assertLess(os.stat(dest).st_blocks * 512, 4 * mib)
        self.assertEqual([name], os.listdir(dest_dir))
