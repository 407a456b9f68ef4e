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

"""Model fields beyond the core: the values nova's parse_dom reads."""

from lxml import etree
from oslotest import base

from nova_pyvirt import xml
from nova_pyvirt.xml import cpudef as cpu_mod
from nova_pyvirt.xml import devices
from nova_pyvirt.xml import domain as domain_mod
from tests import corpus

_YESNO = {'yes': True, 'no': False, 'on': True, 'off': False, None: None}


def _xp1(node, expr):
    found = node.xpath(expr)
    return found[0] if found else None


class FeaturesTest(base.BaseTestCase):

    def test_smm_presence_and_state(self):
        cases = (('<features/>', False, None, False),
                 ('<features><smm/></features>', True, None, True),
                 ("<features><smm state='on'/></features>", True, True, True),
                 ("<features><smm state='off'/></features>", True, False,
                  False))
        for text, present, state, enabled in cases:
            features = domain_mod.Features.wrap(etree.fromstring(text))
            self.assertEqual(present, features.smm, text)
            self.assertEqual(state, features.smm_state, text)
            self.assertEqual(enabled, features.smm_enabled, text)

    def test_smm_writes(self):
        self.assertEqual('<features>\n  <smm/>\n</features>',
                         domain_mod.Features(smm=True).to_xml())
        self.assertEqual('<features>\n  <smm state="off"/>\n</features>',
                         domain_mod.Features(smm_state=False).to_xml())
        features = domain_mod.Features(smm=True, smm_state=True)
        features.smm = False
        self.assertIsNone(features.element.find('smm'))


class ModelFixesTest(base.BaseTestCase):

    def test_interface_types_are_unique(self):
        choices = devices.Interface.type.kind.choices
        self.assertEqual(len(set(choices)), len(choices))
        self.assertIn('server', choices)

    def test_domain_module_docstring(self):
        self.assertNotIn('cpu_xml', domain_mod.__doc__)


class NewFieldsTest(base.BaseTestCase):

    def test_writes(self):
        dom = xml.Domain(name='x', perf_events=[
            domain_mod.PerfEvent(name='cmt', enabled=True),
            domain_mod.PerfEvent(name='mbmt', enabled=False)])
        dom.os = domain_mod.OS(type='hvm', firmware='efi',
                               loader_stateless=True,
                               firmware_secure_boot=True,
                               firmware_enrolled_keys=False)
        dom.cpu = cpu_mod.CPU(mode='host-passthrough',
                              maxphysaddr_mode='passthrough',
                              maxphysaddr_limit=39)
        dom.devices.append(devices.Disk(type='file', snapshot='external'))
        dom.devices.append(devices.Interface(
            type='hostdev', target_managed=False, driver_packed=True,
            source_address=devices.Address(type='pci', domain='0x0000',
                                           bus='0x06', slot='0x12',
                                           function='0x5'),
            virtualport_type='802.1Qbh', virtualport_profileid='p1'))
        dom.devices.append(devices.Filesystem(
            type='block', driver_format='raw', source_dev='/dev/sdb',
            target_dir='/mnt'))
        dom.devices.append(devices.HostdevPCI(
            mode='subsystem', type='mdev', model='vfio-pci',
            source_address=devices.Address(uuid='c2177883-f1bb')))
        root = etree.fromstring(dom.to_xml())
        self.assertEqual(
            [('cmt', 'yes'), ('mbmt', 'no')],
            [(e.get('name'), e.get('enabled'))
             for e in root.findall('perf/event')])
        self.assertEqual('yes', root.find('os/loader').get('stateless'))
        self.assertEqual(
            [('secure-boot', 'yes'), ('enrolled-keys', 'no')],
            [(e.get('name'), e.get('enabled'))
             for e in root.findall('os/firmware/feature')])
        self.assertEqual({'mode': 'passthrough', 'limit': '39'},
                         dict(root.find('cpu/maxphysaddr').attrib))
        self.assertEqual('external', root.find('devices/disk').get(
            'snapshot'))
        nic = root.find('devices/interface')
        self.assertEqual(['source', 'virtualport', 'target', 'driver'],
                         [c.tag for c in nic])
        self.assertEqual('no', nic.find('target').get('managed'))
        self.assertEqual('on', nic.find('driver').get('packed'))
        self.assertEqual('0x12', nic.find('source/address').get('slot'))
        self.assertEqual('p1', nic.find('virtualport/parameters').get(
            'profileid'))
        fs = root.find('devices/filesystem')
        self.assertEqual(['driver', 'source', 'target'], [c.tag for c in fs])
        self.assertEqual('raw', fs.find('driver').get('format'))
        self.assertEqual('/dev/sdb', fs.find('source').get('dev'))
        hostdev = root.find('devices/hostdev')
        self.assertEqual('vfio-pci', hostdev.get('model'))
        self.assertEqual('c2177883-f1bb',
                         hostdev.find('source/address').get('uuid'))
        self.assertRaises(xml.XMLValueError, devices.Disk, snapshot='maybe')

    def test_corpus_reads_match_xpath(self):
        seen = set()
        for path in corpus.files(*corpus.DOMAIN_FOLDERS):
            text = corpus.read(path)
            root = etree.fromstring(text)
            dom = xml.parse(text)
            os_ = dom.os
            if os_ is not None:
                self.assertEqual(
                    _YESNO[_xp1(root, './os/loader/@stateless')],
                    os_.loader_stateless, path)
                self.assertEqual(
                    _YESNO[_xp1(root, "./os/firmware/feature"
                                      "[@name='secure-boot']/@enabled")],
                    os_.firmware_secure_boot, path)
                seen.update(['stateless'] if os_.loader_stateless
                            is not None else [])
                seen.update(['secure-boot'] if os_.firmware_secure_boot
                            is not None else [])
            cpu = dom.cpu
            if cpu is not None:
                self.assertEqual(_xp1(root, './cpu/maxphysaddr/@mode'),
                                 cpu.maxphysaddr_mode, path)
                bits = _xp1(root, './cpu/maxphysaddr/@bits')
                self.assertEqual(None if bits is None else int(bits),
                                 cpu.maxphysaddr_bits, path)
                seen.update(['maxphysaddr'] if cpu.maxphysaddr_mode else [])
            self.assertEqual(
                [(e.get('name'), _YESNO[e.get('enabled')])
                 for e in root.xpath('./perf/event')],
                [(e.name, e.enabled) for e in dom.perf_events], path)
            for nic, node in zip(dom.interfaces,
                                 root.xpath('./devices/interface')):
                self.assertEqual(
                    _YESNO[_xp1(node, './target/@managed')],
                    nic.target_managed, path)
                self.assertEqual(
                    _YESNO[_xp1(node, './driver/@packed')],
                    nic.driver_packed, path)
                params = _xp1(node, './virtualport/parameters')
                for name, value in getattr(params, 'attrib', {}).items():
                    self.assertEqual(
                        value, str(getattr(nic, 'virtualport_' + name)),
                        path)
                self.assertEqual(_xp1(node, './virtualport/parameters/'
                                            '@profileid'),
                                 nic.virtualport_profileid, path)
                address = nic.source_address
                self.assertEqual(_xp1(node, './source/address/@slot'),
                                 None if address is None else address.slot,
                                 path)
                seen.update(['packed'] if nic.driver_packed else [])
                seen.update(['managed'] if nic.target_managed is False
                            else [])
                seen.update(['params'] if nic.virtualport_profileid
                            or nic.virtualport_instanceid else [])
                seen.update(['nic-address'] if address is not None else [])
            for fs, node in zip(dom.filesystems,
                                root.xpath('./devices/filesystem')):
                self.assertEqual(_xp1(node, './driver/@format'),
                                 fs.driver_format, path)
                self.assertEqual(_xp1(node, './source/@dev'), fs.source_dev,
                                 path)
                seen.update(['fs-format'] if fs.driver_format else [])
            for hostdev, node in zip(dom.hostdevs,
                                     root.xpath('./devices/hostdev')):
                self.assertEqual(node.get('model'), hostdev.model, path)
                address = hostdev.source_address
                self.assertEqual(
                    _xp1(node, './source/address/@uuid'),
                    None if address is None else address.uuid, path)
                seen.update(['mdev'] if hostdev.model else [])
            for disk, node in zip(dom.disks, root.xpath('./devices/disk')):
                self.assertEqual(node.get('snapshot'), disk.snapshot, path)
        # The corpus has no <target managed=> nor filesystem format=;
        # test_writes covers those.
        self.assertEqual(
            {'stateless', 'secure-boot', 'maxphysaddr', 'packed', 'params',
             'nic-address', 'mdev'}, seen)
