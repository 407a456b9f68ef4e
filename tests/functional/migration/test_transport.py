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

"""Both transports against a real sshd standing in for a second host.

Host "B" is an sshd on 127.0.0.2 (:class:`tests.fixtures.sshd.SshdFixture`)
in its own mount namespace, where B's instances directory is bind-mounted
over the path of A's: both hosts use the same instances path string, as
nova assumes, yet hold different directories. A small tmpfs inside it is
B's full disk. Every ssh connection goes through a byte-counting relay
(:class:`tests.fixtures.sshd.TcpRelay`, also on 127.0.0.2), which gives the
bytes on the wire and can cut or stall the connection.

Each test runs for the ``ssh`` and the ``rsync`` transport (the two
subclasses at the end).
"""

import hashlib
import os
import shutil
import signal
import threading

import fixtures
from oslo_concurrency import processutils
from oslo_serialization import jsonutils
from oslotest import base
from testtools import content

from nova_pyvirt.migration import transport
from tests.fixtures import sshd as sshd_fixture

ADDRESS = '127.0.0.2'
MiB = 1024 * 1024
# ssh's key exchange, authentication and session set-up, both ways, and a
# tar header record: what a copy may send on top of the file's data.
WIRE_OVERHEAD = 64 * 1024
HOSTILE = "we ird $(touch pwned); `id` 'q' \"dq\" \\ *"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(MiB), b''):
            digest.update(chunk)
    return digest.hexdigest()


def allocated(path):
    return os.stat(path).st_blocks * 512


def qemu_img_info(path):
    out, _err = processutils.execute('qemu-img', 'info', '--output=json',
                                     '-U', path)
    return jsonutils.loads(out)


def write_random(path, extents, size):
    """A file of ``size`` bytes with random data at ``(offset, length)``."""
    with open(path, 'wb') as handle:
        for offset, length in extents:
            handle.seek(offset)
            handle.write(os.urandom(length))
        handle.truncate(size)


def children_named(name):
    """PIDs of this process's children whose command is ``name``."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % pid) as handle:
                stat = handle.read()
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        ppid = int(stat[stat.rindex(')') + 2:].split()[1])
        if comm == name and ppid == os.getpid():
            found.append(int(pid))
    return found


class _TransportTests(object):
    """The tests; mixed into one ``TestCase`` per transport."""

    transport_name = None
    #: The process to kill to break a copy to the other host.
    copy_process = None

    def setUp(self):
        super(_TransportTests, self).setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        # The path string both hosts use for their instances.
        self.instances = os.path.join(self.tmp, 'instances')
        # What host B really has behind it.
        self.b_real = os.path.join(self.tmp, 'host-b-instances')
        os.makedirs(os.path.join(self.instances, '_base'))
        os.makedirs(self.b_real)
        self.small = os.path.join(self.instances, 'small')
        self.sshd = self.useFixture(sshd_fixture.SshdFixture(
            address=ADDRESS, binds={self.instances: self.b_real},
            tmpfs={self.small: '8m'}))
        self.relay = self.useFixture(sshd_fixture.TcpRelay(
            (ADDRESS, self.sshd.port), listen_address=ADDRESS))
        self.sshd.add_known_host(ADDRESS, self.relay.port)
        self.fs = self.transport()

    def transport(self, **options):
        values = self.sshd.pyvirt_options(port=self.relay.port)
        values['remote_filesystem_transport'] = self.transport_name
        values.update(options)
        fs = transport.transport_for(sshd_fixture.pyvirt_conf(**values))
        self.assertEqual(self.transport_name, fs.name)
        return fs

    def on_a(self, *parts):
        return os.path.join(self.instances, *parts)

    def on_b(self, *parts):
        """Where host B's file at ``instances/<parts>`` really is."""
        return os.path.join(self.b_real, *parts)

    def make_overlay(self, directory, data_mib=24):
        """A qcow2 overlay of a raw base in ``_base``, with random data."""
        base_path = self.on_a('_base', 'base.raw')
        if not os.path.exists(base_path):
            write_random(base_path, [(0, 4 * MiB)], 256 * MiB)
        os.makedirs(directory, exist_ok=True)
        overlay = os.path.join(directory, 'disk')
        processutils.execute('qemu-img', 'create', '-q', '-f', 'qcow2', '-b',
                             base_path, '-F', 'raw', overlay, '1G')
        chunk = os.path.join(self.tmp, 'chunk')
        for index in range(data_mib // 4):
            with open(chunk, 'wb') as handle:
                handle.write(os.urandom(4 * MiB))
            processutils.execute(
                'qemu-io', '-f', 'qcow2', '-c',
                'write -s %s %dM 4M' % (chunk, index * 40), overlay)
        return overlay

    def assert_same_file(self, src, dest):
        self.assertEqual(os.path.getsize(src), os.path.getsize(dest))
        self.assertEqual(sha256(src), sha256(dest))
        self.assertEqual(os.stat(src).st_mode, os.stat(dest).st_mode)
        self.assertEqual(int(os.stat(src).st_mtime),
                         int(os.stat(dest).st_mtime))
        # Holes came across as holes.
        self.assertLessEqual(allocated(dest),
                             allocated(src) * 1.05 + 2 * MiB)

    def assert_wire(self, wire, src):
        limit = allocated(src) * 1.05 + WIRE_OVERHEAD
        self.addDetail('wire', content.text_content(
            '%d bytes on the wire for %d allocated (%d apparent)' % (
                wire, allocated(src), os.path.getsize(src))))
        self.assertLessEqual(wire, limit)

    def assert_overlay(self, path, backing):
        info = qemu_img_info(path)
        self.assertEqual('qcow2', info['format'])
        self.assertEqual(backing, info['backing-filename'])
        self.assertEqual('raw', info['backing-filename-format'])
        self.assertEqual(1024 * MiB, info['virtual-size'])

    # -- copies --------------------------------------------------------------

    def test_qcow2_overlay_both_ways(self):
        overlay = self.make_overlay(self.on_a('inst'))
        backing = qemu_img_info(overlay)['backing-filename']
        checksum = sha256(overlay)
        self.fs.create_dir(ADDRESS, self.on_a('inst'))
        self.relay.reset()
        progress = []
        self.fs.copy_to(overlay, ADDRESS, self.on_a('inst', 'disk'),
                        on_progress=lambda d, t: progress.append((d, t)))
        self.assert_wire(self.relay.bytes_up, overlay)
        on_b = self.on_b('inst', 'disk')
        self.assert_same_file(overlay, on_b)
        self.assert_overlay(on_b, backing)
        self.assertEqual(checksum, sha256(overlay))
        self.assertEqual((allocated(overlay), allocated(overlay)),
                         progress[-1])
        self.assertEqual(sorted(progress), progress)

        # And back, under another name.
        back = self.on_a('inst', 'disk.back')
        self.relay.reset()
        self.fs.copy_from(ADDRESS, self.on_a('inst', 'disk'), back)
        self.assert_wire(self.relay.bytes_down, on_b)
        self.assert_same_file(on_b, back)
        self.assert_overlay(back, backing)
        self.assertEqual(['disk', 'disk.back'],
                         sorted(os.listdir(self.on_a('inst'))))

    def test_sparse_raw_file_both_ways(self):
        src = self.on_a('raw')
        write_random(src, [(0, 4 * MiB), (100 * MiB, 4 * MiB),
                           (250 * MiB, 4 * MiB)], 256 * MiB)
        self.relay.reset()
        self.fs.copy_to(src, ADDRESS, self.on_a('raw'))
        self.assert_same_file(src, self.on_b('raw'))
        self.check_sparse_wire(self.relay.bytes_up, src)

        dest = self.on_a('raw.back')
        self.relay.reset()
        progress = []
        self.fs.copy_from(ADDRESS, self.on_a('raw'), dest,
                          on_progress=lambda d, t: progress.append((d, t)))
        self.assert_same_file(src, dest)
        self.check_sparse_wire(self.relay.bytes_down, src)
        total = allocated(self.on_b('raw'))
        self.assertEqual((total, total), progress[-1])

    def check_sparse_wire(self, wire, src):
        self.assert_wire(wire, src)

    def test_compression(self):
        fs = self.transport(remote_copy_compression=True)
        src = self.on_a('zeros-and-text')
        with open(src, 'wb') as handle:
            handle.write(b'compressible line of text\n' * (400 * 1024))
        self.relay.reset()
        fs.copy_to(src, ADDRESS, self.on_a('zeros-and-text'))
        self.assert_same_file(src, self.on_b('zeros-and-text'))
        self.assertLess(self.relay.bytes_up, os.path.getsize(src) // 10)

    # -- failures ------------------------------------------------------------

    def big_source(self):
        src = self.on_a('big')
        write_random(src, [(0, 48 * MiB)], 48 * MiB)
        return src, sha256(src)

    def assert_nothing_left_on_b(self, directory):
        """No file (partial or temporary) in B's ``directory``."""
        left = os.listdir(directory)
        for _attempt in range(100):
            if not left:
                break
            # rsync's receiver removes its temporary file once it sees the
            # connection end, which may be a moment after the client gave
            # up.
            threading.Event().wait(0.1)
            left = os.listdir(directory)
        self.assertEqual([], left)

    def test_connection_lost_during_copy_to(self):
        src, checksum = self.big_source()
        os.makedirs(self.on_b('inst'))
        self.relay.cut_after(8 * MiB)
        error = self.assertRaises(
            transport.RemoteCopyError, self.fs.copy_to, src, ADDRESS,
            self.on_a('inst', 'big'))
        self.assertEqual(1, self.relay.cuts)
        text = str(error)
        self.assertIn(ADDRESS, text)
        self.assertIn(self.on_a('inst', 'big'), text)
        self.assertIn('The source is untouched', text)
        self.assertEqual(checksum, sha256(src))
        self.assert_nothing_left_on_b(self.on_b('inst'))

    def test_connection_lost_during_copy_from(self):
        src, checksum = self.big_source()
        shutil.copyfile(src, self.on_b('big'))
        dest_dir = os.path.join(self.tmp, 'fetched')
        os.makedirs(dest_dir)
        self.relay.cut_after(8 * MiB)
        error = self.assertRaises(
            transport.RemoteCopyError, self.fs.copy_from, ADDRESS,
            self.on_a('big'), os.path.join(dest_dir, 'big'))
        self.assertIn('%s:%s' % (ADDRESS, self.on_a('big')), str(error))
        self.assertEqual(checksum, sha256(self.on_b('big')))
        self.assertEqual([], os.listdir(dest_dir))

    def test_copy_process_killed(self):
        src, checksum = self.big_source()
        os.makedirs(self.on_b('inst'))
        killed = []

        def kill_when_stalled():
            try:
                if self.relay.held.wait(60):
                    for pid in children_named(self.copy_process):
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
            finally:
                self.relay.release()
        self.relay.hold_after(8 * MiB)
        killer = threading.Thread(target=kill_when_stalled)
        killer.start()
        try:
            error = self.assertRaises(
                transport.RemoteCopyError, self.fs.copy_to, src, ADDRESS,
                self.on_a('inst', 'big'))
        finally:
            killer.join(120)
        self.assertEqual(1, len(killed))
        self.assertIn('%s was killed by SIGKILL' % self.copy_process,
                      str(error))
        self.assertEqual(checksum, sha256(src))
        self.assert_nothing_left_on_b(self.on_b('inst'))

    def test_destination_disk_full(self):
        src = self.on_a('disk-24m')
        write_random(src, [(0, 24 * MiB)], 24 * MiB)
        checksum = sha256(src)
        dest = os.path.join(self.small, 'disk')
        error = self.assertRaises(transport.RemoteCopyError,
                                  self.fs.copy_to, src, ADDRESS, dest)
        text = str(error)
        # rsync names the errno; tar only says "Wrote only N of M bytes",
        # which the transport explains.
        self.assertTrue('No space left on device' in text or
                        'the destination file system is full' in text, text)
        self.assertIn('%s:%s' % (ADDRESS, dest), text)
        self.assertEqual(checksum, sha256(src))
        # The tmpfs exists only in B's namespace: look through ssh.
        out, _err = self.sshd.run('ls -A %s' % self.small)
        self.assertEqual('', out)

    def test_missing_directory_and_file(self):
        src = self.on_a('small-file')
        write_random(src, [(0, 4096)], 4096)
        error = self.assertRaises(
            transport.RemoteCopyError, self.fs.copy_to, src, ADDRESS,
            self.on_a('no', 'such', 'dir', 'file'))
        self.assertIn(self.on_a('no', 'such', 'dir'), str(error))
        self.assertIn('No such file or directory', str(error))
        error = self.assertRaises(
            transport.RemoteCopyError, self.fs.copy_from, ADDRESS,
            self.on_a('not-there'), os.path.join(self.tmp, 'x'))
        self.assertIn(self.on_a('not-there'), str(error))
        self.assertIn('No such file or directory', str(error))

    def test_unknown_host_key_is_refused(self):
        empty = os.path.join(self.tmp, 'empty_known_hosts')
        open(empty, 'w').close()
        fs = self.transport(remote_ssh_known_hosts_file=empty)
        error = self.assertRaises(transport.RemoteFilesystemError,
                                  fs.exists, ADDRESS, self.instances)
        self.assertIn('Host key verification failed', str(error))
        self.assertIn(ADDRESS, str(error))
        # Without host key checking the same host is accepted, and its
        # key is recorded nowhere.
        fs = self.transport(remote_ssh_known_hosts_file=None,
                            remote_ssh_strict_host_key_checking=False)
        self.assertTrue(fs.exists(ADDRESS, self.instances))
        src = self.on_a('small-file')
        write_random(src, [(0, 4096)], 4096)
        fs.copy_to(src, ADDRESS, self.on_a('small-file'))
        self.assert_same_file(src, self.on_b('small-file'))

    # -- directories, names, options -------------------------------------

    def test_directories_with_hostile_names(self):
        path = self.on_a(HOSTILE, 'sub')
        self.fs.create_dir(ADDRESS, path)
        self.assertTrue(os.path.isdir(self.on_b(HOSTILE, 'sub')))
        self.assertTrue(self.fs.exists(ADDRESS, path))
        self.assertFalse(os.path.exists(self.on_a(HOSTILE)))
        src = os.path.join(self.tmp, HOSTILE)
        write_random(src, [(0, 1000)], 1000)
        self.fs.copy_to(src, ADDRESS, os.path.join(path, HOSTILE + '&,|'))
        self.assert_same_file(
            src, self.on_b(HOSTILE, 'sub', HOSTILE + '&,|'))
        self.fs.copy_from(ADDRESS, os.path.join(path, HOSTILE + '&,|'),
                          os.path.join(self.tmp, 'back'))
        self.assert_same_file(src, os.path.join(self.tmp, 'back'))
        self.fs.remove_dir(ADDRESS, self.on_a(HOSTILE))
        self.assertFalse(os.path.exists(self.on_b(HOSTILE)))
        self.assertFalse(self.fs.exists(ADDRESS, path))
        self.fs.remove_dir(ADDRESS, self.on_a(HOSTILE))   # idempotent
        for where in (os.getcwd(), self.tmp, '/root', '/'):
            self.assertFalse(os.path.exists(os.path.join(where, 'pwned')))

    def test_identity_file_with_spaces_and_percent(self):
        keys = os.path.join(self.tmp, "my 'keys'")
        os.makedirs(keys)
        key = os.path.join(keys, 'id 100%')
        shutil.copyfile(self.sshd.client_key, key)
        os.chmod(key, 0o600)
        known = os.path.join(keys, 'known "hosts"')
        shutil.copyfile(self.sshd.known_hosts, known)
        fs = self.transport(remote_ssh_identity_file=key,
                            remote_ssh_known_hosts_file=known)
        src = self.on_a('small-file')
        write_random(src, [(0, 4096)], 4096)
        fs.copy_to(src, ADDRESS, self.on_a('small-file'))
        self.assert_same_file(src, self.on_b('small-file'))

    def test_is_shared_storage(self):
        # B has its own directory behind the instances path.
        self.assertFalse(self.fs.is_shared_storage(ADDRESS, self.instances))
        # C mounts the very same directory there, as an NFS export would.
        host_c = self.useFixture(sshd_fixture.SshdFixture(
            address='127.0.0.3', binds={self.instances: self.instances}))
        fs = self.transport(remote_ssh_port=host_c.port,
                            remote_ssh_known_hosts_file=host_c.known_hosts,
                            remote_ssh_identity_file=host_c.client_key)
        self.assertTrue(fs.is_shared_storage('127.0.0.3', self.instances))
        # A directory B does not have at all.
        lonely = self.on_a('only-on-a')
        os.makedirs(lonely)
        self.assertFalse(self.fs.is_shared_storage(ADDRESS, lonely))
        for directory in (self.instances, lonely, self.b_real):
            self.assertEqual(
                [], [n for n in os.listdir(directory)
                     if n.startswith(transport.SHARED_MARKER_PREFIX)])


class SshTransportTest(_TransportTests, base.BaseTestCase):
    transport_name = 'ssh'
    copy_process = 'ssh'


class RsyncTransportTest(_TransportTests, base.BaseTestCase):
    transport_name = 'rsync'
    copy_process = 'rsync'

    def check_sparse_wire(self, wire, src):
        # rsync may read holes as zeros and send them (see the transport's
        # documentation; some rsync builds send less): never more than the
        # file itself, and the destination is sparse again either way.
        self.assertLessEqual(wire, os.path.getsize(src) * 1.05 + 64 * 1024)

    def test_sparse_raw_file_with_compression(self):
        fs = self.transport(remote_copy_compression=True)
        src = self.on_a('raw')
        write_random(src, [(0, 4 * MiB), (100 * MiB, 4 * MiB)], 256 * MiB)
        self.relay.reset()
        fs.copy_to(src, ADDRESS, self.on_a('raw'))
        self.assert_same_file(src, self.on_b('raw'))
        self.assertLessEqual(self.relay.bytes_up,
                             allocated(src) * 1.05 + MiB)
