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

"""Local flake8 checks: nova's N3xx rules that apply outside nova's tree.

Registered in tox.ini's ``[flake8:local-plugins]``; codes and meaning as
in nova's own checks, so that code moved between the trees reads the same:

* N324: ``oslo_serialization.jsonutils`` instead of ``json.dump(s)`` and
  ``json.load(s)`` (outside ``tools/``, whose scripts run before the
  environment with oslo exists).
* N340: no ``eventlet.spawn``, ``eventlet.spawn_n``, ``greenthread.spawn``
  or ``greenthread.spawn_n``: nova runs in native threads or eventlet,
  and spawns through ``nova.thread_pool_factory``.
* N357: ``oslo_utils.uuidutils`` instead of ``uuid.uuid4()``.

flake8 hands each check a logical line, in which string literals are
masked: code inside a string (a script run by a test) is not checked.
"""

import os
import re

from hacking import core

_JSON_CALL = re.compile(r'\bjson\.(dumps|dump|loads|load)\(')
_SPAWN_CALL = re.compile(r'\b(eventlet|greenthread)\.(spawn(?:_n)?)\(')
_UUID4_CALL = re.compile(r'\buuid4\(\)')


def _in_tools(filename):
    parts = os.path.normpath(filename).split(os.sep)
    return 'tools' in parts


@core.flake8ext
def check_jsonutils(logical_line, filename):
    """N324: use oslo_serialization.jsonutils, not the json module."""
    if _in_tools(filename):
        return
    for match in _JSON_CALL.finditer(logical_line):
        yield (match.start(),
               'N324: jsonutils.%(fun)s must be used instead of '
               'json.%(fun)s' % {'fun': match.group(1)})


@core.flake8ext
def check_eventlet_spawn(logical_line):
    """N340: no eventlet.spawn or greenthread.spawn (nor their _n)."""
    for match in _SPAWN_CALL.finditer(logical_line):
        yield (match.start(),
               'N340: use nova.thread_pool_factory.spawn() rather than '
               '%s.%s()' % (match.group(1), match.group(2)))


@core.flake8ext
def check_uuid4(logical_line):
    """N357: use oslo_utils.uuidutils to make UUIDs, not uuid4()."""
    for match in _UUID4_CALL.finditer(logical_line):
        yield (match.start(),
               'N357: use oslo_utils.uuidutils to generate UUIDs instead '
               'of uuid4()')
