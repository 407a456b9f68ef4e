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

"""The test guest's counter, read while it moves between hosts.

A guest booted with ``pyvirt.counter=1`` prints ``PYVIRT-COUNTER <n>
boot=<id>`` every 100 ms (tools/guest_image/README.md). During a live
migration its console log is written on the source, then on the
destination: :class:`CounterWatch` follows both files and notes when each
line appeared, so the longest gap between two lines is the guest's pause
(the downtime, to within the 100 ms period and the watch's poll). The live
migration tests and ``bench/live_migration_bench.py`` both measure with it.
"""

import re
import threading
import time

COUNTER = re.compile(r'^PYVIRT-COUNTER (\d+) boot=(\S+)\r?$', re.M)


class CounterWatch(object):
    """Notes when each counter line shows up in a set of console logs."""

    def __init__(self, paths, interval=0.02):
        self.paths = list(paths)
        self.interval = interval
        self.seen = {}          # n -> (monotonic time, boot id, path)
        self._offsets = dict.fromkeys(self.paths, 0)
        self._partial = dict.fromkeys(self.paths, '')
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        while not self._stop.is_set():
            for path in self.paths:
                self._read(path)
            self._stop.wait(self.interval)

    def _read(self, path):
        try:
            with open(path, 'rb') as handle:
                handle.seek(self._offsets[path])
                data = handle.read()
        except FileNotFoundError:
            return
        if not data:
            return
        now = time.monotonic()
        self._offsets[path] += len(data)
        text = self._partial[path] + data.decode('ascii', 'replace')
        lines = text.split('\n')
        self._partial[path] = lines.pop()
        for line in lines:
            match = COUNTER.match(line)
            if match:
                self.seen.setdefault(int(match.group(1)),
                                     (now, match.group(2), path))

    def on(self, path):
        return sorted(n for n, (_t, _b, p) in self.seen.items() if p == path)

    def longest_gap(self):
        """``(seconds, n_before, n_after)`` of the longest silence."""
        numbers = sorted(self.seen)
        gaps = [(self.seen[b][0] - self.seen[a][0], a, b)
                for a, b in zip(numbers, numbers[1:])]
        return max(gaps) if gaps else (0, None, None)
