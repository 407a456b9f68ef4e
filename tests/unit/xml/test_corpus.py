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

"""The object model against libvirt 9.0's own test XML.

Round trips must be exact (canonically) for every file, and typed reads must
agree with independent XPath reads of the same file.
"""

from lxml import etree
from oslotest import base

from nova_pyvirt import xml
from tests import corpus

# The test's own unit table, written independently of the model's.
_KIB = {'b': 1 / 1024, 'bytes': 1 / 1024, 'kb': 1000 / 1024, 'k': 1,
        'kib': 1, 'mb': 10 ** 6 / 1024, 'm': 1024, 'mib': 1024,
        'gb': 10 ** 9 / 1024, 'g': 1024 ** 2, 'gib': 1024 ** 2,
        'tb': 10 ** 12 / 1024, 't': 1024 ** 3, 'tib': 1024 ** 3}


def _xp1(node, expr):
    found = node.xpath(expr)
    return found[0] if found else None


def _int(text):
    if text is None:
        return None
    text = text.strip()
    return int(text, 16) if text.startswith('0x') else int(text)


class RoundTripTest(base.BaseTestCase):

    def test_every_corpus_file_round_trips_exactly(self):
        failures = []
        paths = corpus.files(*corpus.FOLDERS)
        for path in paths:
            text = corpus.read(path)
            try:
                out = xml.parse(text).to_xml()
                if xml.canonical(etree.fromstring(out.encode())) != \
                        xml.canonical(etree.fromstring(text)):
                    failures.append((path, 'differs'))
            except Exception as exc:
                failures.append((path, repr(exc)))
        self.assertEqual([], failures)
        self.assertGreater(len(paths), 800)

    def test_roots_map_to_their_classes(self):
        expected = {'domain-canonical': xml.Domain,
                    'capabilities': xml.Capabilities,
                    'domaincaps': xml.DomainCapabilities,
                    'cpu': xml.CPU}
        for folder, cls in expected.items():
            for path in corpus.files(folder):
                self.assertIsInstance(xml.parse(corpus.read(path)), cls, path)

    def test_editing_one_field_changes_only_that_attribute(self):
        edited = 0
        for path in corpus.files('domain-canonical'):
            text = corpus.read(path)
            dom = xml.parse(text)
            disks = [d for d in dom.disks if d.driver_name]
            if not disks:
                continue
            new_cache = 'unsafe' if disks[0].driver_cache != 'unsafe' \
                else 'none'
            disks[0].driver_cache = new_cache
            expected = etree.fromstring(text)
            driver = expected.xpath('./devices/disk[driver/@name]/driver')[0]
            driver.set('cache', new_cache)
            self.assertEqual(xml.canonical(expected),
                             xml.canonical(etree.fromstring(
                                 dom.to_xml().encode())), path)
            edited += 1
        self.assertGreater(edited, 100)


class TypedReadTest(base.BaseTestCase):
    """Every domain in the corpus, read through the model and via XPath."""

    def _memory_kib(self, root, tag):
        node = _xp1(root, './' + tag)
        if node is None:
            return None
        unit = node.get('unit', 'KiB').lower()
        return int(int(node.text) * _KIB[unit])

    def _check_disk(self, path, disk, node):
        where = '%s disk %s' % (path, node.xpath('string(./target/@dev)'))
        kind = node.get('type')
        self.assertEqual(kind, disk.type, where)
        self.assertEqual(node.get('device'), disk.device, where)
        source = _xp1(node, './source')
        attr = {'file': 'file', 'block': 'dev', 'dir': 'dir'}.get(kind)
        if attr:
            expected = None if source is None else source.get(attr)
            self.assertEqual(expected, disk.source_path, where)
        if kind == 'network':
            self.assertEqual(_xp1(node, './source/@protocol'),
                             disk.source_protocol, where)
            self.assertEqual(_xp1(node, './source/@name'),
                             disk.source_name, where)
            hosts = node.xpath('./source/host')
            self.assertEqual([h.get('name') for h in hosts],
                             [h.name for h in disk.source_hosts], where)
        self.assertEqual(_xp1(node, './target/@dev'), disk.target_dev, where)
        self.assertEqual(_xp1(node, './target/@bus'), disk.target_bus, where)
        self.assertEqual(_xp1(node, './serial/text()'), disk.serial, where)
        self.assertEqual(_xp1(node, './driver/@type'), disk.driver_type,
                         where)
        self.assertEqual(bool(node.xpath('./readonly')), disk.readonly, where)

    def _check_interface(self, path, nic, node):
        self.assertEqual(node.get('type'), nic.type, path)
        self.assertEqual(_xp1(node, './mac/@address'), nic.mac_address, path)
        self.assertEqual(_xp1(node, './model/@type'), nic.model, path)

    def _check_domain(self, path, dom, root):
        self.assertEqual(_xp1(root, './name/text()'), dom.name, path)
        self.assertEqual(_xp1(root, './uuid/text()'), dom.uuid, path)
        self.assertEqual(self._memory_kib(root, 'memory'), dom.memory_kib,
                         path)
        self.assertEqual(self._memory_kib(root, 'currentMemory'),
                         dom.current_memory_kib, path)
        self.assertEqual(_int(_xp1(root, './vcpu/text()')), dom.vcpu, path)
        disk_nodes = root.xpath('./devices/disk')
        self.assertEqual(len(disk_nodes), len(dom.disks), path)
        for disk, node in zip(dom.disks, disk_nodes):
            self._check_disk(path, disk, node)
        nic_nodes = root.xpath('./devices/interface')
        self.assertEqual(len(nic_nodes), len(dom.interfaces), path)
        for nic, node in zip(dom.interfaces, nic_nodes):
            self._check_interface(path, nic, node)
        cpu = dom.cpu
        self.assertEqual(bool(root.xpath('./cpu')), cpu is not None, path)
        if cpu is not None:
            self.assertEqual(_xp1(root, './cpu/@mode'), cpu.mode, path)
            self.assertEqual(_xp1(root, './cpu/model/text()'), cpu.model,
                             path)
            self.assertEqual(root.xpath('./cpu/feature/@name'),
                             [f.name for f in cpu.features], path)
        clock = dom.clock
        if clock is None:
            self.assertEqual([], root.xpath('./clock'), path)
            return
        self.assertEqual(_xp1(root, './clock/@offset'), clock.offset, path)
        expected_timers = [
            (t.get('name'), t.get('tickpolicy'), t.get('present'))
            for t in root.xpath('./clock/timer')]
        present = {True: 'yes', False: 'no', None: None}
        self.assertEqual(expected_timers,
                         [(t.name, t.tickpolicy, present[t.present])
                          for t in clock.timers], path)

    def test_domains(self):
        checked = 0
        for path in corpus.files(*corpus.DOMAIN_FOLDERS):
            text = corpus.read(path)
            self._check_domain(path, xml.parse(text), etree.fromstring(text))
            checked += 1
        self.assertGreater(checked, 700)

    def test_capabilities(self):
        for path in corpus.files('capabilities'):
            text = corpus.read(path)
            root = etree.fromstring(text)
            caps = xml.parse(text)
            self.assertEqual(root.xpath('./guest/arch/@name'),
                             [g.arch for g in caps.guests], path)
            self.assertEqual(root.xpath('./guest/os_type/text()'),
                             [g.os_type for g in caps.guests], path)
            for guest, node in zip(caps.guests, root.xpath('./guest')):
                self.assertEqual(node.xpath('./arch/domain/@type'),
                                 guest.domain_types, path)
                self.assertEqual(node.xpath('./arch/machine/text()'),
                                 [m.name for m in guest.machines], path)
            self.assertEqual(_xp1(root, './host/cpu/arch/text()'),
                             caps.host.cpu.arch, path)

    def test_domain_capabilities(self):
        for path in corpus.files('domaincaps'):
            text = corpus.read(path)
            root = etree.fromstring(text)
            caps = xml.parse(text)
            self.assertEqual(_xp1(root, './domain/text()'), caps.domain_type)
            self.assertEqual(_xp1(root, './machine/text()'), caps.machine)
            self.assertEqual(root.xpath('./cpu/mode/@name'),
                             [m.name for m in caps.cpu_modes], path)
            custom = caps.cpu_mode('custom')
            if custom is not None:
                self.assertEqual(
                    root.xpath("./cpu/mode[@name='custom']/model/text()"),
                    [m.name for m in custom.models], path)
                self.assertEqual(
                    root.xpath("./cpu/mode[@name='custom']/model/@usable"),
                    [m.usable for m in custom.models], path)
            disk = caps.device('disk')
            if disk is not None:
                self.assertEqual(
                    root.xpath("./devices/disk/enum[@name='bus']/value"
                               "/text()"),
                    disk.enum('bus'), path)

    def test_cpus(self):
        for path in corpus.files('cpu'):
            text = corpus.read(path)
            root = etree.fromstring(text)
            cpu = xml.parse(text)
            self.assertEqual(_xp1(root, './model/text()'), cpu.model, path)
            self.assertEqual(_xp1(root, './vendor/text()'), cpu.vendor, path)
            self.assertEqual(root.xpath('./feature/@name'),
                             [f.name for f in cpu.features], path)
