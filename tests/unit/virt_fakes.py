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

"""Fakes at the libvirt and volume boundary, for the rollback tests.

The real-QEMU tiers cover the paths that work; these doubles make the
paths that fail happen on demand: a domain that will not define or start,
a volume that will not connect, an image service that will not take an
upload.  Each records what was done to it, so a test can say what was
undone and what was kept.
"""

import contextlib
import os
import types

import fixtures
import libvirt
from oslotest import base

from nova import context as nova_context
from nova import exception
from nova import objects
from nova.virt import virtapi

from nova_pyvirt import driver as pyvirt_driver
from nova_pyvirt.migration import live as live_migration
from nova_pyvirt.network import hotplug
from nova_pyvirt import volume
from nova_pyvirt.volume import attachment
from nova_pyvirt.volume import iscsi  # noqa: F401  (registers its driver)
from nova_pyvirt.volume import nfs  # noqa: F401  (registers its driver)
from nova_pyvirt.xml import devices
from tests import design_support

DOMAIN_XML = """<domain type='qemu'>
  <name>instance-%(id)08x</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='KiB'>131072</memory>
  <os><type arch='x86_64' machine='pc-q35-8.0'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/srv/i/disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>%(extra)s
  </devices>
</domain>"""

# The volumes of DriverFixture.volume_booted().
VOL_BOOT = 'a0000000-0000-4000-8000-000000000001'
VOL_DATA = 'a0000000-0000-4000-8000-000000000002'


def libvirt_error(message, code=libvirt.VIR_ERR_INTERNAL_ERROR):
    """A ``libvirtError`` as libvirt raises it, with code and message."""
    exc = libvirt.libvirtError(message)
    exc.err = (code, libvirt.VIR_FROM_QEMU, message, libvirt.VIR_ERR_ERROR,
               None, None, None, 0, 0)
    return exc


class FakeDomain(object):
    """A ``virDomain``: state, start/stop/undefine, devices, in memory.

    :param start_error: raised by ``createWithFlags``; with ``started``
        QEMU is left running (libvirt failed after it started it).
    """

    def __init__(self, uuid, xml_text='', start_error=None, started=False,
                 active=False):
        self.uuid = uuid
        self.xml_text = xml_text
        self.start_error = start_error
        self.started = started
        self.active = active
        self.paused = False
        self.defined = True
        self.calls = []
        self.attach_error = None
        self.detach_error = None
        self.guest_keeps_devices = False   # a guest that ignores detach
        self.devices = []          # device XML attached after definition

    def UUIDString(self):
        return self.uuid

    def name(self):
        return 'instance-%s' % self.uuid

    def ID(self):
        return 42 if self.active else -1

    def isActive(self):
        return int(self.active)

    def state(self):
        if not self.active:
            return libvirt.VIR_DOMAIN_SHUTOFF, 0
        if self.paused:
            return libvirt.VIR_DOMAIN_PAUSED, 0
        return libvirt.VIR_DOMAIN_RUNNING, 0

    def XMLDesc(self, flags=0):
        extra = ''.join('\n    ' + d for d in self.devices)
        return DOMAIN_XML % {'id': 1, 'uuid': self.uuid, 'extra': extra}

    def createWithFlags(self, flags):
        self.calls.append('createWithFlags')
        self.start_flags = flags
        if self.start_error is not None:
            self.active = self.started
            raise self.start_error
        self.active = True
        self.paused = bool(flags & libvirt.VIR_DOMAIN_START_PAUSED)

    def destroy(self):
        self.calls.append('destroy')
        self.active = False

    def undefineFlags(self, flags):
        self.calls.append('undefineFlags')
        self.defined = False

    def suspend(self):
        self.calls.append('suspend')
        self.paused = True

    def resume(self):
        self.calls.append('resume')
        self.paused = False

    def attachDeviceFlags(self, xml_text, flags):
        self.calls.append('attachDeviceFlags')
        if self.attach_error is not None:
            raise self.attach_error
        self.attach_flags = flags
        self.devices.append(xml_text)

    def detachDeviceFlags(self, xml_text, flags):
        self.calls.append('detachDeviceFlags')
        self.detach_flags = flags
        if self.detach_error is not None:
            raise self.detach_error
        if self.guest_keeps_devices or '<interface' not in xml_text:
            return
        # An interface goes by its MAC, as libvirt matches it.
        mac = xml_text.split("<mac address=")[1][1:18]
        self.devices = [d for d in self.devices if mac not in d]

    def blockResize(self, target_dev, size, flags):
        self.calls.append(('blockResize', target_dev, size, flags))

    # -- live migration: migrate_outcome is what migrateToURI3 does ------

    migrate_error = None      # raised by migrateToURI3 (the guest stays)
    migrate_wait = None       # a threading.Event migrateToURI3 waits for
    job = None                # what jobStats returns while migrating
    completed = None          # the job-completed event's statistics

    def isPersistent(self):
        return int(self.defined)

    def migrateToURI3(self, uri, params, flags):
        self.calls.append(('migrateToURI3', uri, params, flags))
        self.job = {'type': libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
                    'memory_total': 128 << 20, 'memory_processed': 1 << 20,
                    'memory_remaining': 127 << 20, 'disk_total': 0}
        if self.migrate_wait is not None:
            self.migrate_wait.wait(10)
        self.job = None
        if self.aborted:
            raise libvirt_error('operation aborted: migration job: '
                                'canceled by client',
                                libvirt.VIR_ERR_OPERATION_ABORTED)
        if self.migrate_error is not None:
            raise self.migrate_error
        # libvirt's job-completed event carries the final counters.
        self.completed = {'type': libvirt.VIR_DOMAIN_JOB_COMPLETED,
                          'memory_total': 128 << 20,
                          'memory_processed': 129 << 20,
                          'memory_remaining': 0, 'disk_total': 0}
        # Moved: gone from this host (VIR_MIGRATE_UNDEFINE_SOURCE).
        self.active = False
        self.defined = False

    aborted = False

    def jobStats(self, flags=0):
        return dict(self.job) if self.job else {
            'type': libvirt.VIR_DOMAIN_JOB_NONE}

    def abortJob(self):
        self.calls.append('abortJob')
        self.aborted = True
        if self.migrate_wait is not None:
            self.migrate_wait.set()

    def migrateStartPostCopy(self, flags=0):
        self.calls.append('migrateStartPostCopy')
        if self.migrate_wait is not None:
            self.migrate_wait.set()

    def migrateSetMaxDowntime(self, downtime, flags=0):
        self.calls.append(('migrateSetMaxDowntime', downtime))


class FakeHost(object):
    """The driver's :class:`Host`: defines :class:`FakeDomain` objects.

    ``define_error`` makes the next definitions fail; ``start_error`` and
    ``started`` are given to the domains defined from now on.
    """

    def __init__(self):
        self.domains = {}
        self.defined = []          # every domain ever defined, in order
        self.define_error = None
        self.start_error = None
        self.started = False

    def define_domain(self, xml_text):
        if self.define_error is not None:
            raise self.define_error
        uuid = xml_text.split('<uuid>')[1].split('</uuid>')[0] \
            if '<uuid>' in xml_text else design_support.UUID
        domain = FakeDomain(uuid, xml_text, self.start_error, self.started)
        self.domains[uuid] = domain
        self.defined.append(domain)
        return domain

    def add(self, uuid, **kw):
        domain = FakeDomain(uuid, **kw)
        self.domains[uuid] = domain
        return domain

    def get_guest(self, instance):
        return self.get_domain_by_uuid(instance.uuid)

    def get_domain_by_uuid(self, uuid):
        domain = self.domains.get(uuid)
        if domain is None or not domain.defined:
            raise exception.InstanceNotFound(instance_id=uuid)
        return domain

    def list_domains(self):
        return [d for d in self.domains.values() if d.defined]

    def domain_uuids(self):
        return [d.uuid for d in self.list_domains()]

    def domain_names(self):
        return [d.name() for d in self.list_domains()]

    def domain_states(self):
        return {d.uuid: d.state() for d in self.list_domains()}

    def completed_job(self, uuid, timeout=0):
        domain = self.domains.get(uuid)
        stats, domain.completed = domain.completed, None
        return stats or {}

    def recent_state(self, uuid, max_age):
        return None

    def forget_state(self, uuid):
        pass

    def host_facts(self):
        return 'host facts'

    def get_domain_capabilities(self, arch, machine, virt_type):
        return None

    def device_removed(self, uuid, alias):
        return True


class VolumeBackend(object):
    """Volume drivers of type ``fake`` that record and fail on demand.

    ``journal`` lists ``('connect'|'disconnect', volume_id)`` in order;
    ``connected`` is what is connected now.  ``fail[(step, volume_id)]``
    is raised by that step (``connect``, ``disk_source``, ``disconnect``).
    """

    TYPE = 'fake'

    def __init__(self):
        self.journal = []
        self.connected = set()
        self.fail = {}
        backend = self

        class FakeVolumeDriver(volume.VolumeDriver):
            def connect(self, connection_info, instance):
                backend._step('connect', connection_info)
                backend.connected.add(connection_info['serial'])

            def disk_source(self, connection_info, instance):
                vol_id = backend._step('disk_source', connection_info)
                return devices.Disk(type='block', driver_type='raw',
                                    source_dev='/dev/fake/%s' % vol_id)

            def disconnect(self, connection_info, instance):
                backend._step('disconnect', connection_info)
                backend.connected.discard(connection_info['serial'])

            def extend(self, connection_info, instance, requested_size):
                return requested_size

        self.driver_class = FakeVolumeDriver

    def _step(self, step, connection_info):
        vol_id = connection_info['serial']
        if step != 'disk_source':
            self.journal.append((step, vol_id))
        error = self.fail.get((step, vol_id))
        if error is not None:
            raise error
        return vol_id

    def registered(self):
        """A fixture registering the ``fake`` volume type for a test."""
        return fixtures.MockPatchObject(
            volume, '_DRIVERS', dict(volume._DRIVERS,
                                     **{self.TYPE: self.driver_class}))

    @classmethod
    def connection_info(cls, vol_id):
        return {'driver_volume_type': cls.TYPE, 'serial': vol_id,
                'data': {}}

    @classmethod
    def block_device_info(cls, *vol_ids, boot=True):
        """nova's block device info with volumes ``vol_ids`` (vda first)."""
        mapping = []
        for index, vol_id in enumerate(vol_ids):
            mapping.append({
                'connection_info': cls.connection_info(vol_id),
                'mount_device': '/dev/vd%s' % 'abcdefgh'[index],
                'disk_bus': 'virtio', 'device_type': 'disk',
                'boot_index': 0 if boot and index == 0 else None})
        return {'block_device_mapping': mapping, 'ephemerals': [],
                'swap': None, 'root_device_name': '/dev/vda'}


class ImageAPI(object):
    """The image service: downloads write ``content``; uploads may fail."""

    def __init__(self, content=b'kernel'):
        self.content = content
        self.download_error = None
        self.update_error = None
        self.uploads = []

    def download(self, context, image_id, data=None, dest_path=None,
                 **kw):
        with open(dest_path, 'wb') as handle:
            handle.write(self.content)
        if self.download_error is not None:
            raise self.download_error

    def update(self, context, image_id, metadata, data, **kw):
        if self.update_error is not None:
            raise self.update_error
        self.uploads.append((image_id, metadata, data.read()))


class FakeVirtAPI(virtapi.VirtAPI):
    """nova-compute's event waits, answered as a test says.

    ``waits`` records ``(event names, timeout)`` of each wait, and
    ``bodies`` what the domain looked like once the body had run (the
    guest must be paused then). ``outcome``: ``'plugged'`` (every event
    comes), ``'timeout'`` (none comes) or ``'failed'`` (Neutron reports
    the first one failed, given to the error callback as nova does).
    """

    def __init__(self, host):
        super().__init__()
        self.host = host
        self.waits = []
        self.bodies = []
        self.outcome = 'plugged'

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        self.waits.append((list(event_names), timeout))
        yield
        domain = self.host.domains.get(instance.uuid)
        self.bodies.append(None if domain is None else
                           (domain.active, domain.paused))
        if not event_names:
            return
        if self.outcome == 'timeout':
            raise exception.InstanceEventTimeout()
        if self.outcome == 'failed':
            name, tag = event_names[0]
            error_callback(objects.InstanceExternalEvent.make_key(name, tag),
                           instance)


class DriverFixture(fixtures.Fixture):
    """A PyVirtDriver on :class:`FakeHost`, fake volumes and image API.

    Storage is real: instance files under a temporary instances path, disk
    files made by the configured backend.  Design is replaced by a function
    that records its request and returns the domain XML of
    :data:`DOMAIN_XML`, and validation by one that records its request and
    raises ``validation_error`` when set, so no host capabilities are
    needed.
    """

    def _setUp(self):
        objects.register_all()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.conf = self.useFixture(design_support.ConfFixture())
        self.conf.set(virt_type='qemu', connection_uri='test:///default')
        self.conf.set(group='DEFAULT',
                      instances_path=os.path.join(self.tmp, 'instances'))
        self.conf.set(group='oslo_concurrency',
                      lock_path=os.path.join(self.tmp, 'locks'))
        self.volumes = VolumeBackend()
        self.useFixture(self.volumes.registered())
        self.images = ImageAPI()
        self.host = FakeHost()
        self.context = nova_context.get_admin_context()
        self.virtapi = FakeVirtAPI(self.host)
        self.driver = pyvirt_driver.PyVirtDriver(self.virtapi,
                                                 image_api=self.images)
        self.driver._host = self.host
        self.driver._volumes = attachment.Volumes(self.conf.conf, self.host)
        self.driver._hotplug = hotplug.Hotplug(self.conf.conf, self.host,
                                               self.driver._vifs)
        self.driver._live = live_migration.LiveMigration(
            self.conf.conf, self.host, self.driver._disks,
            self.driver._volumes, self.driver._vifs, self.images)
        # No Neutron here: its multiple port bindings are not offered.
        self.useFixture(fixtures.MockPatch(
            'nova.network.neutron.API.has_port_binding_extension',
            return_value=False))
        self.requests = []
        self.design_error = None
        self.useFixture(fixtures.MockPatchObject(
            pyvirt_driver.domain_builder, 'design_guest', self._design))
        self.validated = []
        self.validation_error = None
        self.useFixture(fixtures.MockPatchObject(
            pyvirt_driver.validation, 'validate', self._validate))

    def _validate(self, guest_request, conf, host_facts, **kw):
        self.validated.append(guest_request)
        if self.validation_error is not None:
            raise self.validation_error

    def _design(self, guest_request, conf, host_facts, **kw):
        self.requests.append(guest_request)
        if self.design_error is not None:
            raise self.design_error
        text = DOMAIN_XML % {'id': guest_request.instance.id,
                             'uuid': guest_request.instance.uuid,
                             'extra': ''}
        return types.SimpleNamespace(
            domain=types.SimpleNamespace(to_xml=lambda: text),
            machine_type='pc-q35-8.0', disk_bus='virtio', warnings=[])

    def instance(self, **flavor_values):
        values = dict(vcpus=1, memory_mb=128, root_gb=0, swap=0)
        values.update(flavor_values)
        flavor = design_support.flavor(**values)
        return design_support.instance(
            flavor=flavor, kernel_id=None, ramdisk_id=None,
            system_metadata={}, host=self.driver._host_name,
            image_ref='')

    def volume_booted(self):
        """An instance with a swap disk that boots from a volume.

        Spawn makes real files (``disk.swap``, ``disk.info``) and connects
        :data:`VOL_BOOT` and :data:`VOL_DATA`. Returns the instance and its
        block device info.
        """
        return (self.instance(swap=1),
                VolumeBackend.block_device_info(VOL_BOOT, VOL_DATA))

    def instance_dir(self, instance):
        return self.driver._files(instance).path


class VolumeBootedTestCase(base.BaseTestCase):
    """A driver on these fakes with a volume-booted instance of its own."""

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(DriverFixture())
        self.driver = self.fx.driver
        self.host = self.fx.host
        self.volumes = self.fx.volumes
        self.instance, self.bdi = self.fx.volume_booted()
        self.directory = self.fx.instance_dir(self.instance)
