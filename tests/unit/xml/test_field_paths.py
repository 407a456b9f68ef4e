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

"""Every declared field reads what libxml2's XPath finds, corpus-wide.

Each model class declares its fields once, as paths.  This test walks the
object graph of every document in libvirt's test corpus and checks each
field of each object it meets against libxml2's own XPath engine, with the
model's first-match rule spelled out (``./a/b/@c`` is ``./a[1]/b[1]/@c``):
the field machinery must find the same node, every kind must read the
values libvirt writes (or refuse them with ``XMLValueError``), and
``Child``/``Children`` must wrap the very elements XPath returns.  So
every declaration is exercised on real documents, including the fields no
code of the driver reads yet.
"""

import re

from oslotest import base

from nova_pyvirt import xml
from nova_pyvirt.xml import _tree
from nova_pyvirt.xml import fields
from tests import corpus

_STEP = re.compile(r"^(\*|[A-Za-z_][\w.:-]*)((?:\[@[\w:-]+='[^']*'\])*)$")
_UNITS = {'b': 1, 'bytes': 1, 'k': 1024, 'kib': 1024, 'kb': 1000,
          'm': 1024 ** 2, 'mib': 1024 ** 2, 'mb': 1000 ** 2,
          'g': 1024 ** 3, 'gib': 1024 ** 3, 'gb': 1000 ** 3,
          't': 1024 ** 4, 'tib': 1024 ** 4, 'tb': 1000 ** 4}


def _first_match_xpath(path_text, all_last=False):
    """(XPath of the element a path names, its attribute or None)."""
    parts = [p for p in path_text.split('/') if p not in ('', '.')]
    attr = parts.pop()[1:] if parts and parts[-1].startswith('@') else None
    steps = []
    for index, part in enumerate(parts):
        if not _STEP.match(part):
            raise AssertionError('unexpected path step %r' % part)
        last = index == len(parts) - 1
        steps.append(part if all_last and last else part + '[1]')
    return './' + '/'.join(steps) if steps else '.', attr


def _declared_fields(cls):
    found = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, fields.Field):
                found[name] = value
    return found


class FieldPathsTest(base.BaseTestCase):

    def setUp(self):
        super(FieldPathsTest, self).setUp()
        self.present = set()
        self.checked = set()

    def _xpath(self, element, expr):
        return element.xpath(expr, namespaces=_tree.NAMESPACES)

    def _one(self, element, path_text):
        expr, attr = _first_match_xpath(path_text)
        found = self._xpath(element, expr)
        return (found[0] if found else None), attr

    def _check(self, obj, where):
        cls = type(obj)
        for name, field in _declared_fields(cls).items():
            key = '%s.%s' % (cls.__name__, name)
            self.checked.add(key)
            context = '%s in %s' % (key, where)
            kind = type(field)
            if kind is fields.Children:
                expr, _attr = _first_match_xpath(field.path.text, True)
                expected = self._xpath(obj.element, expr)
                items = list(getattr(obj, name))
                self.assertEqual(len(expected), len(items), context)
                for item, element in zip(items, expected):
                    self.assertIs(element, item.element, context)
                    self._check(item, where)
                if items:
                    self.present.add(key)
                continue
            if kind is fields.Values:
                expr, attr = _first_match_xpath(field.path.text, True)
                elements = self._xpath(obj.element, expr)
                expected = [e.text if attr is None else e.get(attr)
                            for e in elements]
                self.assertEqual(expected, getattr(obj, name), context)
                if expected:
                    self.present.add(key)
                continue
            element, attr = self._one(obj.element, field.path.text)
            if kind is fields.Flag:
                self.assertEqual(element is not None, getattr(obj, name),
                                 context)
                if element is not None:
                    self.present.add(key)
                continue
            if kind is fields.Child:
                child = getattr(obj, name)
                if element is None:
                    self.assertIsNone(child, context)
                    continue
                self.assertIs(element, child.element, context)
                self.present.add(key)
                self._check(child, where)
                continue
            raw = None
            if element is not None:
                raw = element.text if attr is None else element.get(attr)
            if raw is None:
                self.assertIsNone(getattr(obj, name), context)
                continue
            self.present.add(key)
            if kind is fields.Scaled:
                unit = element.get('unit', field.default_unit).lower()
                expected = (int(raw) * _UNITS[unit]
                            // _UNITS[field.unit.lower()])
            else:
                self.assertIs(fields.Field, kind, context)
                try:
                    expected = field.kind.to_python(raw)
                except (ValueError, KeyError):
                    self.assertRaises(xml.XMLValueError, getattr, obj, name)
                    continue
            self.assertEqual(expected, getattr(obj, name), context)

    def test_every_field_reads_what_xpath_finds(self):
        paths = corpus.files(*corpus.FOLDERS)
        for path in paths:
            self._check(xml.parse(corpus.read(path)), path)
        # The walk met fields of every kind of document, and most fields
        # hold a value somewhere in libvirt's own test documents.
        self.assertGreater(len(self.checked), 400)
        self.assertGreater(len(self.present), 0.7 * len(self.checked))
