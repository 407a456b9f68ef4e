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

Path syntax (a small subset of XPath, with ElementPath's meaning):

* ``@type``, ``./driver/@cache``: an attribute;
* ``./name``, ``./os/type``: an element's text, or the element for
  :class:`Flag`, :class:`Child` and :class:`Children`;
* ``./timer[@name='pit']``: a step selecting by attribute; creating it sets the
  attribute;
* ``./nova:instance``: a namespaced step, prefixes from :data:`NAMESPACES`.

A step designates the first child element that has the step's tag (``*``:
any element) and attribute values.  Each path is compiled once into plain
functions, so a read costs a few lxml calls and no ElementPath parsing.
Nothing is cached between reads: every read looks at the tree as it is, so
edits made through ``.element`` are always seen.

Documents are parsed without the whitespace between elements, which
:func:`canonical` ignores anyway, and :meth:`XMLObject.to_xml` indents while
serializing; it never changes the stored tree.
"""

import copy
import functools
import re

from lxml import etree

NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'
NAMESPACES = {'nova': NOVA_NS}
_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}

# Dropping the whitespace between elements ("blank text") while parsing
# makes fewer nodes to build and walk.  libxml2 also takes whitespace in
# front of a CDATA section for blank, though it is content, and a DTD
# changes what counts as blank, so such documents keep their whitespace.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True,
                          remove_comments=False, huge_tree=False,
                          remove_blank_text=True)
_PARSER_KEEP_BLANKS = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_comments=False,
    huge_tree=False)
_KEEP_BLANKS_MARKERS = (b'<![CDATA[', b'<!DOCTYPE')


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


_TAG_INFO = {}
_TAG_INFO_LIMIT = 4096


def _tag_info(name):
    """``(qualified tag, nsmap)`` for creating an element called ``name``."""
    try:
        return _TAG_INFO[name]
    except KeyError:
        pass
    tag = qualify(name)
    nsmap = None
    if tag.startswith('{'):
        uri = tag[1:].split('}', 1)[0]
        nsmap = {_PREFIXES.get(uri): uri}
    info = (tag, nsmap)
    if len(_TAG_INFO) < _TAG_INFO_LIMIT:
        _TAG_INFO[name] = info
    return info


# lxml checks the name of every element and attribute it creates in a way
# that costs about as much as creating the element; copying an element does
# not check again.  New elements are therefore copies of templates: a copy
# is a new document holding just what etree.Element() would have made (with
# the copying thread's name dictionary).  The templates are private and
# never modified, so threads may copy them concurrently.
_MAKERS = {}


def _maker(name, attrib=None):
    """A function returning new detached ``name`` elements.

    That is a template's ``__copy__``.
    """
    tag, nsmap = _tag_info(name)
    try:
        template = etree.Element(tag, attrib, nsmap=nsmap)
    except ValueError:
        # Not a valid name: fail when (and if) one is created, as before.
        return functools.partial(etree.Element, tag, attrib, nsmap=nsmap)
    return template.__copy__


def _new_element(name):
    """A new detached element called ``name``."""
    maker = _MAKERS.get(name)
    if maker is None:
        maker = _maker(name)
        if len(_MAKERS) < _TAG_INFO_LIMIT:
            _MAKERS[name] = maker
    return maker()


def make_element(tag, attrib=None):
    """Create a detached element, declaring its namespace prefix if any."""
    if not attrib:
        return _new_element(tag)
    tag, nsmap = _tag_info(tag)
    return etree.Element(tag, attrib, nsmap=nsmap)


_STEP_RE = re.compile(
    r"^(?P<tag>\*|[A-Za-z_][\w.:-]*)(?P<preds>(?:\[@[\w:-]+='[^']*'\])*)$")
_PRED_RE = re.compile(r"\[@([\w:-]+)='([^']*)'\]")

# Up to this many children, walking them from Python (``parent[0]``, then
# ``getnext()``) is cheaper than setting up lxml's C tag matcher, whose cost
# (``iterchildren(tag)``) is about that of visiting six to ten children.
_WALK_LIMIT = 8


def _first_finder(tag, preds):
    """A function returning the first child matching a step, or None."""
    if preds:
        def first(parent):
            for child in parent.iterchildren(tag):
                for name, value in preds:
                    if child.get(name) != value:
                        break
                else:
                    return child
            return None
    elif tag == '*':
        def first(parent):
            for child in parent.iterchildren('*'):
                return child
            return None
    else:
        def first(parent):
            count = len(parent)
            if count > _WALK_LIMIT:
                for child in parent.iterchildren(tag):
                    return child
                return None
            if count:
                # Comments and processing instructions are children too;
                # their tag is a function, never equal to a string.
                child = parent[0]
                while child is not None:
                    if child.tag == tag:
                        return child
                    child = child.getnext()
            return None
    return first


def _all_finder(tag, preds):
    """A function listing every child matching a step, in document order."""
    if preds:
        def find_all(parent):
            return [child for child in parent.iterchildren(tag)
                    if all(child.get(name) == value
                           for name, value in preds)]
    elif tag == '*':
        def find_all(parent):
            return list(parent.iterchildren('*'))
    else:
        def find_all(parent):
            count = len(parent)
            if not count:
                return []
            if count > _WALK_LIMIT:
                return list(parent.iterchildren(tag))
            found = []
            child = parent[0]
            while child is not None:
                if child.tag == tag:
                    found.append(child)
                child = child.getnext()
            return found
    return find_all


class Step(object):
    """One element step of a path: a tag plus optional attribute tests.

    ``first(parent)`` and ``all(parent)`` find the matching children;
    ``prefix`` holds the tags of the steps before this one in its path.
    """

    __slots__ = ('tag', 'preds', 'pattern', 'attrib', 'nsmap', 'prefix',
                 'first', 'all', 'new')

    def __init__(self, text, prefix=()):
        match = _STEP_RE.match(text)
        if not match:
            raise XMLError('bad path step %r' % text)
        self.tag, self.nsmap = _tag_info(match.group('tag'))
        self.preds = tuple((qualify(a), v)
                           for a, v in _PRED_RE.findall(match.group('preds')))
        self.pattern = self.tag + ''.join(
            "[@%s='%s']" % pred for pred in self.preds)
        self.attrib = dict(self.preds) or None
        self.prefix = prefix
        self.first = _first_finder(self.tag, self.preds)
        self.all = _all_finder(self.tag, self.preds)
        # new(): a new detached element matching this step.
        self.new = _maker(self.tag, self.attrib)

    def create(self):
        """A new detached element matching this step."""
        return self.new()


def _same(element):
    return element


def _chain(steps):
    """One function following ``steps`` from an element (None if absent)."""
    finders = tuple(step.first for step in steps)
    if not finders:
        return _same
    if len(finders) == 1:
        return finders[0]
    if len(finders) == 2:
        first, second = finders

        def find(element):
            element = first(element)
            return None if element is None else second(element)
        return find

    def find(element):
        for finder in finders:
            element = finder(element)
            if element is None:
                return None
        return element
    return find


class Path(object):
    """A compiled field path: element steps and an optional final attribute.

    ``find(element)`` returns the element the path designates (ignoring the
    attribute) and ``find_parent(element)`` the one above it, or None.
    """

    __slots__ = ('text', 'steps', 'attr', 'pattern', 'parent_pattern',
                 'parent_steps', 'find', 'find_parent')

    def __init__(self, text):
        self.text = text
        parts = [p for p in text.split('/') if p not in ('', '.')]
        self.attr = None
        if parts and parts[-1].startswith('@'):
            self.attr = qualify(parts.pop()[1:])
        steps = []
        for part in parts:
            steps.append(Step(part, tuple(s.tag for s in steps)))
        self.steps = tuple(steps)
        self.parent_steps = self.steps[:-1]
        self.pattern = '/'.join(s.pattern for s in self.steps) or None
        self.parent_pattern = (
            '/'.join(s.pattern for s in self.steps[:-1]) or None)
        self.find = _chain(self.steps)
        self.find_parent = _chain(self.parent_steps)


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
    parser = _PARSER
    for marker in _KEEP_BLANKS_MARKERS:
        # (find(): ``in`` first tries the marker as an integer, and building
        # that error costs more than the search.)
        if text.find(marker) != -1:
            parser = _PARSER_KEEP_BLANKS
            break
    try:
        return etree.fromstring(text, parser)
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
        try:
            # int() ignores surrounding whitespace; hexadecimal text fails
            # here and is read below.
            return int(text)
        except ValueError:
            pass
        text = text.strip()
        return int(text, 16) if text.lower().startswith('0x') else int(text)

    def to_text(self, value):
        if type(value) is int:
            return str(value)
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, str):
            self.to_python(value)
            return value.strip()
        return str(int(value))


class _Bool(Kind):
    def __init__(self, true, false):
        self.words = {true: True, false: False}
        self.texts = {True: true, False: false}
        self.name = '%s or %s' % (true, false)

    def to_python(self, text):
        return self.words[text.strip()]

    def to_text(self, value):
        if value is True or value is False:
            return self.texts[value]
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
        self._find = self.path.find
        self._attr = self.path.attr
        self._steps = self.path.steps
        self._single = self._steps[0] if len(self._steps) == 1 else None
        # The tag __get__ looks for itself (one plain step), else None.
        self._tag = (self._single.tag if self._single is not None
                     and not self._single.preds and self._single.tag != '*'
                     else None)
        # Kinds that keep the text as it is need no conversion on reads,
        # nor on writes of a str.
        self._convert = (None if type(kind).to_python is Kind.to_python
                         else kind.to_python)
        self._plain_text = type(kind).to_text is Kind.to_text

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Field.__get__ inlines Field.read and Field.raw: a subclass with
        # its own read or raw (and no __get__ of its own) is read through
        # its read.
        own = vars(cls)
        if ('read' in own or 'raw' in own) and '__get__' not in own:
            cls.__get__ = Field._get_by_read
        # Likewise __set__ inlines Field.write.
        if ('write' in own or 'to_text' in own) and '__set__' not in own:
            cls.__set__ = Field._set_by_write

    def __set_name__(self, owner, name):
        self.name = name
        self.owner = owner.__name__

    def describe(self):
        return '%s.%s (%s)' % (self.owner, self.name, self.path.text)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        tag = self._tag
        if tag is None:
            element = self._find(obj._element)
        else:
            # The commonest shape, one plain step, inlined from
            # _first_finder to save a call on every read.
            parent = obj._element
            count = len(parent)
            if count > _WALK_LIMIT:
                element = self._find(parent)
            elif count:
                element = parent[0]
                while element is not None and element.tag != tag:
                    element = element.getnext()
            else:
                element = None
        if element is None:
            return None
        attr = self._attr
        text = element.text if attr is None else element.get(attr)
        if text is None or self._convert is None:
            return text
        try:
            return self._convert(text)
        except (ValueError, KeyError):
            raise XMLValueError('%s holds %r, expected %s'
                                % (self.describe(), text, self.kind.name))

    def _get_by_read(self, obj, objtype=None):
        if obj is None:
            return self
        return self.read(obj)

    def __set__(self, obj, value):
        if value is None:
            self.clear(obj)
            return
        if self._plain_text and type(value) is str:
            text = value
        else:
            text = self.to_text(value)
        element = obj._element
        single = self._single
        if single is not None:
            found = single.first(element)
            element = obj.create(element, single) if found is None else found
        elif self._steps:
            element = obj.ensure(self._steps)
        if self._attr is not None:
            element.set(self._attr, text)
        else:
            element.text = text

    def setter(self):
        """A function ``(obj, value)`` doing what ``obj.<field> = value`` does.

        Specialized to the path's shape, for keyword constructors.
        """
        if type(self).__set__ is Field._set_by_write:
            write = self.write
            clear = self.clear

            def set_by_write(obj, value):
                if value is None:
                    clear(obj)
                else:
                    write(obj, value)
            return set_by_write
        if type(self).__set__ is not Field.__set__:
            return self.__set__
        if self._steps and self._single is None:
            return self.__set__
        attr = self._attr
        single = self._single
        tag = self._tag
        plain = self._plain_text
        kind_to_text = self.kind.to_text
        bad_value = self._bad_value
        clear = self.clear

        def set_below(obj, value):
            if value is None:
                clear(obj)
                return
            if not plain or type(value) is not str:
                try:
                    value = kind_to_text(value)
                except (ValueError, KeyError, TypeError):
                    raise bad_value(value)
            element = obj._element
            if tag is None:
                found = first(element)
            else:
                # As in Field.__get__.
                count = len(element)
                if count > _WALK_LIMIT:
                    found = first(element)
                elif count:
                    found = element[0]
                    while found is not None and found.tag != tag:
                        found = found.getnext()
                else:
                    found = None
            if found is None:
                found = obj.create(element, single)
            if attr is None:
                found.text = value
            else:
                found.set(attr, value)

        def set_attr(obj, value):
            if value is None:
                clear(obj)
                return
            if not plain or type(value) is not str:
                try:
                    value = kind_to_text(value)
                except (ValueError, KeyError, TypeError):
                    raise bad_value(value)
            obj._element.set(attr, value)

        def set_text(obj, value):
            if value is None:
                clear(obj)
                return
            if not plain or type(value) is not str:
                try:
                    value = kind_to_text(value)
                except (ValueError, KeyError, TypeError):
                    raise bad_value(value)
            obj._element.text = value

        if single is not None:
            first = single.first
            return set_below
        return set_text if attr is None else set_attr

    def _set_by_write(self, obj, value):
        if value is None:
            self.clear(obj)
        else:
            self.write(obj, value)

    def __delete__(self, obj):
        self.clear(obj)

    def raw(self, obj):
        element = self._find(obj._element)
        if element is None:
            return None
        if self._attr is not None:
            return element.get(self._attr)
        return element.text

    def read(self, obj):
        text = self.raw(obj)
        if text is None or self._convert is None:
            return text
        try:
            return self._convert(text)
        except (ValueError, KeyError):
            raise XMLValueError('%s holds %r, expected %s'
                                % (self.describe(), text, self.kind.name))

    def to_text(self, value):
        try:
            return self.kind.to_text(value)
        except (ValueError, KeyError, TypeError):
            raise self._bad_value(value)

    def _bad_value(self, value):
        return XMLValueError('cannot set %s to %r: expected %s'
                             % (self.describe(), value, self.kind.name))

    def write(self, obj, value):
        if self._plain_text and type(value) is str:
            text = value
        else:
            text = self.to_text(value)
        element = obj.ensure(self.path.steps)
        if self._attr is not None:
            element.set(self._attr, text)
        else:
            element.text = text

    def clear(self, obj):
        element = self._find(obj._element)
        if element is None:
            return
        if self._attr is not None:
            element.attrib.pop(self._attr, None)
        else:
            element.text = None
        obj.prune(element)


class Flag(Field):
    """True when the element at the path exists (``<acpi/>``)."""

    def __init__(self, path, doc=None):
        super(Flag, self).__init__(path, doc=doc)
        if self.path.attr is not None or not self.path.steps:
            raise XMLError('a Flag path must end in an element: %r' % path)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return self._find(obj._element) is not None

    def read(self, obj):
        return self._find(obj._element) is not None

    def write(self, obj, value):
        if not isinstance(value, bool):
            raise XMLValueError('cannot set %s to %r: expected True or False'
                                % (self.describe(), value))
        if value:
            obj.ensure(self.path.steps)
        else:
            self.clear(obj)

    def setter(self):
        cls = type(self)
        if (cls.write is not Flag.write or cls.clear is not Flag.clear
                or cls.__set__ is not Field._set_by_write):
            return super(Flag, self).setter()
        steps = self._steps
        clear = self.clear
        write = self.write

        def set_flag(obj, value):
            if value is True:
                obj.ensure(steps)
            elif value is None or value is False:
                clear(obj)
            else:
                write(obj, value)  # raises the error naming the field
        return set_flag

    def clear(self, obj):
        element = self._find(obj._element)
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
        self._divisor = _SCALE[unit.lower()]

    def read(self, obj):
        element = self._find(obj._element)
        if element is None:
            return None
        text = element.text
        if text is None:
            return None
        try:
            number = INT.to_python(text)
        except ValueError:
            raise XMLValueError('%s holds %r, expected %s'
                                % (self.describe(), text, self.kind.name))
        unit = element.get('unit', self.default_unit)
        try:
            factor = _SCALE[unit.lower()]
        except KeyError:
            raise XMLValueError('%s has unknown unit %r'
                                % (self.describe(), unit))
        return number * factor // self._divisor

    def write(self, obj, value):
        text = self.to_text(value)
        element = obj.ensure(self.path.steps)
        element.text = text
        element.set('unit', self.unit)

    def clear(self, obj):
        element = self._find(obj._element)
        if element is not None:
            element.getparent().remove(element)


class Child(Field):
    """A single sub-object at a path, typed by ``cls``."""

    def __init__(self, path, cls, doc=None):
        super(Child, self).__init__(path, doc=doc)
        self.cls = cls
        self._wrap = cls.wrap

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        element = self._find(obj._element)
        return None if element is None else self._wrap(element)

    def read(self, obj):
        element = self._find(obj._element)
        return None if element is None else self._wrap(element)

    def write(self, obj, value):
        if not isinstance(value, self.cls):
            raise XMLValueError('cannot set %s to %r: expected %s'
                                % (self.describe(), value, self.cls.__name__))
        self.clear(obj)
        steps = self._steps
        parent = (obj.ensure(self.path.parent_steps) if len(steps) > 1
                  else obj._element)
        obj.place(parent, steps[-1].prefix if steps else (), value._element)

    def clear(self, obj):
        element = self._find(obj._element)
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
        field = self._field
        parent = field._find_parent(self._obj._element)
        if parent is None:
            return []
        return field._find_all(parent)

    def __len__(self):
        return len(self._elements())

    def __iter__(self):
        return map(self._field.wrap, self._elements())

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
        field = self._field
        field.check(item)
        obj = self._obj
        obj.place(obj.ensure(field._parent_steps), field._prefix,
                  item._element)
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
            self._obj.prune(self._field._find_parent(self._obj._element))


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
        last = self.path.steps[-1]
        self._find_parent = self.path.find_parent
        self._find_all = last.all
        self._parent_steps = self.path.parent_steps
        self._prefix = last.prefix
        self._item_tag = None if last.tag == '*' else last.tag
        if isinstance(cls, type):
            self.wrap = cls.wrap
            self._item_class = cls
        else:
            self.wrap = cls
            self._item_class = XMLObject

    def check(self, item):
        if not isinstance(item, self._item_class):
            raise XMLValueError('cannot add %r to %s'
                                % (item, self.describe()))
        tag = self._item_tag
        if tag is not None and item._element.tag != tag:
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
        parent = self.path.find_parent(obj._element)
        if parent is None:
            return []
        attr = self._attr
        elements = self.path.steps[-1].all(parent)
        if attr is None:
            return [e.text for e in elements]
        return [e.get(attr) for e in elements]

    def write(self, obj, values):
        values = [self.to_text(value) for value in values]
        self.clear(obj)
        parent = obj.ensure(self.path.parent_steps)
        last = self.path.steps[-1]
        for text in values:
            element = obj.create(parent, last)
            if self._attr:
                element.set(self._attr, text)
            else:
                element.text = text

    def clear(self, obj):
        parent = self.path.find_parent(obj._element)
        if parent is None:
            return
        for element in self.path.steps[-1].all(parent):
            parent.remove(element)
        obj.prune(parent)


class Attributes(Field):
    """Every attribute of the element at a path, as a dict.

    ``Attributes('./virtualport/parameters')`` reads ``{'profileid': 'p'}``
    (``{}`` when the element is missing); writing replaces the attributes
    and an empty dict removes the element once nothing else is in it.
    """

    def __init__(self, path, doc=None):
        super(Attributes, self).__init__(path, doc=doc)
        if self.path.attr is not None or not self.path.steps:
            raise XMLError('an Attributes path must end in an element: %r'
                           % path)

    def read(self, obj):
        element = self._find(obj._element)
        return {} if element is None else dict(element.attrib)

    def write(self, obj, values):
        try:
            items = [(qualify(name), str(value))
                     for name, value in dict(values).items()]
        except (TypeError, ValueError):
            raise XMLValueError('cannot set %s to %r: expected a dict'
                                % (self.describe(), values))
        element = self._find(obj._element)
        if element is None:
            if not items:
                return
            element = obj.ensure(self.path.steps)
        element.attrib.clear()
        for name, value in items:
            element.set(name, value)
        obj.prune(element)

    def clear(self, obj):
        self.write(obj, {})


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

def _drop_blank_text(element):
    """Before a leaf gets its first child, drop whitespace-only text.

    Whitespace alone in a leaf was formatting (e.g. a parsed
    ``<devices>\n  </devices>``); next to a child it would only keep the
    serializer from indenting the new content.
    """
    text = element.text
    if text is not None and not text.strip():
        element.text = None


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
    _setters = {}
    _keep = None

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
        # What keyword arguments of __init__ may set: each name as
        # getattr(cls, name) resolves it, when that is a data descriptor of
        # ours or a property, with the function that sets it.  Names added
        # to the class later are checked the slow way (replacing a field of
        # an existing class is not supported).
        setters = {}
        seen = set()
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                if name not in seen:
                    seen.add(name)
                    if isinstance(value, Field):
                        setters[name] = value.setter()
                    elif isinstance(value, (Switch, property)):
                        setters[name] = value.__set__
        cls._setters = setters

    def __init__(self, _element=None, **values):
        if _element is None:
            if self.TAG is None:
                raise TypeError('%s has no TAG; wrap an element instead'
                                % type(self).__name__)
            maker = _MAKERS.get(self.TAG)
            _element = _new_element(self.TAG) if maker is None else maker()
            # (See wrap_document; this keeps new children's proxies.)
            self._keep = []
        self._element = _element
        if values:
            cls = type(self)
            setters = cls._setters
            for name, value in values.items():
                setter = setters.get(name)
                if setter is not None:
                    setter(self, value)
                    continue
                if not isinstance(getattr(cls, name, None),
                                  (Field, Switch, property)):
                    raise TypeError('%s has no field %r'
                                    % (cls.__name__, name))
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
        return cls.wrap_document(element)

    @classmethod
    def wrap_document(cls, element):
        """A view over a whole parsed document, for reading it many times.

        Besides :meth:`wrap`, the view holds a reference to every element
        of the document as it is now.  That is no cache: lookups walk the
        live tree every time.  It keeps lxml's Python objects for those
        elements (and the tag strings lxml caches on them) alive, so walks
        reuse them instead of building new ones at each step.
        """
        obj = cls.wrap(element)
        obj._keep = list(element.iter())
        return obj

    @property
    def element(self):
        """The underlying lxml element: the escape hatch to raw XML."""
        return self._element

    def to_xml(self, pretty=True):
        """The element as XML text; indented (two spaces) if ``pretty``.

        A document root is written with the comments and processing
        instructions around it.  Serializing never changes the tree: the
        serializer indents where the tree has no whitespace between
        elements and keeps what whitespace there is, so a document that
        kept its whitespace when parsed (see :func:`parse_element`) comes
        out formatted as it came in.
        """
        element = self._element
        if element.getparent() is None:
            node = element.getroottree()
        else:
            # A copy declares only the namespaces the element uses, where
            # serializing it in place would repeat all its ancestors' ones.
            node = copy.deepcopy(element)
            node.tail = None
        text = etree.tostring(node, encoding='unicode', pretty_print=pretty)
        if pretty and text.endswith('\n'):
            text = text[:-1]
        return text

    def __str__(self):
        return self.to_xml()

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.to_xml(pretty=False))

    def __eq__(self, other):
        if not isinstance(other, XMLObject):
            return NotImplemented
        return canonical(self._element) == canonical(other._element)

    __hash__ = None

    def __getstate__(self):
        # For copy.copy(), copy.deepcopy() and pickle: the references
        # wrap_document() keeps are no part of the object.
        state = self.__dict__.copy()
        state.pop('_keep', None)
        return state

    def copy(self):
        """A detached deep copy."""
        clone = copy.deepcopy(self._element)
        clone.tail = None
        return type(self).wrap(clone)

    # -- tree editing used by the fields --------------------------------

    def insert(self, parent, prefix_steps, child):
        """Insert ``child`` under ``parent`` at its declared position."""
        return self.place(parent, tuple(s.tag for s in prefix_steps), child)

    def place(self, parent, prefix, child):
        """Insert ``child`` under ``parent`` (at tag path ``prefix``).

        ``child`` goes after the last sibling declared at or before its own
        tag, else before the first declared sibling, else at the end.
        """
        keep = self._keep
        if keep is not None:
            keep.append(child)
        if len(parent):
            # As in create(): try the last child first.
            tag = child.tag
            rank = self._order.get(prefix)
            mine = None if rank is None else rank.get(tag)
            if mine is not None:
                theirs = rank.get(parent[-1].tag)
                if theirs is None or theirs > mine:
                    anchor = self._anchor(parent, prefix, tag)
                    if anchor is not None:
                        anchor.addprevious(child)
                        return child
        else:
            _drop_blank_text(parent)
        parent.append(child)
        return child

    def create(self, parent, step):
        """A new element for ``step`` under ``parent``, placed in order.

        ``step`` must come from a field's path (its ``prefix`` is used).
        """
        child = step.new()
        if len(parent):
            # The usual case first: the last child is declared at or
            # before the new one, which then simply goes last.
            rank = self._order.get(step.prefix)
            mine = None if rank is None else rank.get(step.tag)
            if mine is None:
                anchor = None
            else:
                theirs = rank.get(parent[-1].tag)
                if theirs is not None and theirs <= mine:
                    anchor = None
                else:
                    anchor = self._anchor(parent, step.prefix, step.tag)
            if anchor is None:
                parent.append(child)
            else:
                anchor.addprevious(child)
        else:
            if parent.text is not None:
                _drop_blank_text(parent)
            parent.append(child)
        keep = self._keep
        if keep is not None:
            keep.append(child)
        return child

    def _anchor(self, parent, prefix, tag):
        """The child a new ``tag`` element goes before (None: append).

        ``parent`` must have children.
        """
        rank = self._order.get(prefix)
        mine = None if rank is None else rank.get(tag)
        if mine is None:
            return None
        # Walk back from the last child: building in declared order, the
        # first sibling looked at is the one to go after.
        sibling = parent[-1]
        after = None
        first_ranked = None
        while sibling is not None:
            theirs = rank.get(sibling.tag)
            if theirs is not None:
                if theirs <= mine:
                    return after
                first_ranked = sibling
            after = sibling
            sibling = sibling.getprevious()
        # Nothing ranked at or before us: go before the first ranked element.
        return first_ranked

    def ensure(self, steps):
        """Return the element at ``steps``, creating missing ones in order.

        ``steps`` are a field path's steps, or the first ones of them.
        """
        element = self._element
        depth = 0
        for step in steps:
            found = step.first(element)
            if found is None:
                # Only the first missing element needs placing among its
                # siblings; the ones below it go into empty parents.
                element = self.create(element, step)
                keep = self._keep
                for step in steps[depth + 1:]:
                    child = step.new()
                    element.append(child)
                    element = child
                    if keep is not None:
                        keep.append(element)
                return element
            element = found
            depth += 1
        return element

    def prune(self, element):
        """Remove now-empty elements from ``element`` up to (not incl.) us."""
        while (element is not None and element is not self._element
               and not len(element) and not element.attrib
               and not (element.text or '').strip()):
            parent = element.getparent()
            parent.remove(element)
            element = parent
