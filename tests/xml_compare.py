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

"""Check that libvirt kept every element and attribute a document set."""

import libvirt
from lxml import etree


def _path(element):
    parts = []
    while element is not None:
        parts.append(element.tag)
        element = element.getparent()
    return '/'.join(reversed(parts))


def _matches(mine, theirs):
    for name, value in mine.attrib.items():
        if theirs.get(name) != value:
            return False
    text = (mine.text or '').strip()
    if len(mine) == 0 and text and (theirs.text or '').strip() != text:
        return False
    return True


def missing(mine, theirs):
    """Elements of ``mine`` with no matching element in ``theirs``.

    An element matches when the other tree has an element at the same tag
    path carrying all its attributes (same values) and, for leaves, the same
    text, and when its own parent matched.  Returns readable descriptions.
    """
    problems = []

    def walk(node, candidates):
        found = [c for c in candidates if c.tag == node.tag
                 and _matches(node, c)]
        if not found:
            problems.append('%s %s %r' % (_path(node), dict(node.attrib),
                                          (node.text or '').strip()))
            return
        for child in node:
            if not isinstance(child.tag, str):
                continue
            walk(child, [g for c in found for g in c])

    walk(mine, [theirs])
    return problems


def defined_back(conn, text):
    """What libvirt keeps of domain ``text``: defined, read, undefined.

    :raises libvirt.libvirtError: libvirt refused the definition.
    """
    dom = conn.defineXML(text)
    try:
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE |
                           libvirt.VIR_DOMAIN_XML_SECURE)
    finally:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def dropped(element, back):
    """:func:`missing` of ``element`` in the document text ``back``."""
    return missing(element, etree.fromstring(back.encode()))
