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

"""Every input of guest design is refused by validation or defined by libvirt.

hypothesis draws flavors, extra specs, image properties, options, the
instance's strings, volumes and ports (:mod:`guest_inputs`), hostile
strings included. The oracle is real libvirt, this host's embedded QEMU
driver: each case must either raise the driver's validation error
(:class:`~nova_pyvirt.exception.InvalidGuestInput`, one line naming the
input and what is accepted) or give a document that libvirt's
``domain.rng`` validates, that ``defineXML`` accepts, and whose definition
read back still holds every element and attribute design wrote. Any other
exception fails the test.

The number of cases is the hypothesis profile's (:mod:`hypothesis_profiles`;
``tox -e fuzz`` runs the nightly one). Each failure hypothesis has found is
kept below as an explicit example, replayed by every run.
"""

import collections
import logging
import re
import time

import fixtures
import hypothesis
import libvirt
from lxml import etree
from oslotest import base
from testtools import content

from nova_pyvirt.design import domain_builder
from nova_pyvirt import exception
from nova_pyvirt.hypervisor import host_facts
from tests import design_support as support
from tests.fixtures import embedded
from tests.functional.design import guest_inputs
from tests import hypothesis_profiles
from tests import xml_compare

DOMAIN_RNG = '/usr/share/libvirt/schemas/domain.rng'
DEFINED, REFUSED = 'defined by libvirt', 'refused by validation'
# A run that defines too few documents tests validation, not design: at
# least this share of the cases must reach libvirt.
MIN_DEFINED_SHARE = 0.1
ACCEPTED_WORDS = re.compile('accept|support')


def _example(**changes):
    """A case for ``@example``: a plain valid one, with ``changes``."""
    case = {
        'virt_type': 'qemu',
        'flavor': {'vcpus': 1, 'memory_mb': 64, 'root_gb': 1,
                   'ephemeral_gb': 0, 'swap': 0, 'name': 'm1.tiny'},
        'extra_specs': {}, 'image': {}, 'options': {},
        'instance': {'display_name': 'vm', 'user_id': 'u',
                     'project_id': 'p', 'os_type': None},
        'volumes': [], 'ports': [],
        'local': {'config_drive': False, 'kernel': False, 'ramdisk': False,
                  'boot_from_volume': False},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(case.get(key), dict):
            case[key] = dict(case[key], **value)
        else:
            case[key] = value
    return case


UUID_A = '680149fa-047e-38e1-262f-893e66c46adf'
UUID_B = '09fdf197-2a0c-d966-486b-09bb23aade78'
TAP = 'tap' + UUID_A[:11]


def _port(**changes):
    port = {'type': 'tap', 'id': UUID_A, 'address': 'fa:16:3e:00:00:01',
            'hybrid': False, 'bridge': 'br-int', 'devname': TAP,
            'mtu': None}
    port.update(changes)
    return port


def _volume(**changes):
    volume = {'volume_id': UUID_B, 'bus': None, 'device': 'disk',
              'boot_index': None, 'mount_device': None, 'qos': {}}
    volume.update(changes)
    return volume


#: Failures hypothesis found, as the cases it shrank them to: documents
#: libvirt refused or changed, exceptions other than validation's, and
#: refusals that did not say what is accepted.
FOUND = [
    # The three: <vcpu>0, negative <memory>, more vCPUs than the
    # machine type has.
    _example(flavor={'vcpus': 0}),
    _example(flavor={'memory_mb': -5}),
    _example(flavor={'vcpus': 99999}),
    # More than 255 vCPUs on q35 (whose maximum is 288) with a topology:
    # libvirt wants an IOMMU with extended interrupt mode for them.
    _example(flavor={'vcpus': 256, 'root_gb': 17, 'ephemeral_gb': 12,
                     'memory_mb': 3483},
             extra_specs={'hw:boot_menu': 'true', 'hw:cpu_cores': '1'},
             options={'pyvirt.hw_machine_type': ['x86_64=q35']},
             instance={'user_id': '<&>"\'', 'project_id': '<&>"\''}),
    # More memory than libvirt's <memory> holds.
    _example(flavor={'memory_mb': 2 ** 43}),
    # A control character in the owner: lxml cannot write it.
    _example(instance={'display_name': '\x00'}),
    _example(instance={'user_id': '\x1b[31m'}),
    # Domain names libvirt refuses: '/', a line break, a blank, too long.
    _example(options={'DEFAULT.instance_name_template': 'a/b-%08x'}),
    _example(options={'DEFAULT.instance_name_template': 'a\nb-%08x'}),
    _example(options={'DEFAULT.instance_name_template': '%(display_name)s'},
             instance={'display_name': ' '}),
    _example(options={'DEFAULT.instance_name_template': 'x' * 256 + '%08x'}),
    # A carriage return in text libvirt writes itself comes back a newline.
    _example(options={'DEFAULT.instance_name_template': 'a\rb-%08x'}),
    _example(image={'os_command_line': 'quiet\r'},
             local={'kernel': True}),
    # A '$' is oslo.config's: the harness escapes it as a file must.
    _example(options={'DEFAULT.instance_name_template': '$f-%08x'}),
    # Paths libvirt's schema refuses, and a tab libvirt reads back as a
    # space.
    _example(options={'DEFAULT.instances_path': 'relative/path'}),
    _example(options={'DEFAULT.instances_path': '/srv/a\nb'}),
    _example(options={'DEFAULT.instances_path': '/srv/a\tb'}),
    # cpu_mode custom with no model: design could pick none.
    _example(options={'pyvirt.cpu_mode': 'custom'}),
    # Extra CPU flags with no CPU model to add them to.
    _example(options={'pyvirt.cpu_mode': 'none',
                      'pyvirt.cpu_model_extra_flags': ['3dnow']}),
    # host-passthrough under TCG.
    _example(options={'pyvirt.cpu_mode': 'host-passthrough'}),
    # A keymap QEMU has no file for, and a stats period over a C int.
    _example(options={'pyvirt.vnc_keymap': '<'}),
    _example(options={'pyvirt.mem_stats_period_seconds': 2 ** 31}),
    # Machine types without a PCI bus for the virtio devices.
    _example(image={'hw_machine_type': 'isapc'}),
    _example(options={'pyvirt.hw_machine_type': ['x86_64=microvm']}),
    # libvirt drops cache='default' from the definition.
    _example(options={'pyvirt.disk_cachemode': 'default'}),
    # The guest agent's channel: libvirt drops a source without a path.
    _example(image={'hw_qemu_guest_agent': 'yes'}),
    # Topology properties below 1, and topologies nova cannot build.
    _example(image={'hw_cpu_max_cores': 0}),
    _example(flavor={'vcpus': 5},
             extra_specs={'hw:cpu_max_sockets': '1', 'hw:cpu_max_cores': '2',
                          'hw:cpu_max_threads': '2'}),
    # Extra specs that change the guest but were ignored.
    _example(extra_specs={'hw:cpu_policy': 'dedicated'}),
    _example(extra_specs={'hw:mem_page_size': 'large'}),
    _example(extra_specs={'hw:numa_nodes': '2'}),
    _example(extra_specs={'hw:cpu_socket': '2'}),
    # Disk limits: 0 (no limit) written and dropped; a total with a read
    # limit, which QEMU refuses; more than QEMU takes.
    _example(extra_specs={'quota:disk_write_iops_sec': '0'}),
    _example(extra_specs={'quota:disk_total_bytes_sec': '1',
                          'quota:disk_read_bytes_sec': '2'}),
    _example(extra_specs={'quota:disk_read_iops_sec': str(10 ** 15 + 1)}),
    _example(volumes=[_volume(qos={'read_bytes_sec_max': '0'})]),
    # RNG rates: 0 bytes is no limit; a 0 ms period is refused.
    _example(image={'hw_rng_model': 'virtio'},
             extra_specs={'hw_rng:rate_bytes': '0'}),
    _example(image={'hw_rng_model': 'virtio'},
             extra_specs={'hw_rng:rate_bytes': '1024',
                          'hw_rng:rate_period': '0'}),
    # Flavor and image disagree on multiqueue: nova's helper failed on the
    # image's missing name.
    _example(flavor={'vcpus': 3}, image={'hw_vif_multiqueue_enabled': True},
             extra_specs={'hw:vif_multiqueue_enabled': 'off'}),
    # Volumes: a serial libvirt refuses, a floppy bus, a CD-ROM left on
    # virtio, a mount device that is no target name, a fifth IDE device,
    # two volumes at one boot place.
    _example(volumes=[_volume(volume_id='\r')]),
    _example(volumes=[_volume(volume_id='a,b')]),
    _example(volumes=[_volume(bus='fdc', device='cdrom')]),
    _example(volumes=[_volume(device='cdrom')]),
    _example(volumes=[_volume(mount_device='/dev/vd<x')]),
    _example(volumes=[_volume(device='cdrom', bus='ide',
                              mount_device='/dev/hdq')]),
    _example(volumes=[_volume(boot_index=1),
                      _volume(volume_id=UUID_A, boot_index=1)]),
    # Ports: an upper-case MAC (libvirt lowers it), a multicast MAC, tap
    # names libvirt reserves or Linux cannot have, an MTU out of range, a
    # port id too long to show in full.
    _example(ports=[_port(address='FA:16:3E:12:34:56')]),
    _example(ports=[_port(address='01:00:5e:00:00:01')]),
    _example(ports=[_port(devname='vnet0')]),
    _example(ports=[_port(devname='tap 1')]),
    _example(ports=[_port(mtu=65536)]),
    _example(ports=[_port(type='vhostuser', id='0' * 256)]),
]


class DesignPropertyTest(base.BaseTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # libvirt prints each error it raises unless told otherwise; a
        # refused document fails the test with libvirt's message anyway.
        libvirt.registerErrorHandler(lambda context, error: None, None)
        cls.conn = embedded.get()
        cls.host = host_facts.from_connection(cls.conn)
        cls.rng = etree.RelaxNG(file=DOMAIN_RNG)

    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(support.ConfFixture()).conf
        # Thousands of designs: keep nova's topology debugging and the
        # keymap warnings out of the captured log.
        self.useFixture(fixtures.FakeLogger(level=logging.ERROR))

    def _override(self, overrides):
        done = []
        try:
            for group, name, value in overrides:
                self.conf.set_override(name, value, group=group)
                done.append((group, name))
        except Exception:
            self._clear(done)
            raise
        return done

    def _clear(self, done):
        for group, name in done:
            self.conf.clear_override(name, group=group)

    def check_refusal(self, exc, case):
        message = str(exc)
        where = '%s\ncase: %r' % (message, case)
        self.assertNotIn('\n', message, where)
        self.assertRegex(message, ACCEPTED_WORDS, where)
        for key in ('name', 'option', 'port_id'):
            if key in exc.kwargs:
                self.assertIn(str(exception.shown(exc.kwargs[key])),
                              message, where)

    def check_defined(self, design, case):
        text = design.domain.to_xml()
        where = 'case: %r\n%s' % (case, text)
        doc = etree.fromstring(text.encode())
        if not self.rng.validate(doc):
            self.fail('domain.rng refuses the document: %s\n%s' % (
                self.rng.error_log, where))
        try:
            back = xml_compare.defined_back(self.conn, text)
        except libvirt.libvirtError as exc:
            self.fail('libvirt refuses the document: %s\n%s' % (exc, where))
        self.assertEqual([], xml_compare.dropped(design.domain.element, back),
                         'libvirt dropped values\n' + where)

    def check_case(self, case):
        done = self._override(guest_inputs.option_overrides(case))
        try:
            request = guest_inputs.build(case,
                                         self.conf.instances_path)
            try:
                design = domain_builder.design_guest(request, self.conf,
                                                     self.host)
            except exception.InvalidGuestInput as exc:
                self.check_refusal(exc, case)
                return REFUSED
            self.check_defined(design, case)
            return DEFINED
        finally:
            self._clear(done)

    def test_every_input_is_refused_or_defined(self):
        outcomes = collections.Counter()
        started = time.monotonic()

        @hypothesis.given(case=guest_inputs.cases(self.host))
        def check(case):
            outcomes[self.check_case(case)] += 1

        for case in reversed(FOUND):
            check = hypothesis.example(case=case)(check)
        check()

        elapsed = time.monotonic() - started
        total = sum(outcomes.values())
        summary = '%d cases in %.0f s (profile %s): %d %s, %d %s' % (
            total, elapsed, hypothesis_profiles.active_profile(),
            outcomes[DEFINED], DEFINED, outcomes[REFUSED], REFUSED)
        self.addDetail('statistics', content.text_content(summary))
        self.assertGreaterEqual(total, hypothesis_profiles.max_examples())
        self.assertGreaterEqual(outcomes[DEFINED], total * MIN_DEFINED_SHARE,
                                summary)
