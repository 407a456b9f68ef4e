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

"""The scheduler places images by what each PyVirtDriver host reports.

nova's API, scheduler (ImagePropertiesFilter on) and placement, and two
compute services of this driver whose libvirt capabilities differ:

=============  ===============================  ============================
               ``qemu-host``                    ``test-host``
=============  ===============================  ============================
libvirt        the embedded QEMU root           libvirt's test driver, on a
                                                node file of its own
virt_type      ``qemu``                         ``test``
guests         x86_64 and i686, domain types    i686 only, domain type
               qemu (and kvm), OS type hvm      test, OS types hvm and xen
version        QEMU's (7002000 for 7.2.0)       the test driver's (2)
=============  ===============================  ============================

Two libvirt test-driver node files cannot differ in what they run: the test
driver reports the same i686 guests whatever the node file says, so one
host is a real embedded QEMU and the other the test driver, whose guests
are only simulated.

Each image carries one of ``hw_architecture``, ``img_hv_type``,
``hw_vm_mode`` (or a version requirement with an architecture both hosts
run) and must land on the one host that advertises it; an image neither
host can run ends in ERROR with "No valid host"; an image with none of
these properties can be placed on either host. With nova's
``image_metadata_prefilter``, placement's traits (disk buses libvirt lists
for each host) narrow the choice the same way.
"""

import os

import libvirt
from lxml import etree

from nova import context as nova_context
from nova import objects

from nova_pyvirt.report import traits
from tests.fixtures import nova_harness
from tests.functional.nova import base
from tests.functional.nova import two_computes

QEMU_HOST = 'qemu-host'
TEST_HOST = 'test-host'
ADDRESSES = {QEMU_HOST: '127.0.0.2', TEST_HOST: '127.0.0.3'}
VIRT_TYPES = {QEMU_HOST: 'qemu', TEST_HOST: 'test'}

#: A test-driver node with no domains, sized like a small host.
_NODE_XML = b'''<node>
  <cpu>
    <mhz>2000</mhz>
    <model>i686</model>
    <nodes>1</nodes>
    <sockets>1</sockets>
    <cores>4</cores>
    <threads>1</threads>
    <active>4</active>
  </cpu>
  <memory>4194304</memory>
</node>
'''

#: Image name -> the properties that decide where it may run.
IMAGES = {
    'x86_64': {'hw_architecture': 'x86_64'},
    'hv-qemu': {'img_hv_type': 'qemu'},
    'i686-qemu-6.2-or-later': {'hw_architecture': 'i686',
                               'img_hv_requested_version': '>=6.2'},
    'xen': {'hw_vm_mode': 'xen'},
    'hv-test': {'img_hv_type': 'test'},
    'i686-qemu-before-6.2': {'hw_architecture': 'i686',
                             'img_hv_requested_version': '<6.2'},
    'aarch64': {'hw_architecture': 'aarch64'},
    'xen-on-qemu': {'hw_vm_mode': 'xen', 'img_hv_type': 'qemu'},
    'plain': {},
    'virtio-disk': {'hw_disk_bus': 'virtio'},
}


class ImagePlacementTestBase(base.PyVirtTestBase):
    """Two hosts of this driver with different libvirt capabilities."""

    ADMIN_API = True
    COMPUTE_HOST = QEMU_HOST

    def setUp(self):
        super().setUp()
        directory = nova_harness.guest_image_dir()
        self.image_ids = {
            name: nova_harness.register_root_image(
                self.glance, directory, self.images, 'pyvirt-' + name,
                properties)
            for name, properties in IMAGES.items()}
        self.flavor_id = self._create_guest_flavor()

    def _setup_scheduler_service(self):
        self.flags(enabled_filters=['ComputeFilter', 'ImagePropertiesFilter'],
                   group='filter_scheduler')
        return super()._setup_scheduler_service()

    def _setup_compute_service(self):
        node_file = os.path.join(self.tmp, 'test-node.xml')
        with open(node_file, 'wb') as handle:
            handle.write(_NODE_XML)
        self.uris = {QEMU_HOST: self.conn.getURI(),
                     TEST_HOST: 'test://' + node_file}
        self.useFixture(two_computes.PerHostIdentity(
            {uri: host for host, uri in self.uris.items()}))
        self._record_reported_inventory()
        first = None
        for host in (QEMU_HOST, TEST_HOST):
            path = os.path.join(self.tmp, 'instances-' + host)
            os.makedirs(path)
            self.flags(my_ip=ADDRESSES[host], instances_path=path)
            self.flags(virt_type=VIRT_TYPES[host],
                       connection_uri=self.uris[host], group='pyvirt')
            compute = self._start_pyvirt_compute(host)
            first = first or compute
        return first

    # -- helpers -------------------------------------------------------------

    def _post(self, image, host=None):
        body = self._build_server(
            name='pyvirt-' + image, image_uuid=self.image_ids[image],
            flavor_id=self.flavor_id, networks='none', host=host)
        return self.api.post_server({'server': body})

    def _boot(self, image, host=None):
        """Boot ``image`` and return the ACTIVE server."""
        return self._wait_for_status(self._post(image, host), 'ACTIVE')

    def _boot_expecting_no_host(self, image, host=None):
        server = self._wait_for_state_change(self._post(image, host),
                                             'ERROR', max_retries=120)
        self.assertIn('No valid host', server['fault']['message'])
        self.assertIsNone(server['OS-EXT-SRV-ATTR:host'])
        return server

    def _delete(self, server):
        self._delete_server(server)

    def _domain_on(self, host, server):
        conn = self.computes[host].driver._host.get_connection()
        return etree.fromstring(
            conn.lookupByUUIDString(server['id']).XMLDesc(0))

    def assertLandsOn(self, host, image):
        server = self._boot(image)
        self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'],
                         'image %s (%s)' % (image, IMAGES[image]))
        domain = self._domain_on(host, server)
        self.assertEqual(VIRT_TYPES[host], domain.get('type'))
        other = QEMU_HOST if host == TEST_HOST else TEST_HOST
        conn = self.computes[other].driver._host.get_connection()
        self.assertRaises(libvirt.libvirtError, conn.lookupByUUIDString,
                          server['id'])
        return server, domain

    def _provider_traits(self, host):
        uuid = self._get_provider_uuid_by_host(host)
        return set(self.placement.get(
            '/resource_providers/%s/traits' % uuid,
            version='1.6').body['traits'])


class ImagePropertiesFilterTest(ImagePlacementTestBase):

    def test_hosts_advertise_what_their_libvirt_runs(self):
        """What the scheduler reads for each host, against libvirt's word.

        The compute node records the scheduler's host states are built
        from, compared with the capabilities and version each libvirt
        reports, read here straight from the connection.
        """
        ctx = nova_context.get_admin_context()
        for host in (QEMU_HOST, TEST_HOST):
            conn = self.computes[host].driver._host.get_connection()
            caps = etree.fromstring(conn.getCapabilities())
            expected = {(guest.find('arch').get('name'), domain.get('type'),
                         guest.findtext('os_type'))
                        for guest in caps.findall('guest')
                        for domain in guest.findall('arch/domain')}
            node, = objects.ComputeNodeList.get_all_by_host(ctx, host)
            self.assertEqual(expected, {
                (spec.arch, spec.hv_type, spec.vm_mode)
                for spec in node.supported_hv_specs}, host)
            self.assertEqual(conn.getVersion(), node.hypervisor_version)
            self.assertEqual(VIRT_TYPES[host], node.hypervisor_type)

    def test_image_lands_on_the_only_host_that_runs_it(self):
        for image in ('x86_64', 'hv-qemu', 'i686-qemu-6.2-or-later'):
            with self.subTest(image=image):
                server, domain = self.assertLandsOn(QEMU_HOST, image)
                self._delete(server)
        server, domain = self.assertLandsOn(TEST_HOST, 'xen')
        self.assertEqual('xen', domain.findtext('os/type'))
        self._delete(server)
        for image in ('hv-test', 'i686-qemu-before-6.2'):
            with self.subTest(image=image):
                server, domain = self.assertLandsOn(TEST_HOST, image)
                self.assertEqual('hvm', domain.findtext('os/type'))
                self._delete(server)

    def test_image_no_host_runs_ends_in_error(self):
        for image in ('aarch64', 'xen-on-qemu'):
            with self.subTest(image=image):
                server = self._boot_expecting_no_host(image)
                self._delete(server)

    def test_image_without_such_properties_fits_either_host(self):
        for host in (QEMU_HOST, TEST_HOST):
            with self.subTest(host=host):
                server = self._boot('plain', host=host)
                self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'])
                self._delete(server)
        # Asking for a host does not bypass the filter.
        server = self._boot_expecting_no_host('xen', host=QEMU_HOST)
        self._delete(server)


class ImageMetadataPrefilterTest(ImagePlacementTestBase):
    """Placement's traits narrow the hosts before the filters run."""

    def setUp(self):
        super().setUp()
        self.flags(image_metadata_prefilter=True, group='scheduler')

    def test_providers_carry_the_traits_the_driver_derives(self):
        for host in (QEMU_HOST, TEST_HOST):
            driver = self.computes[host].driver
            expected = traits.host_traits(driver._host.host_facts(),
                                          VIRT_TYPES[host])
            owned = {t for t in self._provider_traits(host)
                     if t.startswith(traits.OWNED_PREFIXES)}
            self.assertEqual(expected, owned, host)
        qemu_traits = self._provider_traits(QEMU_HOST)
        self.assertIn('COMPUTE_STORAGE_BUS_VIRTIO', qemu_traits)
        self.assertIn('HW_ARCH_X86_64', qemu_traits)
        test_traits = self._provider_traits(TEST_HOST)
        self.assertIn('HW_ARCH_I686', test_traits)
        # libvirt's test driver describes no devices.
        self.assertEqual(set(), {t for t in test_traits if t.startswith(
            traits.STORAGE_BUS_PREFIX)})

    def test_disk_bus_trait_selects_the_host(self):
        server, _domain = self.assertLandsOn(QEMU_HOST, 'virtio-disk')
        self._delete(server)
        server = self._boot_expecting_no_host('virtio-disk', host=TEST_HOST)
        self._delete(server)
