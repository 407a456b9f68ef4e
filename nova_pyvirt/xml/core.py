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

"""The declarative core of the libvirt XML object model.

An :class:`XMLObject` wraps one lxml element and stores nothing else: every
typed attribute is a descriptor bound to a path below that element, so parsing
keeps whatever the model does not know, editing one field touches one node and
serializing writes the tree back.  Elements created through a field are placed
in the order the fields were declared, which is the order libvirt uses.

Path syntax (a small subset of XPath, resolved with lxml's ElementPath):

* ``@type``, ``./driver/@cache``: an attribute;
* ``./name``, ``./os/type``: an element's text, or the element for
  :class:`Flag`, :class:`Child` and :class:`Children`;
* ``./timer[@name='pit']``: a step selecting by attribute; creating it sets the
  attribute;
* ``./nova:instance``: a namespaced step, prefixes from :data:`NAMESPACES`.
"""

import copy
import re

from lxml import etree

NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'
NAMESPACES = {'nova': NOVA_NS}
_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True,
                          remove_comments=False, huge_tree=False)


class XMLError(ValueError):
    """Base class of the object model's errors."""


class XMLValueError(XMLError):
    """A typed field was given, or holds, a value of the wrong kind."""


class XMLDocumentError(XMLError):
    """A document could not be parsed, or has an unexpected root element."""


def qualify(name):
    """Turn ``prefix:local`` into lxml's ``{uri}local`` form."""
    if ':' not in name or name.startswith('{'):
        return name
    prefix, local = name.split(':', 1)
    try:
        return '{%s}%s' % (NAMESPACES[prefix], local)
    except KeyError:
        raise XMLError('unknown namespace prefix %r in %r' % (prefix, name))


def make_element(tag, attrib=None):
    """Create a detached element, declaring its namespace prefix if any."""
    tag = qualify(tag)
    nsmap = None
    if tag.startswith('{'):
        uri = tag[1:].split('}', 1)[0]
        nsmap = {_PREFIXES.get(uri): uri}
    return etree.Element(tag, attrib or {}, nsmap=nsmap)


_STEP_RE = re.compile(
    r"^(?P<tag>\*|[A-Za-z_][\w.:-]*)(?P<preds>(?:\[@[\w:-]+='[^']*'\])*)$")
_PRED_RE = re.compile(r"\[@([\w:-]+)='([^']*)'\]")


class Step(object):
    """One element step of a path: a tag plus optional attribute tests."""

    __slots__ = ('tag', 'preds', 'pattern')

    def __init__(self, text):
        match = _STEP_RE.match(text)
        if not match:
            raise XMLError('bad path step %r' % text)
        self.tag = qualify(match.group('tag'))
        self.preds = tuple((qualify(a), v)
                           for a, v in _PRED_RE.findall(match.group('preds')))
        self.pattern = self.tag + ''.join(
            "[@%s='%s']" % pred for pred in self.preds)

    def create(self):
        return make_element(self.tag, dict(self.preds))


class Path(object):
    """A compiled field path: element steps and an optional final attribute."""

    __slots__ = ('text', 'steps', 'attr', 'pattern', 'parent_pattern')

    def __init__(self, text):
        self.text = text
        parts = [p for p in text.split('/') if p not in ('', '.')]
        self.attr = None
        if parts and parts[-1].startswith('@'):
            self.attr = qualify(parts.pop()[1:])
        self.steps = tuple(Step(p) for p in parts)
        self.pattern = '/'.join(s.pattern for s in self.steps) or None
        self.parent_pattern = (
            '/'.join(s.pattern for s in self.steps[:-1]) or None)

    def find(self, element):
        """The element the path designates (ignoring the attribute)."""
        if self.pattern is None:
            return element
        return element.find(self.pattern)

    def find_parent(self, element):
        if self.parent_pattern is None:
            return element
        return element.find(self.parent_pattern)


def canonical(element):
    """C14N bytes of an element, ignoring whitespace between elements."""
    if isinstance(element, XMLObject):
        element = element.element
    clone = copy.deepcopy(element)
    for node in clone.iter():
        if len(node) and node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    clone.tail = None
    return etree.tostring(clone, method='c14n')


def parse_element(text):
    """Parse XML text (str or bytes) into an lxml element, failing clearly."""
    if isinstance(text, str):
        text = text.encode('utf-8')
    try:
        return etree.fromstring(text, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XMLDocumentError('not well-formed XML: %s' % exc)


# ---------------------------------------------------------------------------
# Value kinds: convert between XML text and Python values.

class Kind(object):
    """How a field's text maps to a Python value and back."""

    name = 'string'

    def to_python(self, text):
        return text

    def to_text(self, value):
        return str(value)


class _Int(Kind):
    name = 'integer'

    def to_python(self, text):
        text = text.strip()
        return int(text, 16) if text.lower().startswith('0x') else int(text)

    def to_text(self, value):
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, str):
            self.to_python(value)
            return value.strip()
        return str(int(value))


class _Bool(Kind):
    def __init__(self, true, false):
        self.words = {true: True, false: False}
        self.name = '%s or %s' % (true, false)

    def to_python(self, text):
        return self.words[text.strip()]

    def to_text(self, value):
        if isinstance(value, bool):
            return next(w for w, v in self.words.items() if v is value)
        if value in self.words:
            return value
        raise ValueError(value)


class Enum(Kind):
    """A string limited to the given choices when written."""

    def __init__(self, *choices):
        self.choices = choices
        self.name = 'one of %s' % ', '.join(choices)

    def to_text(self, value):
        if value not in self.choices:
            raise ValueError(value)
        return value


STR = Kind()
INT = _Int()
YESNO = _Bool('yes', 'no')
ONOFF = _Bool('on', 'off')


# ---------------------------------------------------------------------------
# Fields.

class Field(object):
    """A scalar at a path: an attribute (``.../@name``) or element text."""

    def __init__(self, path, kind=STR, doc=None):
        self.path = Path(path)
        self.kind = kind
        self.name = None
        self.owner = None
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name = name
        self.owner = owner.__name__

    def describe(self):
        return '%s.%s (%s)' % (self.owner, self.name, self.path.text)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return self.read(obj)

    def __set__(self, obj, value):
        if value is None:
            self.clear(obj)
        else:
            self.write(obj, value)

    def __delete__(self, obj):
        self.clear(obj)

    def raw(self, obj):
        element = self.path.find(obj.element)
        if element is None:
            return None
        if self.path.attr is not None:
            return element.get(self.path.attr)
        return element.text

    def read(self, obj):
        text = self.raw(obj)
        if text is None:
            return None
        try:
            return self.kind.to_python(text)
        except (ValueError, KeyError):
            raise XMLValueError('%s holds %r, expected %s'
                                % (self.describe(), text, self.kind.name))

    def to_text(self, value):
        try:
            return self.kind.to_text(value)
        except (ValueError, KeyError, TypeError):
            raise XMLValueError('cannot set %s to %r: expected %s'
                                % (self.describe(), value, self.kind.name))

    def write(self, obj, value):
        text = self.to_text(value)
        element = obj.ensure(self.path.steps)
        if self.path.attr is not None:
            element.set(self.path.attr, text)
        else:
            element.text = text

    def clear(self, obj):
        element = self.path.find(obj.element)
        if element is None:
            return
        if self.path.attr is not None:
            element.attrib.pop(self.path.attr, None)
        else:
            element.text = None
        obj.prune(element)


class Flag(Field):
    """True when the element at the path exists (``<acpi/>``)."""

    def __init__(self, path, doc=None):
        super(Flag, self).__init__(path, doc=doc)
        if self.path.attr is not None or not self.path.steps:
            raise XMLError('a Flag path must end in an element: %r' % path)

    def read(self, obj):
        return self.path.find(obj.element) is not None

    def write(self, obj, value):
        if not isinstance(value, bool):
            raise XMLValueError('cannot set %s to %r: expected True or False'
                                % (self.describe(), value))
        if value:
            obj.ensure(self.path.steps)
        else:
            self.clear(obj)

    def clear(self, obj):
        element = self.path.find(obj.element)
        if element is not None:
            parent = element.getparent()
            parent.remove(element)
            obj.prune(parent)


_SCALE = {
    'b': 1, 'bytes': 1,
    'kb': 10 ** 3, 'k': 2 ** 10, 'kib': 2 ** 10,
    'mb': 10 ** 6, 'm': 2 ** 20, 'mib': 2 ** 20,
    'gb': 10 ** 9, 'g': 2 ** 30, 'gib': 2 ** 30,
    'tb': 10 ** 12, 't': 2 ** 40, 'tib': 2 ** 40,
    'pb': 10 ** 15, 'p': 2 ** 50, 'pib': 2 ** 50,
    'eb': 10 ** 18, 'e': 2 ** 60, 'eib': 2 ** 60,
}


class Scaled(Field):
    """An integer element with a ``unit=`` attribute, read in a fixed unit.

    ``Scaled('./memory', unit='KiB')`` reads ``<memory unit='GiB'>2</memory>``
    as 2097152 and writes values back as ``unit='KiB'``.  ``default_unit`` is
    what libvirt assumes when the attribute is missing.
    """

    def __init__(self, path, unit='KiB', default_unit=None, doc=None):
        super(Scaled, self).__init__(path, INT, doc=doc)
        self.unit = unit
        self.default_unit = default_unit or unit

    def read(self, obj):
        element = self.path.find(obj.element)
        if element is None or element.text is None:
            return None
        number = super(Scaled, self).read(obj)
        unit = element.get('unit', self.default_unit)
        try:
            factor = _SCALE[unit.lower()]
        except KeyError:
            raise XMLValueError('%s has unknown unit %r'
                                % (self.describe(), unit))
        return number * factor // _SCALE[self.unit.lower()]

    def write(self, obj, value):
        super(Scaled, self).write(obj, value)
        obj.ensure(self.path.steps).set('unit', self.unit)

    def clear(self, obj):
        element = self.path.find(obj.element)
        if element is not None:
            element.getparent().remove(element)


class Child(Field):
    """A single sub-object at a path, typed by ``cls``."""

    def __init__(self, path, cls, doc=None):
        super(Child, self).__init__(path, doc=doc)
        self.cls = cls

    def read(self, obj):
        element = self.path.find(obj.element)
        if element is None:
            return None
        return self.cls.wrap(element)

    def write(self, obj, value):
        if not isinstance(value, self.cls):
            raise XMLValueError('cannot set %s to %r: expected %s'
                                % (self.describe(), value, self.cls.__name__))
        self.clear(obj)
        parent = obj.ensure(self.path.steps[:-1])
        obj.insert(parent, self.path.steps[:-1], value.element)

    def clear(self, obj):
        element = self.path.find(obj.element)
        if element is not None:
            element.getparent().remove(element)

    def get_or_create(self, obj):
        """The sub-object, creating its element if it does not exist yet."""
        return self.cls.wrap(obj.ensure(self.path.steps))


class ChildList(object):
    """A live list view over the elements one :class:`Children` field names."""

    def __init__(self, obj, field):
        self._obj = obj
        self._field = field

    def _elements(self):
        parent = self._field.path.find_parent(self._obj.element)
        if parent is None:
            return []
        return parent.findall(self._field.path.steps[-1].pattern)

    def __len__(self):
        return len(self._elements())

    def __iter__(self):
        return (self._field.wrap(e) for e in self._elements())

    def __getitem__(self, index):
        items = [self._field.wrap(e) for e in self._elements()]
        return items[index]

    def __bool__(self):
        return bool(self._elements())

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return repr(list(self))

    def append(self, item):
        self._field.check(item)
        steps = self._field.path.steps[:-1]
        parent = self._obj.ensure(steps)
        self._obj.insert(parent, steps, item.element)
        return item

    def extend(self, items):
        for item in items:
            self.append(item)

    def remove(self, item):
        for element in self._elements():
            if element is item.element or canonical(element) == canonical(
                    item.element):
                parent = element.getparent()
                parent.remove(element)
                self._obj.prune(parent)
                return
        raise ValueError('%r is not in %s' % (item, self._field.describe()))

    def clear(self):
        elements = self._elements()
        for element in elements:
            element.getparent().remove(element)
        if elements:
            self._obj.prune(self._field.path.find_parent(self._obj.element))


class Children(Field):
    """Every element matching a path, as a list of ``cls`` objects.

    ``cls`` may also be a callable choosing the class from the element (used
    for device lists, where each tag has its own class).
    """

    def __init__(self, path, cls, doc=None):
        super(Children, self).__init__(path, doc=doc)
        if self.path.attr is not None or not self.path.steps:
            raise XMLError('a Children path must end in an element: %r'
                           % path)
        self.cls = cls

    def wrap(self, element):
        if isinstance(self.cls, type):
            return self.cls.wrap(element)
        return self.cls(element)

    def check(self, item):
        if not isinstance(item, XMLObject) or (
                isinstance(self.cls, type) and not isinstance(item, self.cls)):
            raise XMLValueError('cannot add %r to %s'
                                % (item, self.describe()))
        step = self.path.steps[-1]
        if step.tag != '*' and item.element.tag != step.tag:
            raise XMLValueError('cannot add <%s> to %s' % (
                item.element.tag, self.describe()))

    def read(self, obj):
        return ChildList(obj, self)

    def write(self, obj, values):
        view = ChildList(obj, self)
        values = list(values)
        view.clear()
        view.extend(values)

    def clear(self, obj):
        ChildList(obj, self).clear()


class Values(Field):
    """A list of strings: one attribute (or the text) of repeated elements.

    ``Values('./os/boot/@dev')`` reads ``['hd', 'cdrom']``; writing replaces
    the elements.
    """

    def read(self, obj):
        parent = self.path.find_parent(obj.element)
        if parent is None:
            return []
        step = self.path.steps[-1]
        return [e.get(self.path.attr) if self.path.attr else e.text
                for e in parent.findall(step.pattern)]

    def write(self, obj, values):
        self.clear(obj)
        steps = self.path.steps
        parent = obj.ensure(steps[:-1])
        for value in values:
            element = steps[-1].create()
            if self.path.attr:
                element.set(self.path.attr, self.to_text(value))
            else:
                element.text = self.to_text(value)
            obj.insert(parent, steps[:-1], element)

    def clear(self, obj):
        parent = self.path.find_parent(obj.element)
        if parent is None:
            return
        for element in parent.findall(self.path.steps[-1].pattern):
            parent.remove(element)
        obj.prune(parent)


class Switch(object):
    """A value stored in one of several fields, chosen by another field.

    ``source_path = Switch('type', file=source_file, block=source_dev)``
    reads ``source_file`` when ``type == 'file'``.  It models libvirt's tagged
    unions (a disk's source is a file, a device, a directory...).
    """

    def __init__(self, selector, **choices):
        self.selector = selector
        self.choices = choices
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def _field(self, obj):
        key = getattr(obj, self.selector)
        return self.choices.get(key)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        field = self._field(obj)
        return None if field is None else field.__get__(obj)

    def __set__(self, obj, value):
        field = self._field(obj)
        if field is None:
            raise XMLValueError(
                'cannot set %s.%s when %s is %r (expected one of %s)' % (
                    type(obj).__name__, self.name, self.selector,
                    getattr(obj, self.selector), ', '.join(self.choices)))
        field.__set__(obj, value)


# ---------------------------------------------------------------------------
# Objects.

class XMLObject(object):
    """A typed view over one element; the element is the only storage.

    Subclasses set ``TAG`` and declare fields.  ``ORDER`` may list extra child
    tags (in libvirt's order) for elements no field names, so that e.g.
    devices appended later still land in libvirt's order.
    """

    TAG = None
    ORDER = {}
    _fields = {}
    _order = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fields = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    fields[name] = value
        cls._fields = fields
        order = {}
        for field in fields.values():
            prefix = ()
            for step in field.path.steps:
                tags = order.setdefault(prefix, [])
                if step.tag not in tags:
                    tags.append(step.tag)
                prefix += (step.tag,)
        for prefix, tags in cls.ORDER.items():
            key = tuple(qualify(t) for t in prefix.split('/') if t)
            merged = [qualify(t) for t in tags]
            merged += [t for t in order.get(key, []) if t not in merged]
            order[key] = merged
        cls._order = {key: {tag: i for i, tag in enumerate(tags)}
                      for key, tags in order.items()}

    def __init__(self, _element=None, **values):
        if _element is None:
            if self.TAG is None:
                raise TypeError('%s has no TAG; wrap an element instead'
                                % type(self).__name__)
            _element = make_element(self.TAG)
        self._element = _element
        for name, value in values.items():
            if not isinstance(getattr(type(self), name, None),
                              (Field, Switch, property)):
                raise TypeError('%s has no field %r'
                                % (type(self).__name__, name))
            setattr(self, name, value)

    @classmethod
    def with_tag(cls, tag, **values):
        """Build an object whose element name is chosen by the caller.

        For classes that describe a shape shared by several elements, such
        as the device kinds of domain capabilities.
        """
        obj = cls(make_element(tag))
        for name, value in values.items():
            setattr(obj, name, value)
        return obj

    @classmethod
    def wrap(cls, element):
        """A view over an existing element (no copy)."""
        obj = cls.__new__(cls)
        obj._element = element
        return obj

    @classmethod
    def from_xml(cls, text):
        """Parse a document whose root must be this class's element."""
        element = parse_element(text)
        if cls.TAG is not None and element.tag != qualify(cls.TAG):
            raise XMLDocumentError('expected a <%s> document, got <%s>'
                                   % (cls.TAG, element.tag))
        return cls.wrap(element)

    @property
    def element(self):
        """The underlying lxml element: the escape hatch to raw XML."""
        return self._element

    def to_xml(self, pretty=True):
        element = self._element
        if element.getparent() is not None:
            element = copy.deepcopy(element)
            element.tail = None
        if pretty:
            etree.indent(element, space='  ')
        node = element.getroottree() if element.getparent() is None \
            else element
        return etree.tostring(node, encoding='unicode', with_tail=False)

    def __str__(self):
        return self.to_xml()

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.to_xml(pretty=False))

    def __eq__(self, other):
        if not isinstance(other, XMLObject):
            return NotImplemented
        return canonical(self._element) == canonical(other._element)

    __hash__ = None

    def copy(self):
        """A detached deep copy."""
        clone = copy.deepcopy(self._element)
        clone.tail = None
        return type(self).wrap(clone)

    # -- tree editing used by the fields --------------------------------

    def insert(self, parent, prefix_steps, child):
        """Insert ``child`` under ``parent`` at its declared position."""
        prefix = tuple(s.tag for s in prefix_steps)
        rank = self._order.get(prefix)
        if rank is None or child.tag not in rank:
            parent.append(child)
            return child
        mine = rank[child.tag]
        for index in range(len(parent) - 1, -1, -1):
            theirs = rank.get(parent[index].tag)
            if theirs is not None and theirs <= mine:
                parent.insert(index + 1, child)
                return child
        # Nothing ranked at or before us: go before the first ranked element.
        for index, sibling in enumerate(parent):
            if sibling.tag in rank:
                parent.insert(index, child)
                return child
        parent.append(child)
        return child

    def ensure(self, steps):
        """Return the element at ``steps``, creating missing ones in order."""
        element = self._element
        for depth, step in enumerate(steps):
            found = element.find(step.pattern)
            if found is None:
                found = self.insert(element, steps[:depth], step.create())
            element = found
        return element

    def prune(self, element):
        """Remove now-empty elements from ``element`` up to (not incl.) us."""
        while (element is not None and element is not self._element
               and not len(element) and not element.attrib
               and not (element.text or '').strip()):
            parent = element.getparent()
            parent.remove(element)
            element = parent
