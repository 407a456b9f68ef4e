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

"""The copy's process runner, with small local commands (no ssh)."""

import os
import signal
import subprocess
import sys
import time

import fixtures
from oslotest import base

from nova_pyvirt.migration import pipeline

PY = sys.executable


def py(code):
    return [PY, '-c', code]


class PipeTest(base.BaseTestCase):

    def setUp(self):
        super(PipeTest, self).setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def test_data_goes_from_producer_to_consumer(self):
        src = os.path.join(self.tmp, 'src')
        dest = os.path.join(self.tmp, 'dest')
        data = os.urandom(3 * 1024 * 1024 + 17)
        with open(src, 'wb') as handle:
            handle.write(data)
        # The consumer writes slowly enough for a few progress ticks.
        consumer = py('import sys, time\n'
                      'out = open(%r, "wb")\n'
                      'while True:\n'
                      '    chunk = sys.stdin.buffer.read(1 << 20)\n'
                      '    if not chunk:\n'
                      '        break\n'
                      '    out.write(chunk)\n'
                      '    out.flush()\n'
                      '    time.sleep(0.2)\n' % dest)
        seen = []
        sent, received = pipeline.pipe(['cat', src], consumer,
                                       on_progress=seen.append,
                                       count=pipeline.CONSUMER_WRITE)
        self.assertTrue(sent.ok and received.ok, (sent, received))
        with open(dest, 'rb') as handle:
            self.assertEqual(data, handle.read())
        self.assertTrue(seen)
        self.assertEqual(sorted(seen), seen)
        self.assertLessEqual(seen[-1], len(data))

    def test_producer_read_count(self):
        src = os.path.join(self.tmp, 'src')
        with open(src, 'wb') as handle:
            handle.write(b'\0' * (4 * 1024 * 1024))
        seen = []
        consumer = py('import sys, time\n'
                      'while sys.stdin.buffer.read(1 << 20):\n'
                      '    time.sleep(0.15)\n')
        sent, received = pipeline.pipe(['cat', src], consumer,
                                       on_progress=seen.append)
        self.assertTrue(sent.ok and received.ok)
        self.assertTrue(seen)
        self.assertGreater(seen[-1], 0)

    def test_consumer_failure_stops_the_producer(self):
        started = time.monotonic()
        sent, received = pipeline.pipe(
            ['yes'], py('import sys\n'
                        'sys.stdin.buffer.read(100)\n'
                        'sys.stderr.write("disk full\\n")\n'
                        'sys.exit(3)\n'))
        self.assertLess(time.monotonic() - started, 20)
        self.assertEqual(3, received.returncode)
        self.assertEqual('disk full\n', received.stderr)
        self.assertEqual(-13, sent.returncode)   # SIGPIPE
        self.assertEqual('yes was killed by SIGPIPE', sent.describe())
        self.assertIn('exited with status 3: disk full',
                      received.describe())

    def test_producer_failure_ends_the_input(self):
        sent, received = pipeline.pipe(
            ['cat', os.path.join(self.tmp, 'missing')], ['cat'])
        self.assertEqual(1, sent.returncode)
        self.assertIn('No such file or directory', sent.stderr)
        self.assertTrue(received.ok)

    def test_stderr_is_bounded(self):
        sent, _received = pipeline.pipe(
            py('import sys; sys.stderr.write("x" * 200000 + "END")'),
            ['cat'])
        self.assertEqual(pipeline.STDERR_LIMIT, len(sent.stderr))
        self.assertTrue(sent.stderr.endswith('END'))

    def test_messages_are_in_english(self):
        sent, _received = pipeline.pipe(
            py('import os; print(os.environ["LC_ALL"], file=__import__('
               '"sys").stderr)'), ['cat'])
        self.assertEqual('C\n', sent.stderr)

    def test_a_raising_callback_stops_and_reaps_the_commands(self):
        def boom(_count):
            raise RuntimeError('stop')
        pids = []
        real_child = pipeline._Child

        def child(*args, **kwargs):
            made = real_child(*args, **kwargs)
            pids.append(made.pid)
            return made
        self.useFixture(fixtures.MonkeyPatch(
            'nova_pyvirt.migration.pipeline._Child', child))
        self.assertRaises(RuntimeError, pipeline.pipe, ['yes'],
                          py('import sys, time\n'
                             'while sys.stdin.buffer.read(65536):\n'
                             '    time.sleep(0.01)\n'),
                          on_progress=boom)
        self.assertEqual(2, len(pids))
        for pid in pids:
            self.assertRaises(ChildProcessError, os.waitpid, pid, 0)

    def test_a_grandchild_holding_stderr_does_not_hang_the_copy(self):
        # The command leaves a background process that keeps stderr open,
        # as an ssh connection master would.
        leaver = py('import subprocess, sys\n'
                    'print(subprocess.Popen(["sleep", "30"]).pid)\n'
                    'sys.stderr.write("bye\\n")\n')
        output = []
        started = time.monotonic()
        outcome = pipeline.stream(leaver, on_output=output.append)
        self.assertLess(time.monotonic() - started,
                        pipeline.ORPHAN_GRACE + 10)
        self.assertEqual('bye\n', outcome.stderr)
        # The background sleep is this test's: stop it.
        os.kill(int(b''.join(output)), signal.SIGTERM)


class EventletTest(base.BaseTestCase):

    def test_a_copy_yields_to_other_green_threads(self):
        # In a fresh interpreter: monkey patching cannot be undone.
        script = (
            'import eventlet\n'
            'eventlet.monkey_patch()\n'
            'import sys, time\n'
            'from nova_pyvirt.migration import pipeline\n'
            'ticks = []\n'
            'def ticker():\n'
            '    while True:\n'
            '        ticks.append(time.monotonic())\n'
            '        eventlet.sleep(0.05)\n'
            'eventlet.spawn(ticker)\n'
            'eventlet.sleep(0)\n'
            'start = time.monotonic()\n'
            'producer = [sys.executable, "-c", "import sys, time\\n"\n'
            '            "for i in range(5):\\n"\n'
            '            "    sys.stdout.write(\'x\' * 100000)\\n"\n'
            '            "    sys.stdout.flush()\\n"\n'
            '            "    time.sleep(0.2)\\n"]\n'
            'sent, received = pipeline.pipe(producer, ["cat"])\n'
            'assert sent.ok and received.ok, (sent, received)\n'
            'during = [t for t in ticks if t >= start]\n'
            'print(len(during))\n')
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))))
        env = dict(os.environ, PYTHONPATH=root,
                   PYTHONWARNINGS='ignore')
        done = subprocess.run([PY, '-c', script], env=env, cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=120)
        self.assertEqual(0, done.returncode, done.stderr)
        # About 1 s of copying: the ticker ran all along.
        self.assertGreater(int(done.stdout), 8)


class StreamTest(base.BaseTestCase):

    def test_output_is_handed_over_as_it_comes(self):
        chunks = []
        outcome = pipeline.stream(
            py('import sys, time\n'
               'for i in range(3):\n'
               '    sys.stdout.write("%d\\r" % i)\n'
               '    sys.stdout.flush()\n'
               '    time.sleep(0.05)\n'
               'sys.stderr.write("warn")\n'),
            on_output=chunks.append)
        self.assertTrue(outcome.ok)
        self.assertEqual(b'0\r1\r2\r', b''.join(chunks))
        self.assertEqual('warn', outcome.stderr)

    def test_failure(self):
        outcome = pipeline.stream(['false'])
        self.assertFalse(outcome.ok)
        self.assertEqual('false exited with status 1', outcome.describe())

    def test_missing_program(self):
        self.assertRaises(FileNotFoundError, pipeline.stream,
                          ['/nonexistent/rsync'])
