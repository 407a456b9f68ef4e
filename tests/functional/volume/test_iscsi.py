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

"""iSCSI volumes on a real guest, served by a real iSCSI target.

tgtd on 127.0.0.1 (:mod:`tests.fixtures.tgtd`) serves the LUNs; the driver
runs on a private libvirtd (:mod:`tests.fixtures.libvirtd`), because CHAP
needs libvirt secrets and the embedded QEMU driver has none, with
``[pyvirt] iscsi_transport = qemu``, so QEMU's own iSCSI client logs in.
What reached the guest is read from its serial console (``PYVIRT-DISK``
lines, see tools/guest_image/README.md), what the guest wrote is read back
from the LUN's backing file, and who is logged in from tgtd.

The ``kernel`` transport needs the kernel's iSCSI initiator (``iscsi_tcp``),
which the project's test machines lack; it is tested in
tests/unit/volume/test_iscsi.py at os-brick's boundary only.
"""

import logging
import os
import socket
import time

import fixtures
import libvirt
from oslo_utils import uuidutils
from oslotest import base

from nova import exception
from nova import objects

from nova_pyvirt.hypervisor import host as pyvirt_host
from nova_pyvirt.volume import iscsi
from nova_pyvirt.volume import secrets
from tests import design_support
from tests.fixtures import driver as driver_fixture
from tests.fixtures import libvirtd
from tests.fixtures import tgtd
from tests.functional.volume import base as volume_base
from tests.guest_console import disk_reports
from tests.guest_console import removed_reports
from tests.guest_console import SERIAL_LEN

GUEST_WROTE = 'PYVIRT-GUEST-WROTE-ON-ISCSI'
# QEMU's initiator name: iqn.2008-11.org.linux-kvm:<domain uuid>.
QEMU_INITIATOR = 'iqn.2008-11.org.linux-kvm:'


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    sock = socket.socket()
    try:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


class DaemonDriverFixture(driver_fixture.DriverFixture):
    """:class:`DriverFixture`, but on a private libvirtd.

    The test guest, images and helpers are the same; the connection is
    ``qemu+unix:///system?socket=...`` of :class:`LibvirtdFixture`.
    """

    PYVIRT_OPTIONS = {'iscsi_transport': 'qemu'}

    def libvirt_uri(self):
        self.daemon = self.useFixture(libvirtd.LibvirtdFixture())
        return self.daemon.uri

    def conn(self):
        return self.driver._host.get_connection()


class ISCSIVolumeTestCase(volume_base.VolumeTestCase):

    def setUp(self):
        super(ISCSIVolumeTestCase, self).setUp()
        self.tgt = self.useFixture(tgtd.TgtdFixture())
        self.fx = self.useFixture(DaemonDriverFixture())
        self.driver = self.fx.driver
        self.ctx = self.fx.context

    def volume(self, name, chap=False, size=tgtd.MiB):
        volume_id = uuidutils.generate_uuid()
        if chap:
            self.tgt.create_volume(name, size=size,
                                   username='user-' + name,
                                   password='chap-pw-%s' %
                                   uuidutils.generate_uuid()[:13])
        else:
            self.tgt.create_volume(name, size=size)
        return volume_id, self.tgt.connection_info(name, volume_id)

    def running_guest(self):
        instance = self.fx.spawn()
        self.fx.wait_console(instance, volume_base.READY)
        return instance

    def wait_report(self, instance, wanted, timeout=120):
        """Wait for a ``PYVIRT-DISK`` line (a :func:`disk_reports` item)."""
        deadline = time.monotonic() + timeout
        while True:
            reports = disk_reports(self.fx.console(instance))
            if wanted in reports or time.monotonic() > deadline:
                self.assertIn(wanted, reports)
                return
            time.sleep(0.5)

    def wait_sessions(self, name, expected, timeout=30):
        """Wait until the initiators logged in to ``name`` are these."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.tgt.sessions(name)
            if found == expected or time.monotonic() > deadline:
                self.assertEqual(expected, found)
                return
            time.sleep(0.2)

    def secret_usages(self):
        return sorted(s.usageID() for s in self.fx.conn().listAllSecrets())

    def usage_id(self, volume_id, instance):
        return secrets.volume_usage_id('iscsi', volume_id, instance.uuid)

    def qemu_cmdline(self, instance):
        pid_file = os.path.join(self.fx.daemon.base, 'run', 'qemu',
                                instance.name + '.pid')
        with open(pid_file) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read()


class QemuTransportTest(ISCSIVolumeTestCase):

    def test_chap_volume_at_boot_hot_plug_and_detach(self):
        log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        boot_id, boot_info = self.volume('boot', chap=True)
        password = boot_info['data']['auth_password']
        # The guest writes this line at offset 0 of vdb after its report.
        image = self.image('pyvirt.write=vdb:%s' % GUEST_WROTE)
        instance, image_meta = self.fx.instance(image)
        bdi = volume_base.block_device_info(boot_info)
        self.driver.spawn(self.ctx, instance, image_meta, [], None, {},
                          block_device_info=bdi)

        # The domain reaches the LUN through QEMU's iSCSI client, with the
        # CHAP password in a private libvirt secret named in <auth>.
        disks = self.volume_disks(instance)
        self.assertEqual(1, len(disks))
        disk = disks[0]
        volume = self.tgt.volumes['boot']
        self.assertEqual(('network', 'iscsi', 'raw', 'none'), (
            disk.type, disk.source_protocol, disk.driver_type,
            disk.driver_cache))
        self.assertEqual('%s/1' % volume.iqn, disk.source_name)
        self.assertEqual([('127.0.0.1', str(self.tgt.port))],
                         [(h.name, h.port) for h in disk.source_hosts])
        usage = self.usage_id(boot_id, instance)
        self.assertEqual((volume.username, 'iscsi', usage), (
            disk.source_auth.username, disk.source_auth.secret_type,
            disk.source_auth.secret_usage))
        self.assertEqual([usage], self.secret_usages())
        secret = self.fx.conn().secretLookupByUsage(
            libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage)
        self.assertRaises(libvirt.libvirtError, secret.value)  # private

        # At boot the guest sees the volume: its serial and its data...
        console = self.fx.wait_console(instance, 'PYVIRT-WROTE vdb')
        reports = {r[0]: r for r in disk_reports(console)}
        self.assertEqual(
            ('vdb', boot_id[:SERIAL_LEN], tgtd.MiB, None,
             'PYVIRT-DISK-MARKER boot'), reports['vdb'])
        # ... and its writes reach the LUN.
        self.assertEqual(GUEST_WROTE.encode() + b'\n',
                         self.tgt.read('boot', len(GUEST_WROTE) + 1))
        self.assertEqual([QEMU_INITIATOR + instance.uuid],
                         self.tgt.sessions('boot'))

        # Hot-plug a volume without CHAP, offered on two portals of which
        # the first is down: QEMU is given the one that answers.
        plug_id, plug_info = self.volume('plug', size=2 * tgtd.MiB)
        dead = '127.0.0.1:%d' % closed_port()
        data = plug_info['data']
        data.update(target_portal=dead,
                    target_portals=[dead, self.tgt.portal],
                    target_iqns=[data['target_iqn']] * 2,
                    target_luns=[data['target_lun']] * 2)
        self.driver.attach_volume(self.ctx, plug_info, instance, '/dev/vdc')
        self.assertEqual(
            ('vdc', plug_id[:SERIAL_LEN], 2 * tgtd.MiB, 'added',
             'PYVIRT-DISK-MARKER plug'),
            self.wait_disk(instance, 'vdc', event='added'))
        plugged = [d for d in self.volume_disks(instance)
                   if d.serial == plug_id]
        self.assertEqual([[('127.0.0.1', str(self.tgt.port))]],
                         [[(h.name, h.port) for h in d.source_hosts]
                          for d in plugged])
        self.assertIsNone(plugged[0].source_auth)
        self.assertEqual(self.tgt.portal, data[iscsi.PORTAL_KEY])

        # The password is in no log, no domain XML, no QEMU argument.
        self.assertNotIn(password, log.output)
        self.assertNotIn(password, self.fx.domain(instance).XMLDesc(
            libvirt.VIR_DOMAIN_XML_SECURE))
        self.assertNotIn(password.encode(), self.qemu_cmdline(instance))

        # A hard reboot connects both volumes again (the CHAP secret is
        # found and its value set again) and the guest sees them at boot.
        bdi['block_device_mapping'].append({
            'connection_info': plug_info, 'mount_device': '/dev/vdc',
            'boot_index': None, 'disk_bus': 'virtio', 'device_type': 'disk',
            'delete_on_termination': False})
        self.driver.reboot(self.ctx, instance, [], 'HARD',
                           block_device_info=bdi)
        self.wait_report(instance, ('vdc', plug_id[:SERIAL_LEN],
                                    2 * tgtd.MiB, None,
                                    'PYVIRT-DISK-MARKER plug'))
        self.assertIn(('vdb', boot_id[:SERIAL_LEN], tgtd.MiB, None,
                       GUEST_WROTE), disk_reports(self.fx.console(instance)))
        self.assertEqual([usage], self.secret_usages())

        # Detach the CHAP volume: the guest loses the disk, the domain
        # forgets it, QEMU logs out and the secret is gone.
        self.driver.detach_volume(self.ctx, boot_info, instance, '/dev/vdb')
        self.fx.wait_console(instance, 'name=vdb event=removed', timeout=60)
        self.assertIn('vdb', removed_reports(self.fx.console(instance)))
        self.assertEqual([plug_id],
                         [d.serial for d in self.volume_disks(instance)])
        self.assertEqual([plug_id], [d.serial for d in self.volume_disks(
            instance, live=False)])
        self.assertEqual([], self.secret_usages())
        self.wait_sessions('boot', [])
        self.assertEqual([QEMU_INITIATOR + instance.uuid],
                         self.tgt.sessions('plug'))

        # The plain volume detaches too; detaching again changes nothing.
        self.driver.detach_volume(self.ctx, plug_info, instance, '/dev/vdc')
        self.fx.wait_console(instance, 'name=vdc event=removed', timeout=60)
        self.assertEqual([], self.volume_disks(instance))
        self.wait_sessions('plug', [])
        self.driver.detach_volume(self.ctx, boot_info, instance, '/dev/vdb')
        self.assertEqual([], self.secret_usages())
        self.assertNotIn(password, log.output)

    def test_wrong_chap_password_fails_and_leaves_nothing(self):
        instance = self.running_guest()
        volume_id, info = self.volume('chap', chap=True)
        right = info['data']['auth_password']
        wrong = self.tgt.connection_info('chap', volume_id,
                                         password='not-' + right)
        before = self.fx.domain(instance).XMLDesc(0)
        before_inactive = self.fx.domain(instance).XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE)

        exc = self.assertRaises(exception.VolumeAttachFailed,
                                self.driver.attach_volume, self.ctx, wrong,
                                instance, '/dev/vdb')
        self.assertIn(volume_id, str(exc))
        self.assertIn('Authentication failure', str(exc))
        self.assertNotIn(right, str(exc))
        # The domain and the host are as before: no disk (live or
        # persistent), no secret, no session at the target.
        self.assertEqual(before, self.fx.domain(instance).XMLDesc(0))
        self.assertEqual(before_inactive, self.fx.domain(instance).XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE))
        self.assertEqual([], self.fx.conn().listAllSecrets())
        self.assertEqual([], self.tgt.sessions('chap'))

        # The right password then works on the same guest.
        self.driver.attach_volume(self.ctx, info, instance, '/dev/vdb')
        self.assertEqual(
            ('vdb', volume_id[:SERIAL_LEN], tgtd.MiB, 'added',
             'PYVIRT-DISK-MARKER chap'),
            self.wait_disk(instance, 'vdb', event='added'))
        self.assertEqual([self.usage_id(volume_id, instance)],
                         self.secret_usages())
        # The failed attempt never reached the guest.
        self.assertEqual(1, self.fx.console(instance).count('name=vdb '))

    def test_extend_reads_the_new_size_from_the_target(self):
        log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        instance = self.running_guest()
        volume_id, info = self.volume('grow', chap=True, size=tgtd.MiB)
        password = info['data']['auth_password']
        self.driver.attach_volume(self.ctx, info, instance, '/dev/vdb')
        self.wait_disk(instance, 'vdb', event='added')
        dom = self.fx.domain(instance)
        self.assertEqual(tgtd.MiB, dom.blockInfo('vdb')[0])

        self.tgt.grow('grow', 3 * tgtd.MiB)
        # nova asks for less than the target now has: the target's size
        # (read with iscsi-readcapacity16, logged in with CHAP) wins.
        vdriver = iscsi.ISCSIVolumeDriver(self.fx.conf.conf,
                                          self.driver._host)
        self.assertEqual(3 * tgtd.MiB,
                         vdriver.extend(info, instance, 2 * tgtd.MiB))
        self.driver.extend_volume(self.ctx, info, instance, 2 * tgtd.MiB)
        self.assertEqual(3 * tgtd.MiB, dom.blockInfo('vdb')[0])
        # The password went to iscsi-readcapacity16 in its environment.
        self.assertIn('iscsi-readcapacity16', log.output)
        self.assertNotIn(password, log.output)


class NoSecretsTest(base.BaseTestCase):
    """A libvirt without secrets: CHAP says so and leaves nothing.

    The embedded QEMU driver has no secret driver; libvirt's test driver,
    used here, has none either.
    """

    def test_chap_needs_a_daemon_with_secrets(self):
        conf = self.useFixture(design_support.ConfFixture())
        conf.set(iscsi_transport='qemu')
        host = pyvirt_host.Host('test:///default')
        self.addCleanup(host.cleanup)
        vdriver = iscsi.ISCSIVolumeDriver(conf.conf, host)
        volume_id = uuidutils.generate_uuid()
        info = {'driver_volume_type': 'iscsi', 'serial': volume_id,
                'data': {'target_portal': '127.0.0.1:3260',
                         'target_iqn': 'iqn.2010-10.org.openstack:v1',
                         'target_lun': 1, 'auth_method': 'CHAP',
                         'auth_username': 'user',
                         'auth_password': 'never-shown-1234'}}
        instance = objects.Instance(uuid=uuidutils.generate_uuid())
        exc = self.assertRaises(secrets.SecretsUnavailable, vdriver.connect,
                                info, instance)
        self.assertIn('test:///default', str(exc))
        self.assertIn('cannot store secrets', str(exc))
        self.assertNotIn('never-shown-1234', str(exc))
        # Disconnecting what never connected is fine.
        vdriver.disconnect(info, instance)
        self.assertIsNone(secrets.lookup(
            host, 'iscsi', vdriver.secret_usage_id(info, instance)))
