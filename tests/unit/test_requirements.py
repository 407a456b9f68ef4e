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

"""requirements.txt and test-requirements.txt say what the code imports.

Every third-party module imported anywhere in the driver (lazy imports in
functions included) comes from a distribution requirements.txt declares,
and every distribution it declares is imported: an undeclared import
breaks an installation that does not happen to pull the package in
through nova, a declared one never imported is a dependency for nothing.
The same holds for the tests, bench and tools against test-requirements.txt
(plus requirements.txt), where a declaration may also be a command the
scripts run, or a module nova's functional harness imports.

Modules are mapped to distributions with the installed environment's
``importlib.metadata.packages_distributions()``, so the check runs against
what pip really installed for each name.
"""

import ast
import configparser
import importlib.metadata
import os
import re
import sys

from oslotest import base

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

OWN_DISTRIBUTION = 'nova-pyvirt'
# Top-level packages of this repository.
LOCAL_MODULES = {'nova_pyvirt', 'tests', 'bench'}

# Declared test requirements that are commands rather than imports: the
# distribution and the console script the scripts run.
COMMANDS = {
    'flake8': 'flake8',
    'bashate': 'bashate',
    'stestr': 'stestr',
    'python-subunit': 'subunit-stats',
    'reno': 'reno',
}
# Where the commands are run.
SCRIPTS = ('tools/quick-checks.sh', 'tools/run-tests.sh', 'tox.ini')

# Declared test requirements that nova's functional harness imports (the
# tests import the harness, not these): distribution -> module.
HARNESS = {
    'openstack-placement': 'placement',
    'wsgi-intercept': 'wsgi_intercept',
    'sqlalchemy': 'sqlalchemy',
}
# The harness modules the tests import (tests/fixtures/nova_harness.py).
HARNESS_SOURCES = ('nova/test.py', 'nova/tests/fixtures/nova.py',
                   'nova/tests/functional/fixtures.py')


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def declared(filename):
    """Canonical distribution names of a requirements file."""
    names = set()
    with open(os.path.join(REPO, filename)) as handle:
        for line in handle:
            line = line.split('#', 1)[0].strip()
            if line:
                names.add(canonical(re.split(r'[\s<>=!~;\[]', line, 1)[0]))
    return names


def imported_modules(*tops):
    """Top-level module -> a file importing it, for absolute imports.

    ``tops`` are files or directories, relative to the repository or
    absolute.
    """
    found = {}
    for top in tops:
        top = os.path.join(REPO, top)
        paths = [top] if top.endswith('.py') else (
            os.path.join(root, name)
            for root, _dirs, files in os.walk(top)
            for name in sorted(files) if name.endswith('.py'))
        for path in paths:
            with open(path) as handle:
                tree = ast.parse(handle.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split('.')[0],
                                     os.path.relpath(path, REPO))
    return found


def third_party(modules):
    """Distribution -> files importing it; modules no distribution has."""
    owners = importlib.metadata.packages_distributions()
    dists, unknown = {}, {}
    for module, path in sorted(modules.items()):
        if module in sys.stdlib_module_names or module in LOCAL_MODULES:
            continue
        names = {canonical(d) for d in owners.get(module, ())}
        # nova's package also holds this project's shim (nova/virt/pyvirt).
        names.discard(OWN_DISTRIBUTION)
        if not names:
            unknown[module] = path
        for name in names:
            dists.setdefault(name, []).append(path)
    return dists, unknown


class TestRuntimeRequirements(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.declared = declared('requirements.txt')
        self.imported, self.unknown = third_party(
            imported_modules('nova_pyvirt', 'nova'))

    def test_every_import_is_installed(self):
        self.assertEqual({}, self.unknown)

    def test_every_import_is_declared(self):
        self.assertEqual(
            {}, {d: p for d, p in self.imported.items()
                 if d not in self.declared})

    def test_every_declaration_is_imported(self):
        self.assertEqual([], sorted(self.declared - set(self.imported)))

    def test_lower_bounds_only(self):
        with open(os.path.join(REPO, 'requirements.txt')) as handle:
            pins = [line.strip() for line in handle
                    if '==' in line.split('#', 1)[0]]
        self.assertEqual([], pins)


class TestTestRequirements(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.runtime = declared('requirements.txt')
        self.declared = declared('test-requirements.txt')
        self.imported, self.unknown = third_party(
            imported_modules('tests', 'bench', 'tools'))

    def test_every_import_is_installed(self):
        self.assertEqual({}, self.unknown)

    def test_every_import_is_declared(self):
        self.assertEqual(
            {}, {d: p for d, p in self.imported.items()
                 if d not in self.declared | self.runtime})

    def test_every_declaration_is_used(self):
        unused = self.declared - set(self.imported)
        self.assertEqual(sorted(set(COMMANDS) | set(HARNESS)),
                         sorted(unused))

    def test_commands_are_run(self):
        scripts = ''
        for name in SCRIPTS:
            with open(os.path.join(REPO, name)) as handle:
                scripts += handle.read()
        for dist, command in COMMANDS.items():
            scripts_of_dist = {
                ep.name for ep in importlib.metadata.distribution(
                    dist).entry_points if ep.group == 'console_scripts'}
            self.assertIn(command, scripts_of_dist, dist)
            self.assertRegex(scripts, r'(?m)^[^#\n]*\b%s\b' % command,
                             '%s (%s) is run by none of %s' % (
                                 command, dist, ', '.join(SCRIPTS)))

    def test_harness_imports(self):
        nova = importlib.metadata.distribution('nova')
        # Absolute paths: os.path.join(REPO, path) keeps them.
        modules = imported_modules(*(str(nova.locate_file(source))
                                     for source in HARNESS_SOURCES))
        for dist, module in HARNESS.items():
            self.assertIn(module, modules, dist)
            self.assertIn(dist, {canonical(d) for d in importlib.metadata.
                                 packages_distributions()[module]})


class TestConstraints(base.BaseTestCase):

    def test_every_requirement_has_a_tested_version(self):
        pinned = {}
        with open(os.path.join(REPO, 'upper-constraints.txt')) as handle:
            for line in handle:
                line = line.split('#', 1)[0].strip()
                if line:
                    name, version = line.split('==')
                    pinned[canonical(name)] = version
        wanted = declared('requirements.txt') | declared(
            'test-requirements.txt') | declared('doc/requirements.txt')
        self.assertEqual([], sorted(wanted - set(pinned)))

    def test_tox_installs_with_the_constraints(self):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(os.path.join(REPO, 'tox.ini'))
        for section in parser.sections():
            deps = parser.get(section, 'deps', fallback='').split()
            if deps:
                self.assertIn('-c{toxinidir}/upper-constraints.txt', deps,
                              section)
