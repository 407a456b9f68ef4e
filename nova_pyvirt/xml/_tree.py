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

"""Tree mechanics under :mod:`nova_pyvirt.xml.fields` (private).

Parsing, the model's errors, field paths compiled into finders, element
templates, and ordered insertion and pruning; the editing functions use
the edited ``XMLObject``'s ``_element``, ``_order`` and ``_keep``.

Paths are a subset of XPath: ``@type``, ``./driver/@cache`` (attributes),
``./os/type`` (an element), ``./timer[@name='pit']`` (attribute tests, set
on elements created) and ``./nova:name`` (prefixes from ``NAMESPACES``).
A step designates the first child with its tag (``*``: any) and attribute
values.  Nothing is cached: reads always see the tree as it is.
"""

import functools
import re

from lxml import etree

NAMESPACES = {'nova': 'http://openstack.org/xmlns/libvirt/nova/1.1'}


class XMLError(ValueError):
    """Base class of the object model's errors."""


class XMLValueError(XMLError):
    """A typed field was given, or holds, a value of the wrong kind."""


class XMLDocumentError(XMLError):
    """A document could not be parsed, or has an unexpected root element."""


# Dropping the whitespace between elements makes fewer nodes to build and
# walk.  libxml2 also drops whitespace in front of a CDATA section, which
# is content, and a DTD changes what is blank: such documents keep theirs.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True,
                          remove_blank_text=True)
_PARSER_KEEP_BLANKS = etree.XMLParser(resolve_entities=False,
                                      no_network=True)


def parse_element(text):
    """Parse XML text (str or bytes) into an lxml element, failing clearly."""
    if isinstance(text, str):
        text = text.encode('utf-8')
    keep = b'<![CDATA[' in text or b'<!DOCTYPE' in text
    try:
        return etree.fromstring(text, _PARSER_KEEP_BLANKS if keep else _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XMLDocumentError('not well-formed XML: %s' % exc)


def qualify(name):
    """Turn ``prefix:local`` into lxml's ``{uri}local`` form."""
    if ':' not in name or name.startswith('{'):
        return name
    prefix, local = name.split(':', 1)
    if prefix not in NAMESPACES:
        raise XMLError('unknown namespace prefix %r in %r' % (prefix, name))
    return '{%s}%s' % (NAMESPACES[prefix], local)


# lxml checks the name of each element it creates, which costs about as
# much as creating it, but not when copying one: new elements are copies
# of templates that nobody modifies (so threads may share them).
@functools.lru_cache(maxsize=4096)
def template(name, attrib=()):
    """A function making new detached ``name`` elements (with ``attrib``)."""
    tag = qualify(name)
    prefix = name.split(':')[0] if tag != name else None
    nsmap = {prefix: NAMESPACES[prefix]} if prefix else None
    try:
        return etree.Element(tag, dict(attrib), nsmap=nsmap).__copy__
    except ValueError:
        # Not a valid name: fail when (and if) one is created.
        return functools.partial(etree.Element, name)


_STEP_RE = re.compile(r"^(\*|[A-Za-z_][\w.:-]*)((?:\[@[\w:-]+='[^']*'\])*)$")
_TEST_RE = re.compile(r"\[@([\w:-]+)='([^']*)'\]")

WALK_LIMIT = 8


def _plain_finders(tag):
    """``first`` and ``all`` for a step that only names a tag.

    For a few children, Python beats setting up lxml's tag matcher
    (iterchildren), which costs as much as six to ten steps: walking them
    saves 15% of parse+read.  (A comment's tag is a function, never equal
    to a string.)
    """
    def first(parent):
        count = len(parent)
        if count > WALK_LIMIT:
            for child in parent.iterchildren(tag):
                return child
            return None
        child = parent[0] if count else None
        while child is not None and child.tag != tag:
            child = child.getnext()
        return child

    def find_all(parent):
        count = len(parent)
        if count > WALK_LIMIT:
            return list(parent.iterchildren(tag))
        found, child = [], parent[0] if count else None
        while child is not None:
            if child.tag == tag:
                found.append(child)
            child = child.getnext()
        return found
    return first, find_all


class Step(object):
    """One element step of a path: a tag plus optional attribute tests.

    ``first(parent)`` is the first matching child (or None), ``all(parent)``
    every one, ``new()`` a new element matching the step, and ``prefix``
    the tags of the steps before it.
    """

    __slots__ = ('tag', 'prefix', 'plain', 'first', 'all', 'new')

    def __init__(self, text, prefix):
        match = _STEP_RE.match(text)
        if not match:
            raise XMLError('bad path step %r' % text)
        tag = self.tag = qualify(match.group(1))
        tests = tuple((qualify(name), value)
                      for name, value in _TEST_RE.findall(match.group(2)))
        self.prefix = prefix
        self.new = template(match.group(1), tests)

        self.plain = not tests and tag != '*'
        if self.plain:
            first, find_all = _plain_finders(tag)
        else:
            def first(parent):
                for child in parent.iterchildren(tag):
                    if all(child.get(name) == value for name, value in tests):
                        return child
                return None

            def find_all(parent):
                return [child for child in parent.iterchildren(tag)
                        if all(child.get(n) == v for n, v in tests)]
        self.first, self.all = first, find_all


class Path(object):
    """A compiled field path: element steps and an optional attribute.

    ``find(element)`` returns the element the path designates (ignoring the
    attribute) and ``find_parent(element)`` the one above it, or None.
    """

    __slots__ = ('text', 'steps', 'attr', 'find', 'find_parent')

    def __init__(self, text):
        self.text = text
        parts = [p for p in text.split('/') if p not in ('', '.')]
        self.attr = qualify(parts.pop()[1:]) if parts and parts[-1][0] == '@' \
            else None
        steps = []
        for part in parts:
            steps.append(Step(part, tuple(s.tag for s in steps)))
        self.steps = tuple(steps)
        self.find = _chain(self.steps)
        self.find_parent = _chain(self.steps[:-1])


def _chain(steps):
    """One function following ``steps`` from an element (None if absent)."""
    if len(steps) < 2:
        return steps[0].first if steps else lambda element: element
    finders = tuple(step.first for step in steps)
    if len(finders) == 2:
        # Two steps (./driver/@cache) are the commonest longer paths; not
        # looping saves 5% of parse+read.
        first, second = finders

        def find_below(element):
            element = first(element)
            return None if element is None else second(element)
        return find_below

    def find(element):
        for finder in finders:
            element = finder(element)
            if element is None:
                return None
        return element
    return find


def compile_order(paths, extra):
    """Rank child tags for :func:`place`: ``{prefix: {tag: rank}}``.

    Tags rank in the order the field ``paths`` first name them; ``extra``
    (a class's ``ORDER``) maps the path of a field-named element, or
    ``'.'`` for the start, to the tags no field names that follow it.
    """
    order = {}
    for path in paths:
        for step in path.steps:
            tags = order.setdefault(step.prefix, [])
            if step.tag not in tags:
                tags.append(step.tag)
    for anchor, tags in extra.items():
        parts = [qualify(part) for part in anchor.split('/')]
        siblings = order.setdefault(tuple(parts[:-1]), [])
        if parts[-1] != '.' and parts[-1] not in siblings:
            raise XMLError('ORDER names %r, which no field names' % anchor)
        at = siblings.index(parts[-1]) + 1 if parts[-1] != '.' else 0
        siblings[at:at] = [qualify(tag) for tag in tags]
    return {prefix: {tag: rank for rank, tag in enumerate(tags)}
            for prefix, tags in order.items()}


_UNRANKED = {}


def place(obj, parent, prefix, child, tag=None):
    """Insert ``child`` (whose tag is ``tag``) under ``parent`` at ``prefix``.

    It goes right after the last sibling ranked at or before it, else before
    the first ranked sibling, else (or if unranked) last.
    """
    keep = obj._keep
    if keep is not None:
        keep.append(child)
    if not len(parent):
        # Whitespace alone in a leaf was formatting; next to a child it
        # would keep the serializer from indenting the new content.
        if parent.text is not None and not parent.text.strip():
            parent.text = None
        parent.append(child)
        return child
    rank = obj._order.get(prefix, _UNRANKED)
    mine = rank.get(tag or child.tag)
    sibling = parent[-1]
    theirs = rank.get(sibling.tag)
    if mine is None or theirs is not None and theirs <= mine:
        # Unranked, or built in declared order: it simply goes last.
        parent.append(child)
        return child
    # Walk back for the last sibling ranked at or before it.
    following, first_ranked = None, None
    while sibling is not None:
        theirs = rank.get(sibling.tag)
        if theirs is not None:
            if theirs <= mine:
                break
            first_ranked = sibling
        following, sibling = sibling, sibling.getprevious()
    anchor = following if sibling is not None else first_ranked
    if anchor is None:
        parent.append(child)
    else:
        anchor.addprevious(child)
    return child


def ensure(obj, steps):
    """The element at ``steps`` below ``obj``, creating missing ones."""
    element = obj._element
    for step in steps:
        found = step.first(element)
        if found is None:
            found = place(obj, element, step.prefix, step.new(), step.tag)
        element = found
    return element


def prune(obj, element):
    """Remove ``element`` and its ancestors below ``obj`` while empty."""
    while (element is not obj._element and not len(element)
           and not element.attrib and not (element.text or '').strip()):
        parent = element.getparent()
        parent.remove(element)
        element = parent
