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

"""``resources.supported_instances`` against libvirt 9.0's capabilities XML.

Every capabilities document of the corpus must give exactly the
``(arch, hv_type, vm_mode)`` tuples an independent XPath read of the raw
file gives, canonicalized by nova's fields; values nova does not know are
skipped with a debug log, and nova's aliases come out canonical.
"""

import copy
import logging
import os

import fixtures
from lxml import etree
from nova import exception
from nova.objects import fields
from oslotest import base

from nova_pyvirt.report import resources
from nova_pyvirt import xml
from tests import corpus

_UNKNOWN = (exception.InvalidArchitectureName,
            exception.InvalidHypervisorVirtType,
            exception.InvalidVirtualMachineMode)


def _expected(root):
    """The tuples of a parsed document, read with XPath, not the model."""
    found = set()
    for guest in root.xpath('/capabilities/guest'):
        # Domain types live under <arch>, with or without machines of their
        # own; './/domain' would also catch any placed elsewhere.
        types = set(guest.xpath('.//domain/@type'))
        types |= set(guest.xpath('arch/machine/../domain/@type'))
        for arch in guest.xpath('arch/@name'):
            for hv_type in types:
                try:
                    found.add((fields.Architecture.canonicalize(arch),
                               fields.HVType.canonicalize(hv_type),
                               fields.VMMode.canonicalize(
                                   guest.xpath('string(os_type)'))))
                except _UNKNOWN:
                    pass
    return found


def _corpus_root(name):
    return etree.fromstring(
        corpus.read(os.path.join(corpus.ROOT, 'capabilities', name)))


def _supported(root):
    return resources.supported_instances(
        xml.Capabilities.from_xml(etree.tostring(root)))


class SupportedInstancesTest(base.BaseTestCase):

    def assertNoDuplicates(self, result):
        self.assertEqual(len(set(result)), len(result), result)

    def test_every_corpus_document_matches_xpath(self):
        with_guests = without_guests = 0
        for path in corpus.files('capabilities'):
            name = os.path.basename(path)
            with self.subTest(file=name):
                root = etree.fromstring(corpus.read(path))
                result = resources.supported_instances(
                    xml.Capabilities.from_xml(corpus.read(path)))
                self.assertNoDuplicates(result)
                self.assertEqual(_expected(root), set(result), name)
                if root.xpath('/capabilities/guest'):
                    with_guests += 1
                    self.assertNotEqual([], result, name)
                else:
                    without_guests += 1
                    self.assertEqual([], result, name)
        # The corpus has both kinds (caps-test*.xml, vircaps-*.xml).
        self.assertGreater(with_guests, 0)
        self.assertGreater(without_guests, 0)

    def test_caps_test2_literal_tuples(self):
        # Two hvm guests, i686 and x86_64, each with domain types qemu and
        # kvm (the kvm one carrying its own machine list).
        result = _supported(_corpus_root('caps-test2.xml'))
        self.assertNoDuplicates(result)
        self.assertCountEqual([('i686', 'qemu', 'hvm'),
                               ('i686', 'kvm', 'hvm'),
                               ('x86_64', 'qemu', 'hvm'),
                               ('x86_64', 'kvm', 'hvm')], result)

    def test_caps_test_literal_tuples(self):
        # Two i686 guests of domain type 'test', one hvm and one xen.
        result = _supported(_corpus_root('caps-test.xml'))
        self.assertCountEqual([('i686', 'test', 'hvm'),
                               ('i686', 'test', 'xen')], result)

    def test_unknown_values_are_skipped_and_logged(self):
        root = _corpus_root('caps-test2.xml')
        i686, x86_64 = root.xpath('/capabilities/guest')
        # A third guest, a copy of the x86_64 one, with an unknown arch.
        frob = copy.deepcopy(x86_64)
        frob.find('arch').set('name', 'frobnicator')
        root.append(frob)
        # The i686 guest gets an unknown os_type.
        i686.find('os_type').text = 'notamode'
        # The x86_64 guest gets an unknown domain type besides its own.
        etree.SubElement(x86_64.find('arch'), 'domain', type='nosuchhv')

        logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, name='nova_pyvirt.report.resources',
            format='%(levelname)s %(name)s %(message)s'))
        result = _supported(root)

        self.assertCountEqual([('x86_64', 'qemu', 'hvm'),
                               ('x86_64', 'kvm', 'hvm')], result)
        self.assertEqual(_expected(root), set(result))
        lines = [line for line in logger.output.splitlines()
                 if line.startswith('DEBUG nova_pyvirt.report.resources ')]
        for value in ('frobnicator', 'notamode', 'nosuchhv'):
            self.assertTrue(any(value in line for line in lines),
                            '%r not in debug log: %r' % (value, lines))

    def test_aliases_are_canonicalized(self):
        # nova's fields.py maps i386/i486/i586 -> i686 and amd64 -> x86_64;
        # xapi -> xen; pv -> xen, hv and baremetal -> hvm; all lowercased.
        doc = """<capabilities>
          <guest><os_type>hvm</os_type>
            <arch name='i386'><domain type='kvm'/></arch></guest>
          <guest><os_type>hvm</os_type>
            <arch name='i686'><domain type='kvm'/></arch></guest>
          <guest><os_type>pv</os_type>
            <arch name='amd64'><domain type='xapi'/></arch></guest>
          <guest><os_type>baremetal</os_type>
            <arch name='X86_64'><domain type='QEMU'/></arch></guest>
        </capabilities>"""
        result = resources.supported_instances(
            xml.Capabilities.from_xml(doc))
        # i386 and i686 give one tuple, not two.
        self.assertNoDuplicates(result)
        self.assertCountEqual([('i686', 'kvm', 'hvm'),
                               ('x86_64', 'xen', 'xen'),
                               ('x86_64', 'qemu', 'hvm')], result)
        self.assertEqual(_expected(etree.fromstring(doc)), set(result))
