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

"""What every bench prints and reads: load, versions, verdicts, disk use."""

import os
import subprocess


def loadavg():
    """The load average as text: the benches report it with their figures."""
    try:
        return '%.2f %.2f %.2f' % os.getloadavg()
    except OSError:
        return 'unknown'


def package_version(name):
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:
        return 'unknown'


def print_summary(title, checks, widths=(24, 36, 8)):
    """Print ``(name, value, target, ok)`` rows; return the exit status.

    ``ok`` is True (PASS), False (FAIL) or None (INFO, not judged).
    """
    print('\n== %s ==' % title)
    row = '%%-%ds %%-%ds target %%-%ds %%s' % widths
    for name, value, target, ok in checks:
        verdict = 'INFO' if ok is None else ('PASS' if ok else 'FAIL')
        print(row % (name, value, target, verdict))
    failed = [c[0] for c in checks if c[3] is False]
    print('result: %s' % ('FAIL (%s)' % ', '.join(failed) if failed
                          else 'PASS'))
    return 1 if failed else 0


def allocated_bytes(path):
    """Bytes the file system holds for ``path`` (holes not counted)."""
    return os.stat(path).st_blocks * 512


def output_of(argv):
    """A command's standard output; it must succeed."""
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True).stdout
