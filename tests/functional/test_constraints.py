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

"""nova-pyvirt installs under constraints other than the tested ones.

DevStack and every OpenStack deployment tool install with their own
upper-constraints, which pin other versions than this project's
``upper-constraints.txt``. The test builds such a file: this project's,
with the release before the tested one of five packages the driver
imports directly (still within requirements.txt's lower bounds), and asks
pip to resolve ``pip install . -c <that file>`` against the package index
(``--dry-run``: nothing is installed). It must resolve, with each
constrained package at the constrained version and nova not downgraded.

The package index is the one pip is configured with here; the test skips
when pip cannot list a package's releases (no index reachable).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

from oslo_serialization import jsonutils
from oslotest import base
from testtools import content

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Packages the driver imports itself, whose constraint is moved.
MOVED = ('oslo.log', 'oslo.utils', 'os-brick', 'lxml', 'libvirt-python')

# Not part of the source: environments, caches and build output.
_IGNORE = shutil.ignore_patterns(
    '.git', '.venv', '.tox', '.cache', '.stestr', 'build', 'dist',
    '*.egg-info', '__pycache__', '*.pyc', 'doc', 'releasenotes')

_RELEASE = re.compile(r'^\d+(\.\d+)*$')


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def release(version):
    """A final release as a tuple of ints; None for pre-releases etc."""
    if not _RELEASE.match(version):
        return None
    return tuple(int(part) for part in version.split('.'))


def read_pins(path):
    """canonical name -> (line's name, version) of a constraints file."""
    pins = {}
    with open(path) as handle:
        for line in handle:
            line = line.split('#', 1)[0].strip()
            if line:
                name, version = line.split('==')
                pins[canonical(name)] = (name, version)
    return pins


def lower_bounds(path):
    """canonical name -> the ``>=`` bound of a requirements file."""
    bounds = {}
    with open(path) as handle:
        for line in handle:
            match = re.match(r'^([A-Za-z0-9_.-]+)>=([0-9.]+)',
                             line.split('#', 1)[0].strip())
            if match:
                bounds[canonical(match.group(1))] = release(match.group(2))
    return bounds


class TestOtherConstraints(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='nova-pyvirt-constraints-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.env = dict(os.environ, PBR_VERSION='0.0.1', PIP_NO_INPUT='1')
        self.env.pop('PYTHONPATH', None)

    def pip(self, *args, timeout=900):
        return subprocess.run(
            [sys.executable, '-m', 'pip'] + list(args), env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=timeout)

    def published(self, name):
        """Final releases of ``name`` on the index, newest first."""
        proc = self.pip('index', 'versions', name, timeout=120)
        match = re.search(r'^Available versions: (.*)$', proc.stdout, re.M)
        if proc.returncode != 0 or not match:
            self.skipTest('pip cannot list the releases of %s: %s' % (
                name, (proc.stderr or proc.stdout).strip()[-500:]))
        versions = [v.strip() for v in match.group(1).split(',')]
        return [v for v in versions if release(v)]

    def other_constraints(self):
        """This project's constraints with MOVED at an older release."""
        pins = read_pins(os.path.join(REPO, 'upper-constraints.txt'))
        bounds = lower_bounds(os.path.join(REPO, 'requirements.txt'))
        chosen = {}
        for name in MOVED:
            key = canonical(name)
            tested = release(pins[key][1])
            floor = bounds[key]
            older = [v for v in self.published(name)
                     if floor <= release(v) < tested]
            self.assertTrue(older, 'no release of %s between %s and %s' % (
                name, floor, tested))
            chosen[key] = max(older, key=release)
        path = os.path.join(self.tmp, 'other-constraints.txt')
        with open(path, 'w') as handle:
            for key, (name, version) in sorted(pins.items()):
                handle.write('%s==%s\n' % (name, chosen.get(key, version)))
        return path, pins, chosen

    def test_resolves_with_other_constraints(self):
        constraints, pins, chosen = self.other_constraints()
        self.addDetail('constraints moved', content.text_content(
            '\n'.join('%s: %s -> %s' % (k, pins[k][1], v)
                      for k, v in sorted(chosen.items()))))
        source = os.path.join(self.tmp, 'src')
        shutil.copytree(REPO, source, ignore=_IGNORE)
        report = os.path.join(self.tmp, 'report.json')
        # --ignore-installed: resolve the whole tree, as in a new
        # environment, not only what this one lacks.
        proc = self.pip('install', '--dry-run', '--ignore-installed',
                        '--report', report, '-c', constraints, source)
        self.addDetail('pip', content.text_content(proc.stdout + proc.stderr))
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        with open(report) as handle:
            installs = jsonutils.loads(handle.read())['install']
        resolved = {canonical(item['metadata']['name']):
                    item['metadata']['version'] for item in installs}
        self.assertIn('nova-pyvirt', resolved)
        for key, version in chosen.items():
            self.assertEqual(version, resolved[key], key)
        self.assertEqual(pins['nova'][1], resolved['nova'])
