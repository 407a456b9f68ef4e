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

"""What model classes are made of: value kinds, fields and ``XMLObject``.

An :class:`XMLObject` wraps one lxml element and stores nothing else.  Each
field is a data descriptor bound to a path below that element (the syntax
is in :mod:`nova_pyvirt.xml._tree`): ``__get__`` reads the tree, ``__set__``
writes it and ``None`` (or ``del``) clears it, so parsing keeps what the
model does not know and editing a field touches only its nodes::

    class Watchdog(Device):
        TAG = 'watchdog'
        model = Field('@model')
        action = Field('@action')
"""

import copy

from lxml import etree

from nova_pyvirt.xml import _tree
from nova_pyvirt.xml._tree import XMLDocumentError
from nova_pyvirt.xml._tree import XMLError
from nova_pyvirt.xml._tree import XMLValueError


class Kind(object):
    """How a field's text maps to a Python value: here, as it is."""

    name = 'string'

    def to_python(self, text):
        return text

    def to_text(self, value):
        return str(value)


class _Int(Kind):
    name = 'integer'

    def to_python(self, text):
        try:
            return int(text)  # (which ignores surrounding whitespace)
        except ValueError:
            if not text.strip().lower().startswith('0x'):
                raise
            return int(text, 16)

    def to_text(self, value):
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, str):
            self.to_python(value)
            return value.strip()
        return str(int(value))


class Enum(Kind):
    """A string limited to the given choices when written."""

    def __init__(self, *choices):
        self.choices = choices
        self.name = 'one of %s' % ', '.join(choices)

    def to_text(self, value):
        if value not in self.choices:
            raise ValueError(value)
        return value


class _Bool(Enum):
    """True and False as two words, such as ``yes`` and ``no``."""

    def to_python(self, text):
        return self.choices.index(text.strip()) == 0

    def to_text(self, value):
        if value is True or value is False:
            return self.choices[not value]
        return super(_Bool, self).to_text(value)


STR = Kind()
INT = _Int()
YESNO = _Bool('yes', 'no')
ONOFF = _Bool('on', 'off')
_WALK_LIMIT = _tree.WALK_LIMIT


class Field(object):
    """A scalar at a path: an attribute (``.../@name``) or element text."""

    def __init__(self, path, kind=STR, doc=None):
        self.path = _tree.Path(path)
        self.kind = kind
        self.name = self.owner = None
        self.__doc__ = doc
        steps = self._steps = self.path.steps
        self._tag = steps[0].tag if len(steps) == 1 and steps[0].plain \
            else None
        self._find = self.path.find
        self._attr = self.path.attr
        # None: strings are read, or written, as they are.
        self._to_python = None if type(kind).to_python is Kind.to_python \
            else kind.to_python
        self._to_text = None if type(kind).to_text is Kind.to_text \
            else kind.to_text

    def __set_name__(self, owner, name):
        # A subclass may declare an inherited field again to move it.
        self.name, self.owner = name, self.owner or owner.__name__

    def describe(self):
        return '%s.%s (%s)' % (self.owner, self.name, self.path.text)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        tag = self._tag
        if tag is None:
            element = self._find(obj._element)
        else:
            # Step.first inlined for one-step paths: 10% of parse+read.
            element = obj._element
            count = len(element)
            if count > _WALK_LIMIT:
                element = self._find(element)
            else:
                element = element[0] if count else None
                while element is not None and element.tag != tag:
                    element = element.getnext()
        if element is None:
            return None
        attr = self._attr
        text = element.text if attr is None else element.get(attr)
        if text is None or self._to_python is None:
            return text
        try:
            return self._to_python(text)
        except (ValueError, KeyError):
            raise self._bad_text(text)

    def _bad_text(self, text):
        return XMLValueError('%s holds %r, expected %s'
                             % (self.describe(), text, self.kind.name))

    def _bad_value(self, value):
        return XMLValueError('cannot set %s to %r: expected %s'
                             % (self.describe(), value, self.kind.name))

    def __set__(self, obj, value):
        if value is None:
            return self.clear(obj)
        # Strings need no conversion: skipping it saves 7% of a build.
        if self._to_text is not None or type(value) is not str:
            try:
                value = self.kind.to_text(value)
            except (ValueError, KeyError, TypeError):
                raise self._bad_value(value)
        element = obj._element
        if not self._steps:
            pass  # an attribute or the text of the element itself
        elif self._tag is None or len(element) > _WALK_LIMIT:
            element = _tree.ensure(obj, self._steps)
        else:
            # ensure() and Step.first inlined for one-step paths: 9% of a
            # build.
            tag = self._tag
            found = element[0] if len(element) else None
            while found is not None and found.tag != tag:
                found = found.getnext()
            element = found if found is not None else _tree.place(
                obj, element, (), self._steps[0].new(), tag)
        if self._attr is None:
            element.text = value
        else:
            element.set(self._attr, value)

    def __delete__(self, obj):
        self.clear(obj)

    def clear(self, obj):
        element = self._find(obj._element)
        if element is not None:
            if self._attr is None:
                element.text = None
            else:
                element.attrib.pop(self._attr, None)
            _tree.prune(obj, element)


class _ElementField(Field):
    """A field whose path ends in an element, which clearing removes."""

    def __init__(self, path, kind=STR, doc=None):
        super(_ElementField, self).__init__(path, kind, doc)
        if self._attr is not None or not self._steps:
            raise XMLError('a %s path must end in an element: %r'
                           % (type(self).__name__, path))
        self._parent_steps = self._steps[:-1]
        self._last = self._steps[-1]

    def clear(self, obj):
        element = self._find(obj._element)
        if element is not None:
            parent = element.getparent()
            parent.remove(element)
            _tree.prune(obj, parent)


class Flag(_ElementField):
    """True when the element at the path exists (``<acpi/>``)."""

    def __get__(self, obj, objtype=None):
        return self if obj is None else self._find(obj._element) is not None

    def __set__(self, obj, value):
        if value is True:
            _tree.ensure(obj, self._steps)
        elif value is False or value is None:
            self.clear(obj)
        else:
            raise XMLValueError('cannot set %s to %r: expected True or False'
                                % (self.describe(), value))


_SCALE = {'b': 1, 'bytes': 1}
for _power, _prefix in enumerate('kmgtpe', 1):
    _SCALE.update({_prefix + 'b': 1000 ** _power, _prefix: 1024 ** _power,
                   _prefix + 'ib': 1024 ** _power})


class Scaled(_ElementField):
    """An integer element with a ``unit=`` attribute, read in a fixed unit.

    ``Scaled('./memory', unit='KiB')`` reads ``<memory unit='GiB'>2</memory>``
    as 2097152 and writes values back as ``unit='KiB'``.  ``default_unit`` is
    what libvirt assumes when the attribute is missing.
    """

    def __init__(self, path, unit='KiB', default_unit=None, doc=None):
        super(Scaled, self).__init__(path, INT, doc)
        self.unit = unit
        self.default_unit = default_unit or unit
        self._divisor = _SCALE[unit.lower()]

    def __get__(self, obj, objtype=None):
        element = None if obj is None else self._find(obj._element)
        if element is None or element.text is None:
            return self if obj is None else None
        unit = element.get('unit', self.default_unit)
        factor = _SCALE.get(unit.lower())
        if factor is None:
            raise XMLValueError('%s has unknown unit %r'
                                % (self.describe(), unit))
        try:
            number = INT.to_python(element.text)
        except ValueError:
            raise self._bad_text(element.text)
        return number * factor // self._divisor

    def __set__(self, obj, value):
        super(Scaled, self).__set__(obj, value)
        if value is not None:
            self._find(obj._element).set('unit', self.unit)


class Child(_ElementField):
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

    def __set__(self, obj, value):
        if value is not None and not isinstance(value, self.cls):
            raise XMLValueError('cannot set %s to %r: expected %s'
                                % (self.describe(), value, self.cls.__name__))
        self.clear(obj)
        if value is not None:
            _tree.place(obj, _tree.ensure(obj, self._parent_steps),
                        self._last.prefix, value._element)


class _Repeated(Field):
    """A field over every element the last step of its path matches."""

    def __init__(self, path, *args, **kwargs):
        super(_Repeated, self).__init__(path, *args, **kwargs)
        self._find_parent = self.path.find_parent
        self._all = self._steps[-1].all

    def _elements(self, obj):
        parent = self._find_parent(obj._element)
        return [] if parent is None else self._all(parent)

    def clear(self, obj):
        elements = self._elements(obj)
        for element in elements:
            parent = element.getparent()
            parent.remove(element)
        if elements:
            _tree.prune(obj, parent)


class ChildList(object):
    """A live list view over the elements one :class:`Children` names."""

    def __init__(self, obj, field):
        self._obj = obj
        self._field = field

    def __len__(self):
        return len(self._field._elements(self._obj))

    def __iter__(self):
        return map(self._field.wrap, self._field._elements(self._obj))

    def __getitem__(self, index):
        return list(self)[index]

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return repr(list(self))

    def append(self, item):
        field, obj, tag = self._field, self._obj, item._element.tag
        if not isinstance(item, field.cls) or field._last.tag not in (
                '*', tag):
            raise XMLValueError('cannot add %r to %s'
                                % (item, field.describe()))
        _tree.place(obj, _tree.ensure(obj, field._parent_steps),
                    field._last.prefix, item._element, tag)
        return item

    def extend(self, items):
        for item in items:
            self.append(item)

    def remove(self, item):
        for element in self._field._elements(self._obj):
            if element is item.element or canonical(element) == canonical(
                    item.element):
                parent = element.getparent()
                parent.remove(element)
                _tree.prune(self._obj, parent)
                return
        raise ValueError('%r is not in %s' % (item, self._field.describe()))

    def clear(self):
        self._field.clear(self._obj)


class Children(_Repeated, _ElementField):
    """Every element matching a path, as a list of ``cls`` objects.

    ``cls`` may also be a callable choosing the class from the element (used
    for device lists, where each tag has its own class).
    """

    def __init__(self, path, cls, doc=None):
        super(Children, self).__init__(path, doc=doc)
        self.cls = cls if isinstance(cls, type) else XMLObject
        self.wrap = cls.wrap if isinstance(cls, type) else cls

    def __get__(self, obj, objtype=None):
        return self if obj is None else ChildList(obj, self)

    def __set__(self, obj, values):
        values = list(values or ())
        self.clear(obj)
        ChildList(obj, self).extend(values)


class Values(_Repeated):
    """A list of strings: one attribute (or the text) of repeated elements.

    ``Values('./os/boot/@dev')`` reads ``['hd', 'cdrom']``; writing replaces
    the elements.
    """

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        elements, attr = self._elements(obj), self._attr
        if not elements:
            return elements
        if attr is None:
            return [element.text for element in elements]
        return [element.get(attr) for element in elements]

    def __set__(self, obj, values):
        try:
            texts = [self.kind.to_text(value) for value in values or ()]
        except (ValueError, KeyError, TypeError):
            raise self._bad_value(values)
        self.clear(obj)
        parent, last = _tree.ensure(obj, self._steps[:-1]), self._steps[-1]
        for text in texts:
            element = _tree.place(obj, parent, last.prefix, last.new())
            if self._attr is None:
                element.text = text
            else:
                element.set(self._attr, text)


class Switch(object):
    """A value stored in one of several fields, chosen by another field.

    ``source_path = Switch('type', file=source_file, block=source_dev)``
    reads ``source_file`` when ``type == 'file'``: libvirt's tagged unions.
    """

    def __init__(self, selector, **choices):
        self.selector = selector
        self.choices = choices
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        field = self.choices.get(getattr(obj, self.selector))
        return None if field is None else field.__get__(obj)

    def __set__(self, obj, value):
        key = getattr(obj, self.selector)
        if key not in self.choices:
            raise XMLValueError(
                'cannot set %s.%s when %s is %r (expected one of %s)' % (
                    type(obj).__name__, self.name, self.selector, key,
                    ', '.join(self.choices)))
        self.choices[key].__set__(obj, value)


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


class XMLObject(object):
    """A typed view over one element; the element is the only storage.

    Subclasses set ``TAG`` and declare fields.  New children go in the
    order the fields name them, a class's own fields before those it
    inherits (so a device's ``<alias>`` and ``<address>`` come last; a
    class may assign an inherited field again to place it among its own).
    ``ORDER`` places the tags no field names: it maps the path of a
    field-named element (``'.'``: the start) to the tags that follow it.
    """

    TAG = None
    ORDER = {}
    _order = {}
    _setters = {}
    _new_element = None
    # The elements kept alive for faster walks (see wrap_document): 13% of
    # parse+read, 6% of a build.
    _keep = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        seen, paths, cls._setters = set(), [], {}
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                if name not in seen and isinstance(value, Field):
                    paths.append(value.path)
                if name not in seen and isinstance(
                        value, (Field, Switch, property)):
                    cls._setters[name] = value.__set__
                seen.add(name)
        cls._order = _tree.compile_order(paths, cls.ORDER)
        if cls.TAG is not None:
            cls._new_element = _tree.template(cls.TAG)

    def __init__(self, _element=None, **values):
        if _element is None:
            if self.TAG is None:
                raise TypeError('%s has no TAG; wrap an element instead'
                                % type(self).__name__)
            _element = self._new_element()
            self._keep = []
        self._element = _element
        cls = type(self)
        setters = cls._setters
        for name, value in values.items():
            setter = setters.get(name)
            if setter is not None:
                setter(self, value)
            elif isinstance(getattr(cls, name, None),
                            (Field, Switch, property)):
                setattr(self, name, value)  # declared after the class
            else:
                raise TypeError('%s has no field %r' % (cls.__name__, name))

    @classmethod
    def with_tag(cls, tag, **values):
        """An object of a class several tags share, with the given tag."""
        return cls(_tree.template(tag)(), **values)

    @classmethod
    def wrap(cls, element):
        """A view over an existing element (no copy)."""
        obj = cls.__new__(cls)
        obj._element = element
        return obj

    @classmethod
    def from_xml(cls, text):
        """Parse a document whose root must be this class's element."""
        element = _tree.parse_element(text)
        if cls.TAG is not None and element.tag != _tree.qualify(cls.TAG):
            raise XMLDocumentError('expected a <%s> document, got <%s>'
                                   % (cls.TAG, element.tag))
        return cls.wrap_document(element)

    @classmethod
    def wrap_document(cls, element):
        """A view over a parsed document, for reading it many times.

        The view holds the document's elements: no cache (reads walk the
        live tree), but walks then reuse lxml's proxies for them.
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

        A root comes with the comments around it.  Only elements without
        whitespace between them get indented; the tree never changes.
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
        return text[:-1] if pretty and text.endswith('\n') else text

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
        # For copy, deepcopy and pickle: _keep is no part of the object.
        state = self.__dict__.copy()
        state.pop('_keep', None)
        return state

    def copy(self):
        """A detached deep copy."""
        clone = copy.deepcopy(self._element)
        clone.tail = None
        return type(self).wrap(clone)
