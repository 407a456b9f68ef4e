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

"""``nova_pyvirt.report.traits`` against libvirt 9.0's capability documents.

Every expectation is read from the raw corpus file with XPath (not through
``nova_pyvirt.xml``), turned into a trait name by the os-traits naming rule
(prefix plus the upper-cased value) and kept only if os-traits defines it;
CPU features by nova's own table (``CPU_TRAITS_MAPPING``), else by name.
Domain capabilities are checked one document at a time, including the
bhyve, libxl and empty ones; capabilities documents for every virt type
they name, plus ``kvm``, ``qemu`` and ``test``.
"""

import os

import libvirt
from lxml import etree
from nova.virt.libvirt import utils as nova_libvirt_utils
import os_traits
from oslotest import base

from nova_pyvirt.design import machine as design_machine
from nova_pyvirt.design import peripherals
from nova_pyvirt.design import request
from nova_pyvirt import exception
from nova_pyvirt.hypervisor import host_facts
from nova_pyvirt.report import traits
from nova_pyvirt import xml
from tests import corpus
from tests import design_support as support

STORAGE_BUS = 'COMPUTE_STORAGE_BUS_'
GRAPHICS_MODEL = 'COMPUTE_GRAPHICS_MODEL_'
VIF_MODEL = 'COMPUTE_NET_VIF_MODEL_'
FIRMWARE = 'COMPUTE_FIRMWARE_'
HW_ARCH = 'HW_ARCH_'
COMPUTE_ARCH = 'COMPUTE_ARCH_'
CPU_X86 = 'HW_CPU_X86_'
UEFI = 'COMPUTE_FIRMWARE_UEFI'
BIOS = 'COMPUTE_FIRMWARE_BIOS'
# The namespaces the driver replaces on each update, as its docs list them.
OWNED = (CPU_X86, STORAGE_BUS, GRAPHICS_MODEL, VIF_MODEL, FIRMWARE, HW_ARCH,
         COMPUTE_ARCH)
X86 = ('i686', 'x86_64')
QEMU = ('qemu', 'kvm')

DISK_BUSES = '/domainCapabilities/devices/disk/enum[@name="bus"]/value/text()'
VIDEO_MODELS = ('/domainCapabilities/devices/video/enum[@name="modelType"]'
                '/value/text()')
FIRMWARES = '/domainCapabilities/os/enum[@name="firmware"]/value/text()'
LOADERS = '/domainCapabilities/os/loader/value/text()'
HOST_FEATURES = ('/capabilities/host/cpu/feature[not(@policy) or '
                 '@policy="require" or @policy="force"]/@name')
GUEST_ARCHES = '/capabilities/guest[arch/domain/@type=$vt]/arch/@name'


def _names(prefix, values):
    """``prefix`` + upper-cased ``values``, only those os-traits defines."""
    known = set(os_traits.get_traits(prefix))
    return {prefix + value.upper() for value in values} & known


def _caps_path(name):
    return os.path.join(corpus.ROOT, 'capabilities', name)


def _domcaps_path(name):
    return os.path.join(corpus.ROOT, 'domaincaps', name)


def _root(path):
    return etree.fromstring(corpus.read(path))


def _caps(root):
    return xml.Capabilities.from_xml(etree.tostring(root))


def _domcaps(path):
    return xml.DomainCapabilities.from_xml(corpus.read(path))


def _machines(root, arch, virt_type):
    """The ``<machine>`` elements usable for ``arch`` and ``virt_type``.

    A ``<domain>`` with machines of its own replaces the arch's list.
    """
    found = []
    for guest in root.xpath('/capabilities/guest[arch/@name=$arch]'
                            '[arch/domain/@type=$vt]', arch=arch,
                            vt=virt_type):
        own = guest.xpath('arch/domain[@type=$vt]/machine', vt=virt_type)
        found += own or guest.xpath('arch/machine')
    return found


def _expected_asks(root, virt_type):
    """(arch, machine, virt_type) domain capabilities should be read for.

    Per guest arch: every alias (a ``<machine canonical=...>``) and the
    default alias if the host offers it, or no machine at all if neither.
    """
    asks = []
    for arch in sorted(set(root.xpath(GUEST_ARCHES, vt=virt_type))):
        machines = _machines(root, arch, virt_type)
        wanted = {m.text for m in machines if m.get('canonical')}
        default = design_machine.DEFAULT_ALIAS.get(arch)
        if default in {m.text for m in machines}:
            wanted.add(default)
        asks += [(arch, machine, virt_type)
                 for machine in (sorted(wanted) or [None])]
    return asks


def _add_q35(root, virt_type):
    """Give ``virt_type``'s own x86_64 machine list a q35 alias."""
    domain = root.xpath('/capabilities/guest[arch/@name="x86_64"]'
                        '/arch/domain[@type=$vt]', vt=virt_type)[0]
    etree.SubElement(domain, 'machine').text = 'pc-q35-1.2'
    etree.SubElement(domain, 'machine', canonical='pc-q35-1.2').text = 'q35'
    return root


class Recorder(object):
    """A ``domain_capabilities`` callable remembering what it was asked."""

    def __init__(self):
        self.asks = []
        self.returned = []

    def __call__(self, arch, machine, virt_type):
        self.asks.append((arch, machine, virt_type))
        doc = xml.DomainCapabilities(arch=arch, machine=machine,
                                     domain_type=virt_type)
        self.returned.append(doc)
        return doc


class DeviceTraitsTest(base.BaseTestCase):
    """Storage bus and graphics model traits, one corpus file at a time."""

    def test_every_domcaps_document_matches_xpath(self):
        seen = set()
        for path in corpus.files('domaincaps'):
            name = os.path.basename(path)
            seen.add(name)
            with self.subTest(file=name):
                root = _root(path)
                doc = _domcaps(path)
                self.assertEqual(_names(STORAGE_BUS, root.xpath(DISK_BUSES)),
                                 traits.storage_bus_traits([doc]))
                self.assertEqual(
                    _names(GRAPHICS_MODEL, root.xpath(VIDEO_MODELS)),
                    traits.graphics_model_traits([doc]))
        # The odd ones out are part of the run, not skipped.
        self.assertLessEqual({'bhyve_basic.x86_64.xml', 'libxl-xenpv.xml',
                              'empty.xml'}, seen)

    def test_documents_are_combined(self):
        paths = corpus.files('domaincaps')
        buses = set()
        models = set()
        for path in paths:
            buses |= set(_root(path).xpath(DISK_BUSES))
            models |= set(_root(path).xpath(VIDEO_MODELS))
        docs = [_domcaps(path) for path in paths]
        self.assertEqual(_names(STORAGE_BUS, buses),
                         traits.storage_bus_traits(docs))
        self.assertEqual(_names(GRAPHICS_MODEL, models),
                         traits.graphics_model_traits(docs))

    def test_values_os_traits_lacks_are_dropped(self):
        # QEMU lists the ramfb video model; os-traits has no trait for it.
        path = _domcaps_path('qemu_8.0.0.x86_64.xml')
        self.assertIn('ramfb', _root(path).xpath(VIDEO_MODELS))
        self.assertNotIn(GRAPHICS_MODEL + 'RAMFB',
                         os_traits.get_traits(GRAPHICS_MODEL))
        result = traits.graphics_model_traits([_domcaps(path)])
        self.assertNotIn(GRAPHICS_MODEL + 'RAMFB', result)
        self.assertIn(GRAPHICS_MODEL + 'VIRTIO', result)

    def test_undescribed_devices_give_nothing(self):
        # bhyve describes no video model, the empty document no devices,
        # and libvirt's test driver gives a document without a <devices>.
        bhyve = _domcaps(_domcaps_path('bhyve_basic.x86_64.xml'))
        empty = _domcaps(_domcaps_path('empty.xml'))
        test_driver = xml.DomainCapabilities(arch='i686',
                                             domain_type='test')
        self.assertEqual(set(), traits.graphics_model_traits([bhyve]))
        for doc in (empty, test_driver):
            self.assertEqual(set(), traits.storage_bus_traits([doc]))
            self.assertEqual(set(), traits.graphics_model_traits([doc]))
        self.assertEqual(set(), traits.storage_bus_traits([]))


class FirmwareTraitsTest(base.BaseTestCase):

    def expected(self, root, virt_type):
        expected = set()
        if 'efi' in root.xpath(FIRMWARES) or root.xpath(LOADERS):
            expected.add(UEFI)
        if root.findtext('arch') in X86 and virt_type in QEMU:
            expected.add(BIOS)
        return expected

    def test_every_domcaps_document(self):
        with_uefi = without_uefi = 0
        for path in corpus.files('domaincaps'):
            name = os.path.basename(path)
            root = _root(path)
            virt_type = root.findtext('domain')
            with self.subTest(file=name, virt_type=virt_type):
                expected = self.expected(root, virt_type)
                self.assertEqual(
                    expected,
                    traits.firmware_traits([_domcaps(path)], virt_type))
                if UEFI in expected:
                    with_uefi += 1
                else:
                    without_uefi += 1
        # Both kinds are in the corpus (QEMU's, and bhyve/libxl/empty).
        self.assertGreater(with_uefi, 0)
        self.assertGreater(without_uefi, 0)

    def test_aarch64_gets_uefi_but_no_bios(self):
        for name in ('qemu_7.0.0-virt.aarch64.xml', 'qemu_5.0.0.aarch64.xml'):
            path = _domcaps_path(name)
            self.assertEqual('aarch64', _root(path).findtext('arch'))
            for virt_type in QEMU:
                with self.subTest(file=name, virt_type=virt_type):
                    self.assertEqual(
                        {UEFI},
                        traits.firmware_traits([_domcaps(path)], virt_type))

    def test_bios_needs_a_qemu_virt_type(self):
        # x86 documents that list no firmware (bhyve, libxl) give BIOS only
        # for QEMU virt types.
        for name in ('bhyve_basic.x86_64.xml', 'libxl-xenpv.xml',
                     'empty.xml'):
            doc = _domcaps(_domcaps_path(name))
            with self.subTest(file=name):
                for virt_type in QEMU:
                    self.assertEqual(
                        {BIOS}, traits.firmware_traits([doc], virt_type))
                for virt_type in ('test', 'bhyve', 'xen'):
                    self.assertEqual(
                        set(), traits.firmware_traits([doc], virt_type))

    def test_test_driver_document_gives_nothing(self):
        doc = xml.DomainCapabilities(arch='i686', domain_type='test')
        self.assertEqual(set(), traits.firmware_traits([doc], 'test'))
        self.assertEqual(set(), traits.firmware_traits([], 'kvm'))

    def test_documents_are_combined(self):
        aarch64 = _domcaps(_domcaps_path('qemu_7.0.0-virt.aarch64.xml'))
        bhyve = _domcaps(_domcaps_path('bhyve_basic.x86_64.xml'))
        self.assertEqual({UEFI, BIOS},
                         traits.firmware_traits([aarch64, bhyve], 'kvm'))

    def test_uefi_trait_agrees_with_design(self):
        # A host advertises UEFI exactly when design accepts a UEFI image.
        image = support.image_meta(hw_firmware_type='uefi')
        for path in corpus.files('domaincaps'):
            doc = _domcaps(path)
            with self.subTest(file=os.path.basename(path)):
                try:
                    design_machine.firmware(doc, image)
                    designable = True
                except exception.InvalidImageProperty:
                    designable = False
                self.assertEqual(
                    designable,
                    UEFI in traits.firmware_traits([doc], 'kvm'))


class ArchTraitsTest(base.BaseTestCase):

    def test_every_capabilities_document(self):
        for path in corpus.files('capabilities'):
            root = _root(path)
            caps = _caps(root)
            virt_types = set(root.xpath('/capabilities/guest/arch/domain/'
                                        '@type')) | {'kvm', 'qemu', 'test'}
            for virt_type in sorted(virt_types):
                with self.subTest(file=os.path.basename(path),
                                  virt_type=virt_type):
                    expected = _names(HW_ARCH, [root.findtext(
                        'host/cpu/arch')])
                    expected |= _names(COMPUTE_ARCH, root.xpath(
                        GUEST_ARCHES, vt=virt_type))
                    self.assertEqual(expected,
                                     traits.arch_traits(caps, virt_type))

    def test_caps_test2(self):
        # An x86_64 host with i686 and x86_64 guests of types qemu and kvm;
        # os-traits has no COMPUTE_ARCH_I686.
        caps = _caps(_root(_caps_path('caps-test2.xml')))
        for virt_type in QEMU:
            self.assertEqual({'HW_ARCH_X86_64', 'COMPUTE_ARCH_X86_64'},
                             traits.arch_traits(caps, virt_type))
            self.assertEqual(['i686', 'x86_64'],
                             traits.guest_arches(caps, virt_type))
        # No guests of type test: the host arch only.
        self.assertEqual({'HW_ARCH_X86_64'}, traits.arch_traits(caps, 'test'))

    def test_caps_test(self):
        # The test driver's i686 host running i686 guests of type test.
        caps = _caps(_root(_caps_path('caps-test.xml')))
        self.assertEqual({'HW_ARCH_I686'}, traits.arch_traits(caps, 'test'))
        self.assertEqual(['i686'], traits.guest_arches(caps, 'test'))


def _cpu_traits(features):
    """Traits for libvirt CPU feature names: nova's table, else the name."""
    found = set()
    for name in features:
        names = nova_libvirt_utils.CPU_TRAITS_MAPPING.get(name)
        if names is None:
            found |= _names(CPU_X86, [name.replace('.', '_').replace(
                '-', '_')])
        else:
            found.update(names if isinstance(names, tuple) else [names])
    return found


class _FakeConnection(object):
    """Answers ``baselineCPU`` with a saved document or an error."""

    def __init__(self, expanded=None, error=None):
        self.expanded = expanded
        self.error = error
        self.calls = []

    def baselineCPU(self, cpus, flags):
        self.calls.append((cpus, flags))
        if self.error is not None:
            raise self.error
        return self.expanded


class CPUFeatureTraitsTest(base.BaseTestCase):

    def test_every_capabilities_document(self):
        with_traits = 0
        for path in corpus.files('capabilities'):
            root = _root(path)
            with self.subTest(file=os.path.basename(path)):
                listed = host_facts.listed_cpu_features(_caps(root))
                self.assertEqual(set(root.xpath(HOST_FEATURES)), listed)
                expected = _cpu_traits(root.xpath(HOST_FEATURES))
                self.assertEqual(expected,
                                 traits.cpu_feature_traits(listed))
                with_traits += bool(expected)
        self.assertGreater(with_traits, 0)

    def test_caps_test3_names_translate(self):
        # caps-test3 lists pclmuldq and pdpe1gb: the first is CLMUL.
        listed = host_facts.listed_cpu_features(
            _caps(_root(_caps_path('caps-test3.xml'))))
        result = traits.cpu_feature_traits(listed)
        self.assertIn('pclmuldq', listed)
        self.assertIn('HW_CPU_X86_CLMUL', result)
        self.assertIn('HW_CPU_X86_PDPE1GB', result)

    def test_disabled_features_are_not_reported(self):
        root = _root(_caps_path('caps-test2.xml'))
        cpu = root.find('host/cpu')
        etree.SubElement(cpu, 'feature', name='avx2')
        etree.SubElement(cpu, 'feature', name='avx', policy='disable')
        etree.SubElement(cpu, 'feature', name='sse2', policy='require')
        result = traits.cpu_feature_traits(
            host_facts.listed_cpu_features(_caps(root)))
        self.assertEqual(_cpu_traits(root.xpath(HOST_FEATURES)), result)
        self.assertIn('HW_CPU_X86_AVX2', result)
        self.assertIn('HW_CPU_X86_SSE2', result)
        self.assertNotIn('HW_CPU_X86_AVX', result)

    def test_libvirt_feature_names_map_like_nova(self):
        # libvirt's CPU map spells some features differently from
        # os-traits: sse4.1 is HW_CPU_X86_SSE41, aes HW_CPU_X86_AESNI,
        # pclmuldq HW_CPU_X86_CLMUL, and vmx gives HW_CPU_X86_VMX and
        # HW_CPU_X86_INTEL_VMX.
        result = traits.cpu_feature_traits(
            ['sse4.1', 'sse4.2', 'aes', 'pclmuldq', 'vmx', 'avx2'])
        self.assertEqual({'HW_CPU_X86_SSE41', 'HW_CPU_X86_SSE42',
                          'HW_CPU_X86_AESNI', 'HW_CPU_X86_CLMUL',
                          'HW_CPU_X86_VMX', 'HW_CPU_X86_INTEL_VMX',
                          'HW_CPU_X86_AVX2'}, result)


class HostCPUFeaturesTest(base.BaseTestCase):
    """The model's own features come from libvirt's baselineCPU."""

    def setUp(self):
        super().setUp()
        self.root = _root(_caps_path('caps-test2.xml'))
        self.caps = _caps(self.root)
        self.listed = set(self.root.xpath(HOST_FEATURES))

    def test_model_features_are_expanded(self):
        model = self.root.findtext('host/cpu/model')
        self.assertTrue(model)
        conn = _FakeConnection(
            "<cpu mode='custom' match='exact'><model>%s</model>"
            "<feature policy='require' name='sse4.2'/>"
            "<feature policy='disable' name='avx'/></cpu>" % model)
        features = host_facts.host_cpu_features(conn, self.caps)
        self.assertEqual(self.listed | {'sse4.2'}, features)
        (cpus, flags), = conn.calls
        self.assertEqual(libvirt.VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES,
                         flags)
        sent = etree.fromstring(cpus[0])
        self.assertEqual(model, sent.findtext('model'))
        self.assertEqual(self.listed, set(sent.xpath('feature/@name')))

    def test_driver_that_cannot_expand_gives_listed_features(self):
        conn = _FakeConnection(error=libvirt.libvirtError('not supported'))
        self.assertEqual(self.listed,
                         host_facts.host_cpu_features(conn, self.caps))

    def test_cpu_without_model_is_not_expanded(self):
        root = _root(_caps_path('caps-test.xml'))
        self.assertIsNone(root.find('host/cpu/model'))
        conn = _FakeConnection(error=AssertionError('must not be asked'))
        self.assertEqual(set(root.xpath(HOST_FEATURES)),
                         host_facts.host_cpu_features(conn, _caps(root)))
        self.assertEqual([], conn.calls)


class VIFModelTraitsTest(base.BaseTestCase):

    def test_qemu_virt_types_get_design_models(self):
        expected = _names(VIF_MODEL, peripherals.VIF_MODELS)
        self.assertNotEqual(set(), expected)
        for virt_type in QEMU:
            self.assertEqual(expected, traits.vif_model_traits(virt_type))

    def test_reported_exactly_the_models_design_accepts(self):
        # nova spells some models with '-' (spapr-vlan), traits with '_'.
        reported = traits.vif_model_traits('kvm')
        for trait in os_traits.get_traits(VIF_MODEL):
            name = trait[len(VIF_MODEL):].lower()
            accepted = False
            for model in {name, name.replace('_', '-')}:
                try:
                    image = support.image_meta(hw_vif_model=model)
                except ValueError:
                    continue   # not a model nova knows by this spelling
                try:
                    accepted |= model == peripherals.vif_model(image)
                except exception.InvalidImageProperty:
                    pass
            with self.subTest(trait=trait):
                self.assertEqual(accepted, trait in reported)

    def test_other_virt_types_get_none(self):
        for virt_type in ('test', 'xen', 'lxc'):
            self.assertEqual(set(), traits.vif_model_traits(virt_type))


class MachineTypesTest(base.BaseTestCase):

    def facts(self, root):
        recorder = Recorder()
        return request.HostFacts(_caps(root), recorder), recorder

    def test_machine_types_of_caps_test2(self):
        root = _add_q35(_root(_caps_path('caps-test2.xml')), 'kvm')
        caps = _caps(root)
        for arch in sorted(set(root.xpath('/capabilities/guest/arch/@name'))):
            for virt_type in QEMU:
                with self.subTest(arch=arch, virt_type=virt_type):
                    machines = _machines(root, arch, virt_type)
                    self.assertNotEqual([], machines)
                    expected = {m.text: m.get('canonical') or m.text
                                for m in machines}
                    self.assertEqual(expected, traits.machine_types(
                        caps, arch, virt_type))
        # The q35 alias was given to kvm's own x86_64 list only.
        self.assertEqual('pc-q35-1.2',
                         traits.machine_types(caps, 'x86_64', 'kvm')['q35'])
        self.assertNotIn('q35', traits.machine_types(caps, 'x86_64', 'qemu'))
        self.assertEqual({}, traits.machine_types(caps, 'x86_64', 'test'))

    def test_caps_test2_asks_aliases(self):
        root = _root(_caps_path('caps-test2.xml'))
        for virt_type in QEMU:
            with self.subTest(virt_type=virt_type):
                facts, recorder = self.facts(root)
                documents = traits.host_domain_capabilities(facts, virt_type)
                expected = _expected_asks(root, virt_type)
                # pc is both an alias and the default: asked once per arch.
                self.assertEqual(
                    [('i686', 'pc', virt_type), ('x86_64', 'pc', virt_type)],
                    sorted(expected))
                self.assertCountEqual(expected, recorder.asks)
                self.assertEqual(recorder.returned, documents)

    def test_q35_alias_is_asked_too(self):
        root = _add_q35(_root(_caps_path('caps-test2.xml')), 'kvm')
        for virt_type in QEMU:
            with self.subTest(virt_type=virt_type):
                facts, recorder = self.facts(root)
                documents = traits.host_domain_capabilities(facts, virt_type)
                self.assertCountEqual(_expected_asks(root, virt_type),
                                      recorder.asks)
                self.assertEqual(
                    virt_type == 'kvm',
                    ('x86_64', 'q35', virt_type) in recorder.asks)
                self.assertEqual(recorder.returned, documents)

    def test_no_alias_asks_without_machine(self):
        # Only versioned machines: libvirt picks its default machine.
        root = _root(_caps_path('caps-test2.xml'))
        for machine in root.xpath('//machine[@canonical or .="pc"]'):
            machine.getparent().remove(machine)
        self.assertNotEqual([], root.xpath('//machine'))
        facts, recorder = self.facts(root)
        traits.host_domain_capabilities(facts, 'kvm')
        self.assertEqual(_expected_asks(root, 'kvm'), recorder.asks)
        self.assertEqual([('i686', None, 'kvm'), ('x86_64', None, 'kvm')],
                         sorted(recorder.asks))

    def test_test_driver_host(self):
        root = _root(_caps_path('caps-test.xml'))
        facts, recorder = self.facts(root)
        documents = traits.host_domain_capabilities(facts, 'test')
        # Two guests (hvm, xen), one arch, no machines: asked once.
        self.assertEqual([('i686', None, 'test')], recorder.asks)
        self.assertEqual(_expected_asks(root, 'test'), recorder.asks)
        self.assertEqual(recorder.returned, documents)

    def test_no_guests_of_virt_type_asks_nothing(self):
        facts, recorder = self.facts(_root(_caps_path('caps-test2.xml')))
        self.assertEqual([], traits.host_domain_capabilities(facts, 'test'))
        self.assertEqual([], recorder.asks)


class HostTraitsTest(base.BaseTestCase):

    def test_test_driver_host_reports_arch_and_cpu_only(self):
        root = _root(_caps_path('caps-test.xml'))
        recorder = Recorder()
        facts = request.HostFacts(
            _caps(root), recorder,
            host_cpu_features=frozenset(root.xpath(HOST_FEATURES)))
        result = traits.host_traits(facts, 'test')
        expected = _names(HW_ARCH, [root.findtext('host/cpu/arch')])
        expected |= _names(COMPUTE_ARCH, root.xpath(GUEST_ARCHES, vt='test'))
        expected |= _cpu_traits(root.xpath(HOST_FEATURES))
        self.assertEqual(expected, result)
        self.assertIn('HW_ARCH_I686', result)
        for prefix in (STORAGE_BUS, GRAPHICS_MODEL, VIF_MODEL, FIRMWARE):
            self.assertEqual([], [t for t in result if t.startswith(prefix)])
        self.assertEqual([('i686', None, 'test')], recorder.asks)

    def test_qemu_host_reports_every_kind(self):
        root = _root(_caps_path('caps-test2.xml'))
        domcaps_path = _domcaps_path('qemu_8.0.0.x86_64.xml')
        domcaps_root = _root(domcaps_path)
        domcaps = _domcaps(domcaps_path)
        facts = request.HostFacts(
            _caps(root), lambda a, m, v: domcaps,
            host_cpu_features=frozenset(root.xpath(HOST_FEATURES)))
        expected = _names(HW_ARCH, [root.findtext('host/cpu/arch')])
        expected |= _names(COMPUTE_ARCH, root.xpath(GUEST_ARCHES, vt='kvm'))
        expected |= _cpu_traits(root.xpath(HOST_FEATURES))
        expected |= _names(STORAGE_BUS, domcaps_root.xpath(DISK_BUSES))
        expected |= _names(GRAPHICS_MODEL, domcaps_root.xpath(VIDEO_MODELS))
        expected |= _names(VIF_MODEL, peripherals.VIF_MODELS)
        self.assertIn('efi', domcaps_root.xpath(FIRMWARES))
        expected |= {UEFI, BIOS}
        result = traits.host_traits(facts, 'kvm')
        self.assertEqual(expected, result)
        for prefix in OWNED:
            self.assertNotEqual([], [t for t in result
                                     if t.startswith(prefix)], prefix)


class ReconcileTest(base.BaseTestCase):

    def test_owned_prefixes(self):
        self.assertCountEqual(OWNED, traits.OWNED_PREFIXES)

    def test_stale_owned_traits_go_others_stay(self):
        current = frozenset([
            'CUSTOM_FOO', 'COMPUTE_STATUS_DISABLED',
            'COMPUTE_IMAGE_TYPE_QCOW2', 'COMPUTE_NODE',
            'HW_CPU_HYPERTHREADING', 'COMPUTE_SECURITY_UEFI_SECURE_BOOT',
            # stale, in the driver's namespaces
            'COMPUTE_STORAGE_BUS_IDE', 'COMPUTE_GRAPHICS_MODEL_QXL',
            'COMPUTE_NET_VIF_MODEL_E1000', 'COMPUTE_FIRMWARE_BIOS',
            'HW_ARCH_I686', 'COMPUTE_ARCH_AARCH64', 'HW_CPU_X86_AVX',
            # still reported
            'COMPUTE_STORAGE_BUS_VIRTIO'])
        snapshot = set(current)
        reported = {'COMPUTE_STORAGE_BUS_VIRTIO', 'COMPUTE_STORAGE_BUS_SCSI',
                    'HW_ARCH_X86_64', 'HW_CPU_X86_VMX'}
        result = traits.reconcile(current, reported)
        self.assertEqual(
            {'CUSTOM_FOO', 'COMPUTE_STATUS_DISABLED',
             'COMPUTE_IMAGE_TYPE_QCOW2', 'COMPUTE_NODE',
             'HW_CPU_HYPERTHREADING', 'COMPUTE_SECURITY_UEFI_SECURE_BOOT',
             'COMPUTE_STORAGE_BUS_VIRTIO', 'COMPUTE_STORAGE_BUS_SCSI',
             'HW_ARCH_X86_64', 'HW_CPU_X86_VMX'}, result)
        self.assertEqual(snapshot, current)

    def test_every_os_trait(self):
        everything = set(os_traits.get_traits()) | {'CUSTOM_FOO'}
        kept = {t for t in everything
                if not any(t.startswith(prefix) for prefix in OWNED)}
        self.assertEqual(kept, traits.reconcile(everything, set()))
        self.assertEqual(kept | {'HW_CPU_X86_SSE2'},
                         traits.reconcile(list(everything),
                                          ['HW_CPU_X86_SSE2']))
        self.assertIn('COMPUTE_STATUS_DISABLED', kept)
        self.assertIn('HW_CPU_HYPERTHREADING', kept)

    def test_empty_provider(self):
        reported = {'COMPUTE_FIRMWARE_UEFI', 'CUSTOM_BAR'}
        self.assertEqual(reported, traits.reconcile(set(), reported))
