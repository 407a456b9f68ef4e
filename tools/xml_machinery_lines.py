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

"""Count the lines of the XML model's machinery.

Run from the repository root::

    .venv/bin/python tools/xml_machinery_lines.py [-v]

The machinery is every line of ``nova_pyvirt/xml/*.py`` (license headers,
docstrings and blank lines included) except the model classes, a model
class being a class whose body assigns a field (a call such as
``Field(...)``, ``Children(...)`` or a helper returning one); it counts
from its ``class`` line through its last body line.  ``-v`` prints the
count per file.
"""

import ast
import glob
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIELD_CALLS = {'Field', 'Flag', 'Scaled', 'Child', 'Children', 'Values',
                'Switch', '_devices'}


def _is_model_class(node):
    for stmt in node.body:
        if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
                and getattr(stmt.value.func, 'id', None) in _FIELD_CALLS):
            return True
    return False


def machinery_lines(path):
    """(all lines, machinery lines) of one module."""
    with open(path) as handle:
        text = handle.read()
    total = len(text.splitlines())
    model = sum(node.end_lineno - node.lineno + 1
                for node in ast.parse(text).body
                if isinstance(node, ast.ClassDef) and _is_model_class(node))
    return total, total - model


def main(argv):
    paths = sorted(glob.glob(os.path.join(_ROOT, 'nova_pyvirt', 'xml',
                                          '*.py')))
    count = 0
    for path in paths:
        total, machinery = machinery_lines(path)
        count += machinery
        if '-v' in argv:
            print('%5d of %5d  %s'
                  % (machinery, total, os.path.relpath(path, _ROOT)))
    print('XML machinery: %d lines' % count)


if __name__ == '__main__':
    main(sys.argv[1:])
