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

"""Documents built with the typed API against libvirt's schemas and parser."""

import libvirt
from lxml import etree
from oslotest import base

from nova_pyvirt import xml
from tests import xml_compare
from tests import xml_samples

SCHEMAS = '/usr/share/libvirt/schemas/'


def _validate(schema, obj):
    rng = etree.RelaxNG(file=SCHEMAS + schema)
    doc = etree.fromstring(obj.to_xml().encode())
    if not rng.validate(doc):
        raise AssertionError('%s rejects:\n%s\n%s' % (
            schema, rng.error_log, obj.to_xml()))


class SchemaTest(base.BaseTestCase):

    def test_rich_domain_validates(self):
        for domain_type in ('kvm', 'qemu', 'test'):
            _validate('domain.rng', xml_samples.rich_domain(domain_type))

    def test_typical_domain_validates(self):
        _validate('domain.rng', xml_samples.typical_domain())

    def test_secret_pool_volume_validate(self):
        _validate('secret.rng', xml_samples.secret())
        for pool in xml_samples.pools():
            _validate('storagepool.rng', pool)
        _validate('storagevol.rng', xml_samples.volume())

    def test_domain_capabilities_validate(self):
        caps = xml_samples.domain_capabilities()
        _validate('domaincaps.rng', caps)
        again = xml.parse(caps.to_xml())
        self.assertEqual(['virtio', 'scsi', 'ide'][::-1],
                         again.device('disk').enum('bus'))
        self.assertTrue(again.cpu_mode_supported('host-model'))
        self.assertEqual(['yes', 'no'],
                         [m.usable for m in again.cpu_mode('custom').models])


class LibvirtAcceptsTest(base.BaseTestCase):

    def setUp(self):
        super(LibvirtAcceptsTest, self).setUp()
        self.conn = libvirt.open('test:///default')
        self.addCleanup(self.conn.close)

    def _define(self, dom):
        virt_dom = self.conn.defineXML(dom.to_xml())
        self.addCleanup(virt_dom.undefine)
        return xml.parse(virt_dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE |
                                          libvirt.VIR_DOMAIN_XML_SECURE))

    def test_rich_domain_is_defined_with_nothing_dropped(self):
        mine = xml_samples.rich_domain('test')
        theirs = self._define(mine)
        self.assertEqual([], xml_compare.missing(mine.element,
                                                 theirs.element))
        self.assertEqual(len(mine.disks), len(theirs.disks))
        self.assertEqual(['vol-block', 'vol-net', 'vol-pool'],
                         [d.serial for d in theirs.disks][1:4])
