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

This module owns the lxml side of the object model: parsing text, the
model's errors, compiling field paths into finder functions, making new
elements from templates, and inserting, creating and pruning elements so
that children stay in libvirt's order.  The editing functions take the
:class:`~nova_pyvirt.xml.fields.XMLObject` being edited (``obj``) and use
its ``_element``, ``_order`` and ``_keep``.

Path syntax (a subset of XPath, with ElementPath's meaning):

* ``@type``, ``./driver/@cache``: an attribute;
* ``./name``, ``./os/type``: an element (its text, for a scalar field);
* ``./timer[@name='pit']``: a step selecting by attribute; creating the
  element sets the attribute;
* ``./nova:instance``: a namespaced step, prefixes from :data:`NAMESPACES`.

A step designates the first child element with the step's tag (``*``: any
element) and attribute values.  Nothing is cached between reads, so edits
made on the raw element are always seen.
"""

import functools
import re

from lxml import etree

NAMESPACES = {'nova': 'http://openstack.org/xmlns/libvirt/nova/1.1'}
_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}


class XMLError(ValueError):
    """Base class of the object model's errors."""


class XMLValueError(XMLError):
    """A typed field was given, or holds, a value of the wrong kind."""


class XMLDocumentError(XMLError):
    """A document could not be parsed, or has an unexpected root element."""


# Dropping the whitespace between elements while parsing makes fewer nodes
# to build and walk.  libxml2 also takes whitespace in front of a CDATA
# section for blank, though it is content, and a DTD changes what counts
# as blank, so such documents keep their whitespace.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True,
                          remove_blank_text=True)
_PARSER_KEEP_BLANKS = etree.XMLParser(resolve_entities=False,
                                      no_network=True)
_KEEP_BLANKS_MARKERS = (b'<![CDATA[', b'<!DOCTYPE')


def parse_element(text):
    """Parse XML text (str or bytes) into an lxml element, failing clearly."""
    if isinstance(text, str):
        text = text.encode('utf-8')
    parser = _PARSER
    if any(marker in text for marker in _KEEP_BLANKS_MARKERS):
        parser = _PARSER_KEEP_BLANKS
    try:
        return etree.fromstring(text, parser)
    except etree.XMLSyntaxError as exc:
        raise XMLDocumentError('not well-formed XML: %s' % exc)


def qualify(name):
    """Turn ``prefix:local`` into lxml's ``{uri}local`` form."""
    if ':' not in name or name.startswith('{'):
        return name
    prefix, local = name.split(':', 1)
    try:
        return '{%s}%s' % (NAMESPACES[prefix], local)
    except KeyError:
        raise XMLError('unknown namespace prefix %r in %r' % (prefix, name))


# lxml checks the name of every element it creates, which costs about as
# much as creating it; copying an element does not check again.  So new
# elements are copies of private templates that nobody modifies, which
# threads may copy concurrently.
@functools.lru_cache(maxsize=4096)
def _template(name, preds=()):
    tag = qualify(name)
    nsmap = None
    if tag.startswith('{'):
        uri = tag[1:].split('}', 1)[0]
        nsmap = {_PREFIXES.get(uri): uri}
    try:
        return etree.Element(tag, dict(preds), nsmap=nsmap).__copy__
    except ValueError:
        # Not a valid name: fail when (and if) one is created.
        return functools.partial(etree.Element, tag, dict(preds),
                                 nsmap=nsmap)


def new_element(name):
    """A new detached element called ``name`` (``prefix:local`` allowed)."""
    return _template(name)()


_STEP_RE = re.compile(
    r"^(?P<tag>\*|[A-Za-z_][\w.:-]*)(?P<preds>(?:\[@[\w:-]+='[^']*'\])*)$")
_PRED_RE = re.compile(r"\[@([\w:-]+)='([^']*)'\]")

# Up to this many children, walking them from Python is cheaper than
# setting up lxml's C tag matcher (iterchildren), whose cost is about that
# of visiting six to ten children.
_WALK_LIMIT = 8


class Step(object):
    """One element step of a path: a tag plus optional attribute tests.

    ``first(parent)`` finds the first matching child (or None), ``all``
    every one; ``new()`` makes a detached element matching the step;
    ``prefix`` holds the tags of the steps before this one.
    """

    __slots__ = ('tag', 'prefix', 'first', 'all', 'new')

    def __init__(self, text, prefix):
        match = _STEP_RE.match(text)
        if not match:
            raise XMLError('bad path step %r' % text)
        tag = self.tag = qualify(match.group('tag'))
        preds = tuple((qualify(name), value) for name, value
                      in _PRED_RE.findall(match.group('preds')))
        self.prefix = prefix
        self.new = _template(match.group('tag'), preds)

        def find_all(parent):
            return [child for child in parent.iterchildren(tag)
                    if all_match(child)]

        def all_match(child):
            for name, value in preds:
                if child.get(name) != value:
                    return False
            return True

        def first(parent):
            if preds or tag == '*' or len(parent) > _WALK_LIMIT:
                for child in parent.iterchildren(tag):
                    if not preds or all_match(child):
                        return child
                return None
            if len(parent):
                # Comments and processing instructions are children too;
                # their tag is a function, never equal to a string.
                child = parent[0]
                while child is not None:
                    if child.tag == tag:
                        return child
                    child = child.getnext()
            return None
        self.first, self.all = first, find_all


def _chain(steps):
    """One function following ``steps`` from an element (None if absent)."""
    if len(steps) == 1:
        return steps[0].first
    finders = tuple(step.first for step in steps)

    def find(element):
        for finder in finders:
            element = finder(element)
            if element is None:
                return None
        return element
    return find


class Path(object):
    """A compiled field path: element steps and an optional attribute.

    ``find(element)`` returns the element the path designates (ignoring the
    attribute) and ``find_parent(element)`` the one above it, or None.
    """

    __slots__ = ('text', 'steps', 'attr', 'find', 'find_parent')

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
        self.find = _chain(self.steps)
        self.find_parent = _chain(self.steps[:-1])


def compile_order(paths, extra):
    """Rank child tags: ``{prefix: {tag: rank}}`` for :func:`place`.

    Tags rank in the order the field ``paths`` first name them; ``extra``
    (a class's ``ORDER``) maps the path of a field-named element (or
    ``'.'``, the start) to the tags no field names that follow it.
    """
    order = {}
    for path in paths:
        prefix = ()
        for step in path.steps:
            tags = order.setdefault(prefix, [])
            if step.tag not in tags:
                tags.append(step.tag)
            prefix += (step.tag,)
    for anchor, tags in extra.items():
        parts = [qualify(part) for part in anchor.split('/')]
        siblings = order.setdefault(tuple(parts[:-1]), [])
        if parts[-1] == '.':
            at = 0
        elif parts[-1] in siblings:
            at = siblings.index(parts[-1]) + 1
        else:
            raise XMLError('ORDER names %r, which no field names' % anchor)
        siblings[at:at] = [qualify(tag) for tag in tags]
    return {prefix: {tag: rank for rank, tag in enumerate(tags)}
            for prefix, tags in order.items()}


def place(obj, parent, prefix, child):
    """Insert ``child`` under ``parent``, the element at tag path ``prefix``.

    ``child`` goes right after the last sibling ranked at or before it,
    else before the first ranked sibling, else (or if unranked) last.
    """
    if obj._keep is not None:
        obj._keep.append(child)
    if not len(parent):
        # Whitespace alone in a leaf was formatting; next to a child it
        # would only keep the serializer from indenting the new content.
        if parent.text is not None and not parent.text.strip():
            parent.text = None
        parent.append(child)
        return child
    rank = obj._order.get(prefix)
    mine = None if rank is None else rank.get(child.tag)
    if mine is not None:
        # Walk back from the last child: when building in declared order
        # the first sibling looked at is the one to go after.
        sibling, following, first_ranked = parent[-1], None, None
        while sibling is not None:
            theirs = rank.get(sibling.tag)
            if theirs is not None:
                if theirs <= mine:
                    break
                first_ranked = sibling
            following, sibling = sibling, sibling.getprevious()
        anchor = following if sibling is not None else first_ranked
        if anchor is not None:
            anchor.addprevious(child)
            return child
    parent.append(child)
    return child


def ensure(obj, steps):
    """The element at ``steps`` below ``obj``, creating missing ones."""
    element = obj._element
    for step in steps:
        found = step.first(element)
        if found is None:
            found = place(obj, element, step.prefix, step.new())
        element = found
    return element


def prune(obj, element):
    """Remove ``element`` and its ancestors below ``obj`` while empty."""
    while (element is not None and element is not obj._element
           and not len(element) and not element.attrib
           and not (element.text or '').strip()):
        parent = element.getparent()
        parent.remove(element)
        element = parent
