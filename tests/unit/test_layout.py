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

"""The package's layout follows the data flow the architecture page draws.

``xml -> design -> {hypervisor, storage, volume, network} ->
{migration, report} -> driver -> cmd``: a package imports only from
packages before it, only ``driver``, ``conf`` and ``exception`` sit at the
top, and no two modules share a name. ``privsep`` (the root operations,
imported by the privsep daemon on its own) is below everything and
imports nothing else of the project.
"""

import ast
import collections
import os

from oslotest import base

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'nova_pyvirt')

# Each layer may import from the layers before it; packages in one layer
# do not import each other.
LAYERS = (
    ('privsep',),
    ('conf', 'exception'),
    ('xml',),
    ('design',),
    ('hypervisor', 'storage', 'volume', 'network'),
    ('migration', 'report'),
    ('driver',),
    ('cmd',),
)
TOP_LEVEL_MODULES = {'__init__.py', 'conf.py', 'driver.py', 'exception.py'}


def _modules():
    for root, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                yield os.path.join(root, name)


def _unit(path):
    """The top-level package or module of ``nova_pyvirt`` a file is in."""
    return os.path.relpath(path, PACKAGE).split(os.sep)[0].replace('.py', '')


def _imported_units(path):
    with open(path) as source:
        tree = ast.parse(source.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split('.')
            if parts[0] != 'nova_pyvirt':
                continue
            if len(parts) > 1:
                yield parts[1]
            else:
                for alias in node.names:
                    yield alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split('.')
                if parts[0] == 'nova_pyvirt' and len(parts) > 1:
                    yield parts[1]


class LayoutTest(base.BaseTestCase):

    def test_top_level_holds_only_driver_conf_exception(self):
        files = {name for name in os.listdir(PACKAGE)
                 if os.path.isfile(os.path.join(PACKAGE, name))
                 and name.endswith('.py')}
        self.assertEqual(TOP_LEVEL_MODULES, files)

    def test_every_top_level_unit_has_a_layer(self):
        layered = {unit for layer in LAYERS for unit in layer}
        units = {_unit(path) for path in _modules()} - {'__init__'}
        self.assertEqual(set(), units - layered)

    def test_imports_follow_the_data_flow(self):
        rank = {unit: index for index, layer in enumerate(LAYERS)
                for unit in layer}
        wrong = []
        for path in _modules():
            unit = _unit(path)
            if unit == '__init__':
                continue
            for target in _imported_units(path):
                if target != unit and rank[target] >= rank[unit]:
                    wrong.append('%s imports %s' % (
                        os.path.relpath(path, PACKAGE), target))
        self.assertEqual([], sorted(set(wrong)))

    def test_privsep_imports_nothing_of_the_project(self):
        # The daemon imports this package and must not drag in nova or
        # the rest of the driver.
        wrong = []
        for path in _modules():
            if _unit(path) != 'privsep':
                continue
            with open(path) as source:
                tree = ast.parse(source.read())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    top = name.split('.')[0]
                    if top == 'nova' or (
                            top == 'nova_pyvirt' and
                            name not in ('nova_pyvirt',
                                         'nova_pyvirt.privsep')):
                        wrong.append('%s imports %s' % (
                            os.path.relpath(path, PACKAGE), name))
        self.assertEqual([], wrong)

    def test_no_two_modules_share_a_name(self):
        by_name = collections.defaultdict(list)
        for path in _modules():
            name = os.path.basename(path)
            if name != '__init__.py':
                by_name[name].append(os.path.relpath(path, PACKAGE))
        packages = {name + '.py' for name in os.listdir(PACKAGE)
                    if os.path.isdir(os.path.join(PACKAGE, name))}
        shared = {name: sorted(paths) for name, paths in by_name.items()
                  if len(paths) > 1 or name in packages}
        self.assertEqual({}, shared)
