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

"""The built wheel ships the driver and the nova shim, and nothing of nova.

nova loads drivers as ``nova.virt.<compute_driver>``, so the wheel carries
``nova/virt/pyvirt/``. It must not carry ``nova/__init__.py`` or
``nova/virt/__init__.py``: installing those would replace nova's own files.
"""

import atexit
import configparser
import email.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

from oslotest import base

from tests.unit import test_requirements

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Not part of the source: environments, caches and build output.
_IGNORE = shutil.ignore_patterns(
    '.git', '.venv', '.tox', '.cache', '.stestr', 'build', 'dist',
    '*.egg-info', '__pycache__', '*.pyc', 'doc', 'releasenotes')

# Captured at import: oslotest gives every test a private TMPDIR that is
# deleted when the test ends, and the wheel is shared by the tests below.
_TMP_BASE = tempfile.gettempdir()

_wheel = {}


def build_wheel():
    """Build the wheel once per test process and return its path.

    The build runs on a copy of the source tree (pip writes build/ and
    *.egg-info/ next to setup.py) with PBR_VERSION set, since the copy has
    no git history for pbr to derive a version from.
    """
    if 'path' not in _wheel:
        tmp = tempfile.mkdtemp(prefix='nova-pyvirt-wheel-', dir=_TMP_BASE)
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        src = os.path.join(tmp, 'src')
        out = os.path.join(tmp, 'out')
        shutil.copytree(REPO, src, ignore=_IGNORE)
        env = dict(os.environ, PBR_VERSION='0.0.1', PIP_NO_INPUT='1')
        proc = subprocess.run(
            [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
             '--wheel-dir', out, src],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=600)
        if proc.returncode != 0:
            raise AssertionError('pip wheel failed:\n%s' % proc.stdout)
        wheels = [f for f in os.listdir(out) if f.endswith('.whl')]
        if len(wheels) != 1:
            raise AssertionError('expected one wheel, got %s' % wheels)
        _wheel['path'] = os.path.join(out, wheels[0])
        _wheel['src'] = src
    return _wheel['path']


class TestWheel(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.wheel = build_wheel()
        with zipfile.ZipFile(self.wheel) as zf:
            self.names = set(zf.namelist())
            dist_info = {n.split('/')[0] for n in self.names
                         if n.split('/')[0].endswith('.dist-info')}
            self.assertEqual(1, len(dist_info), dist_info)
            self.dist_info = dist_info.pop()
            self.entry_points = zf.read(
                self.dist_info + '/entry_points.txt').decode()
            self.metadata = email.parser.Parser().parsestr(
                zf.read(self.dist_info + '/METADATA').decode())

    def test_wheel_name(self):
        self.assertTrue(
            os.path.basename(self.wheel).startswith('nova_pyvirt-0.0.1-'),
            self.wheel)

    def test_ships_shim(self):
        self.assertIn('nova/virt/pyvirt/__init__.py', self.names)

    def test_ships_no_nova_package_files(self):
        self.assertNotIn('nova/__init__.py', self.names)
        self.assertNotIn('nova/virt/__init__.py', self.names)
        nova_files = sorted(n for n in self.names if n.startswith('nova/'))
        self.assertEqual(['nova/virt/pyvirt/__init__.py'], nova_files)

    def test_ships_every_nova_pyvirt_package(self):
        # Compared with the copy the wheel was built from: the source tree
        # may change while the tests run.
        src = _wheel['src']
        for dirpath, dirnames, filenames in os.walk(
                os.path.join(src, 'nova_pyvirt')):
            rel = os.path.relpath(dirpath, src)
            if '__init__.py' not in filenames:
                continue
            for name in filenames:
                if name.endswith('.py'):
                    self.assertIn('%s/%s' % (rel, name), self.names)

    def test_ships_rootwrap_filter(self):
        # Installed as <prefix>/etc/nova/rootwrap.d/pyvirt.filters, beside
        # nova's compute.filters.
        data = '%s.data/data/etc/nova/rootwrap.d/pyvirt.filters' % (
            self.dist_info[:-len('.dist-info')])
        self.assertIn(data, self.names)

    def test_ships_no_tests(self):
        self.assertEqual(
            [], sorted(n for n in self.names if n.startswith('tests/')))

    def test_entry_points(self):
        parser = configparser.ConfigParser()
        parser.read_string(self.entry_points)
        self.assertEqual('nova_pyvirt.conf:list_opts',
                         parser.get('oslo.config.opts', 'nova_pyvirt'))
        self.assertEqual('nova_pyvirt.cmd.main:main',
                         parser.get('console_scripts', 'nova-pyvirt'))

    def test_metadata(self):
        self.assertEqual('nova-pyvirt', self.metadata['Name'])
        # nova 34 needs Python 3.11.
        self.assertEqual('>=3.11', self.metadata['Requires-Python'])
        self.assertNotIn('Programming Language :: Python :: 3.10',
                         self.metadata.get_all('Classifier'))
        requires = self.metadata.get_all('Requires-Dist')
        self.assertIn('nova>=34.0.0', requires)
        # Lower bounds only, so pip can take nova's point releases; the
        # tested versions are constraints, not requirements.
        self.assertEqual([], [r for r in requires if '==' in r])

    def test_metadata_requires_what_requirements_txt_declares(self):
        requires = {test_requirements.canonical(re.split(r'[\s<>=!~;(]',
                                                         r, 1)[0])
                    for r in self.metadata.get_all('Requires-Dist')}
        self.assertEqual(
            sorted(test_requirements.declared('requirements.txt')),
            sorted(requires))
