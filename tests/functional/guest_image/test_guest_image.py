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

"""Boot the test guest built by tools/guest_image/build.py under QEMU TCG.

These tests run the real thing: build.py (apt-get download + dpkg-deb, cached
in <repo>/.cache/guest-image) and qemu-system-x86_64 with -accel tcg.  They
check the console protocol that the driver's functional tests rely on (see
tools/guest_image/README.md).
"""

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from oslo_serialization import jsonutils
from oslo_utils import uuidutils
import testtools

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD_PY = os.path.join(REPO, 'tools', 'guest_image', 'build.py')
QEMU = 'qemu-system-x86_64'

# Generous for slow CI machines; a boot takes ~2.5 s on the project's hosts.
BOOT_TIMEOUT = int(os.environ.get('PYVIRT_GUEST_BOOT_TIMEOUT', '120'))
BUILD_TIMEOUT = 900

DISK_RE = re.compile(
    r'^PYVIRT-DISK name=(?P<name>\S+) serial=(?P<serial>\S+) '
    r'size=(?P<size>\d+)(?: event=(?P<event>\S+))? marker=(?P<marker>.*)$')


def _load_build_module():
    spec = importlib.util.spec_from_file_location('pyvirt_guest_image_build',
                                                  BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build_module()
# As tests/fixtures/driver.py: PYVIRT_GUEST_IMAGE_DIR builds elsewhere than
# the checkout's shared cache.
OUTPUT = os.environ.get('PYVIRT_GUEST_IMAGE_DIR') or build.DEFAULT_OUTPUT

_built = []


def ensure_image():
    """Run build.py once per process (it is idempotent across processes)."""
    if not _built:
        proc = subprocess.run([sys.executable, BUILD_PY, '--output', OUTPUT],
                              check=False,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              universal_newlines=True,
                              timeout=BUILD_TIMEOUT)
        if proc.returncode != 0:
            raise AssertionError('build.py failed (exit %s):\n%s'
                                 % (proc.returncode, proc.stdout))
        _built.append(OUTPUT)
    return _built[0]


def parse_disks(console):
    """[{name, serial, size, event, marker}] from PYVIRT-DISK lines."""
    disks = []
    for line in console.splitlines():
        m = DISK_RE.match(line.rstrip('\r'))
        if m:
            disks.append(m.groupdict())
    return disks


class QMP(object):
    """Just enough of the QEMU Machine Protocol for these tests."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile('rwb')
        self._read()  # greeting
        self.execute('qmp_capabilities')

    def _read(self):
        line = self.file.readline()
        if not line:
            raise AssertionError('QMP connection closed')
        return jsonutils.loads(line)

    def execute(self, command, **arguments):
        msg = {'execute': command}
        if arguments:
            msg['arguments'] = arguments
        self.file.write(jsonutils.dumps(msg).encode() + b'\n')
        self.file.flush()
        while True:
            reply = self._read()
            if 'return' in reply:
                return reply['return']
            if 'error' in reply:
                raise AssertionError('QMP %s failed: %s'
                                     % (command, reply['error']))
            # anything else is an asynchronous event: ignore it

    def close(self):
        self.file.close()
        self.sock.close()


class TestGuestImage(testtools.TestCase):

    def setUp(self):
        super(TestGuestImage, self).setUp()
        if shutil.which(QEMU) is None:
            self.skipTest('%s is not installed (Debian package '
                          'qemu-system-x86); cannot boot the test guest'
                          % QEMU)
        self.image = ensure_image()
        self.tmp = tempfile.mkdtemp(prefix='pyvirt-guest-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.console = os.path.join(self.tmp, 'console.log')

    def read_console(self):
        try:
            with open(self.console, errors='replace') as f:
                return f.read().replace('\r', '')
        except FileNotFoundError:
            return ''

    def boot(self, drives, append='', qmp=None):
        """Start QEMU (TCG) with direct kernel boot; returns the Popen.

        drives: [(path, format, serial, readonly)] attached as virtio-blk.
        The process is killed by PID in a cleanup, whatever happens.
        """
        argv = [QEMU, '-accel', 'tcg', '-m', '128', '-nodefaults',
                '-display', 'none', '-no-reboot',
                '-kernel', os.path.join(self.image, 'vmlinuz'),
                '-initrd', os.path.join(self.image, 'initrd.img'),
                '-append', 'console=ttyS0 quiet ' + append,
                '-serial', 'file:' + self.console]
        if qmp:
            argv += ['-qmp', 'unix:%s,server=on,wait=off' % qmp]
        for i, (path, fmt, serial, readonly) in enumerate(drives):
            argv += ['-drive', 'file=%s,format=%s,if=none,id=drive%d%s'
                     % (path, fmt, i, ',readonly=on' if readonly else ''),
                     '-device', 'virtio-blk-pci,drive=drive%d,serial=%s'
                     % (i, serial)]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        self.addCleanup(self._kill, proc)
        return proc

    @staticmethod
    def _kill(proc):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()

    def wait_exit(self, proc, timeout=None):
        timeout = timeout or BOOT_TIMEOUT
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail('QEMU did not exit within %s s; console:\n%s'
                      % (timeout, self.read_console()))
        self.assertEqual(0, proc.returncode,
                         'QEMU failed: %s\nconsole:\n%s'
                         % (out.decode(errors='replace'),
                            self.read_console()))
        return self.read_console()

    def wait_console(self, text, proc, timeout=None):
        timeout = timeout or BOOT_TIMEOUT
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            console = self.read_console()
            if text in console:
                return console
            if proc.poll() is not None:
                self.fail('QEMU exited (%s) before %r appeared; console:\n%s'
                          % (proc.returncode, text, console))
            time.sleep(0.1)
        self.fail('%r did not appear within %s s; console:\n%s'
                  % (text, timeout, self.read_console()))

    def test_serials_markers_and_write(self):
        token = uuidutils.generate_uuid(dashed=False)[:8]
        first = build.make_marker_disk(os.path.join(self.tmp, 'first.raw'),
                                       'PYVIRT-DISK-MARKER first-' + token)
        second = build.make_marker_disk(os.path.join(self.tmp, 'second.raw'),
                                        'PYVIRT-DISK-MARKER second-' + token)
        written = 'written by guest ' + token
        proc = self.boot(
            [(first, 'raw', 'vol-first-' + token, False),
             (second, 'raw', 'vol-second-' + token, False)],
            append='pyvirt.write="vdb:%s" pyvirt.poweroff=1' % written)
        console = self.wait_exit(proc)

        self.assertIn('PYVIRT-GUEST: boot start', console)
        self.assertIn('PYVIRT-GUEST: ready', console)
        disks = {d['name']: d for d in parse_disks(console)}
        self.assertEqual(['vda', 'vdb'], sorted(disks), console)
        self.assertEqual('vol-first-' + token, disks['vda']['serial'])
        self.assertEqual('PYVIRT-DISK-MARKER first-' + token,
                         disks['vda']['marker'])
        self.assertEqual('vol-second-' + token, disks['vdb']['serial'])
        # The report comes before the write: the original marker.
        self.assertEqual('PYVIRT-DISK-MARKER second-' + token,
                         disks['vdb']['marker'])
        self.assertEqual(str(1024 * 1024), disks['vdb']['size'])
        self.assertIn('PYVIRT-WROTE vdb', console)

        with open(second, 'rb') as f:
            head = f.read(512)
        self.assertEqual((written + '\n').encode(),
                         head[:len(written) + 1])
        with open(first, 'rb') as f:
            self.assertTrue(f.read(512).startswith(
                b'PYVIRT-DISK-MARKER first-' + token.encode() + b'\n'))

    def test_built_disk_images(self):
        with open(os.path.join(self.image, 'manifest.json')) as f:
            manifest = jsonutils.loads(f.read())
        for name in ('vmlinuz', 'initrd.img', 'disk-marker.raw'):
            self.assertIn(name, manifest['files'])
        drives = [(os.path.join(self.image, 'disk-marker.raw'), 'raw',
                   'img-raw', True)]
        if 'disk-marker.qcow2' in manifest['files']:
            drives.append((os.path.join(self.image, 'disk-marker.qcow2'),
                           'qcow2', 'img-qcow2', True))
        proc = self.boot(drives, append='pyvirt.poweroff=1')
        console = self.wait_exit(proc)
        disks = parse_disks(console)
        self.assertEqual(len(drives), len(disks), console)
        for disk, (_, _, serial, _) in zip(disks, drives):
            self.assertEqual(serial, disk['serial'])
            self.assertEqual(build.MARKER, disk['marker'])
        self.assertIn('PYVIRT-GUEST: kernel %s' % manifest['kernel_version'],
                      console)

    def test_hotplug_and_acpi_shutdown(self):
        root = build.make_marker_disk(os.path.join(self.tmp, 'root.raw'),
                                      'root')
        hot = build.make_marker_disk(os.path.join(self.tmp, 'hot.raw'),
                                     'PYVIRT-DISK-MARKER hot')
        qmp_path = os.path.join(self.tmp, 'qmp.sock')
        proc = self.boot([(root, 'raw', 'vol-root', False)], qmp=qmp_path)
        self.wait_console('PYVIRT-GUEST: ready', proc)
        qmp = QMP(qmp_path)
        self.addCleanup(qmp.close)

        qmp.execute('blockdev-add', driver='raw', **{
            'node-name': 'hot0',
            'file': {'driver': 'file', 'filename': hot}})
        qmp.execute('device_add', driver='virtio-blk-pci', drive='hot0',
                    serial='vol-hot', id='hotdev0')
        console = self.wait_console('event=added', proc, timeout=60)
        added = [d for d in parse_disks(console) if d['event'] == 'added']
        self.assertEqual(1, len(added), console)
        self.assertEqual('vol-hot', added[0]['serial'])
        self.assertEqual('PYVIRT-DISK-MARKER hot', added[0]['marker'])

        qmp.execute('device_del', id='hotdev0')
        console = self.wait_console(
            'PYVIRT-DISK name=%s event=removed' % added[0]['name'], proc,
            timeout=60)

        started = time.monotonic()
        qmp.execute('system_powerdown')
        console = self.wait_exit(proc, timeout=60)
        self.assertIn('PYVIRT-GUEST: acpi shutdown', console)
        # Generous bound: the guest powers off within ~1 s of the event.
        self.assertLess(time.monotonic() - started, 30)

    def _dirty_rate(self, qmp, seconds=2):
        """QEMU's own estimate of the guest's dirty rate, in MB/s."""
        qmp.execute('calc-dirty-rate', **{'calc-time': seconds,
                                          'mode': 'page-sampling'})
        deadline = time.monotonic() + seconds + 30
        while True:
            result = qmp.execute('query-dirty-rate')
            if result['status'] == 'measured':
                return result['dirty-rate']
            self.assertLess(time.monotonic(), deadline, result)
            time.sleep(0.2)

    def test_dirty_memory_at_a_set_rate(self):
        root = build.make_marker_disk(os.path.join(self.tmp, 'root.raw'),
                                      'root')
        qmp_path = os.path.join(self.tmp, 'qmp.sock')
        proc = self.boot([(root, 'raw', 'vol-root', False)],
                         append='pyvirt.dirty=8:16', qmp=qmp_path)
        console = self.wait_console('PYVIRT-DIRTY ', proc)
        self.assertIn('PYVIRT-DIRTY rate=8 size=16 started', console)
        qmp = QMP(qmp_path)
        self.addCleanup(qmp.close)
        # QEMU samples pages (page-sampling: 512 per GiB), so its figure is
        # an estimate; an idle guest of this image measures 0 MB/s. The
        # bounds are loose: a busy host may slow the guest's loop down.
        rate = self._dirty_rate(qmp)
        self.assertGreaterEqual(rate, 4, 'dirty rate %s MB/s' % rate)
        self.assertLessEqual(rate, 16, 'dirty rate %s MB/s' % rate)
