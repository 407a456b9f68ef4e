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

"""``nova-pyvirt demo``: boot one instance through the driver, as nova would.

Uses the embedded QEMU driver (``qemu:///embed``, no libvirt daemon), a
local image service holding the test guest's real kernel, ramdisk and disk,
and nova's own objects (Instance, Flavor, ImageMeta).  It spawns, shows the
console and diagnostics, reboots, deletes, and checks nothing is left.
"""

import argparse
import os
import sys
import time

from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova import context as nova_context
from nova import objects
from nova import utils as nova_utils
from nova.virt import virtapi

from nova_pyvirt.cmd import demo_images
from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt import driver as pyvirt_driver
from nova_pyvirt.hypervisor import connection

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
READY = 'PYVIRT-GUEST: ready'
STEPS = 8


class Progress(object):

    def __init__(self, total):
        self.total = total
        self.number = 0
        self.started = time.monotonic()

    def step(self, text):
        self.number += 1
        print('demo [%d/%d] %s' % (self.number, self.total, text),
              flush=True)

    def note(self, text):
        print('      %s' % text, flush=True)


def configure(state_dir):
    conf = pyvirt_conf.CONF
    conf([], project='nova', default_config_files=[])
    embed = connection.prepare_embedded_root(os.path.join(state_dir,
                                                          'embed'))
    conf.set_override('virt_type', 'qemu', group='pyvirt')
    conf.set_override('connection_uri', embed, group='pyvirt')
    conf.set_override('instances_path', os.path.join(state_dir,
                                                     'instances'),
                      group='pyvirt')
    conf.set_override('lock_path', os.path.join(state_dir, 'locks'),
                      group='oslo_concurrency')
    conf.set_override('server_listen', '127.0.0.1', group='vnc')
    return conf


def register_images(images, guest_dir):
    kernel = images.add(os.path.join(guest_dir, 'vmlinuz'), 'aki',
                        name='pyvirt-test-kernel')
    ramdisk = images.add(os.path.join(guest_dir, 'initrd.img'), 'ari',
                         name='pyvirt-test-ramdisk')
    root = images.add(os.path.join(guest_dir, 'disk-marker.qcow2'),
                      'qcow2', name='pyvirt-test-root', properties={
                          'kernel_id': kernel['id'],
                          'ramdisk_id': ramdisk['id'],
                          'os_command_line': 'console=ttyS0 quiet',
                          'hw_disk_bus': 'virtio'})
    return root


def make_instance(image, flavor, instance_id=1):
    """A nova Instance booted from ``image``, as nova's API would make it."""
    image_meta = objects.ImageMeta.from_dict(image)
    props = image['properties']
    instance = objects.Instance(
        uuid=uuidutils.generate_uuid(), id=instance_id,
        display_name='demo-vm', user_id='demo', project_id='demo',
        flavor=flavor, image_ref=image['id'],
        kernel_id=props.get('kernel_id'),
        ramdisk_id=props.get('ramdisk_id'), os_type=None,
        launched_at=timeutils.utcnow(), config_drive='',
        system_metadata=nova_utils.get_system_metadata_from_image(
            image, flavor))
    return instance, image_meta


def wait_for_console(driver, context, instance, text, count, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = driver.get_console_output(context, instance).decode(
            'utf-8', 'replace')
        if output.count(text) >= count:
            return output
        time.sleep(0.5)
    raise RuntimeError('the guest did not print %r within %d s'
                       % (text, timeout))


def run(args):
    progress = Progress(STEPS)
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    # The embedded driver logs to stderr unless told otherwise; keep its
    # warnings in a file so the demo's own lines stay readable.
    os.environ.setdefault('LIBVIRT_LOG_OUTPUTS', '3:file:%s' % os.path.join(
        state_dir, 'libvirt.log'))
    progress.step('configuring the driver for the embedded QEMU driver '
                  'under %s' % state_dir)
    conf = configure(state_dir)
    progress.note('[pyvirt] connection_uri = %s' % conf.pyvirt.connection_uri)
    objects.register_all()
    context = nova_context.get_admin_context()

    progress.step('registering the test guest (kernel, ramdisk, qcow2 root)'
                  ' in a local image service')
    images = demo_images.LocalImageService(
        os.path.join(state_dir, 'images'))
    image = register_images(images, args.guest_image)
    flavor = objects.Flavor(name='demo.tiny', flavorid='demo', vcpus=1,
                            memory_mb=128, root_gb=1, ephemeral_gb=0,
                            swap=0, extra_specs={})
    instance, image_meta = make_instance(image, flavor)

    progress.step('starting the driver (init_host)')
    driver = pyvirt_driver.PyVirtDriver(virtapi.VirtAPI(),
                                        image_api=images)
    events = []
    driver.register_event_listener(events.append)
    driver.init_host(conf.host)
    host = driver._host
    progress.note('libvirt %s, QEMU %s, nodes %s' % (
        host.get_libversion(), host.get_version(),
        driver.get_available_nodes()))
    try:
        progress.step('spawning instance %s (1 vCPU, 128 MiB, 1 GiB root '
                      'disk as a qcow2 overlay)' % instance.uuid)
        started = time.monotonic()
        driver.spawn(context, instance, image_meta, [], None, {})
        progress.note('running after %.1f s; power state %s' % (
            time.monotonic() - started, driver.get_info(instance).state))
        output = wait_for_console(driver, context, instance, READY, 1)
        progress.note('guest ready after %.1f s' % (time.monotonic() -
                                                    started))

        progress.step('console output (get_console_output)')
        for line in output.splitlines():
            if line.startswith('PYVIRT-'):
                progress.note('| ' + line.strip())

        progress.step('diagnostics (get_instance_diagnostics)')
        diags = driver.get_instance_diagnostics(instance)
        progress.note('state %s, %d vCPU, memory %s MiB max, %d disk(s), '
                      '%d NIC(s)' % (diags.state, diags.num_cpus,
                                     diags.memory_details.maximum,
                                     diags.num_disks, diags.num_nics))
        for disk in diags.disk_details:
            progress.note('disk: %d read requests, %d bytes read' % (
                disk.read_requests, disk.read_bytes))

        progress.step('soft reboot (ACPI shutdown, then start)')
        driver.reboot(context, instance, [], 'SOFT')
        wait_for_console(driver, context, instance, READY, 1)
        progress.note('guest booted again; power state %s' %
                      driver.get_info(instance).state)
    finally:
        progress.step('deleting the instance')
        driver.destroy(context, instance, [], None)
        leftovers = driver.list_instance_uuids()
        files_left = os.path.exists(os.path.join(
            conf.pyvirt.instances_path, instance.uuid))
        progress.note('domains left: %d, instance files left: %s' % (
            len(leftovers), 'yes' if files_left else 'no'))
        progress.note('lifecycle events received: %s' % ', '.join(
            e.get_name() for e in events) if events else
            'lifecycle events received: none')
    if leftovers or files_left:
        print('demo: FAILED: the driver left something behind',
              file=sys.stderr)
        return 1
    print('demo: OK in %.1f s' % (time.monotonic() - progress.started))
    return 0


def _configure(parser):
    parser.add_argument('--state-dir', default=os.path.join(
        REPO, '.cache', 'demo'), help='where the embedded libvirt root, '
        'instances and images live')
    parser.add_argument('--guest-image', default=os.path.join(
        REPO, '.cache', 'guest-image'), help='output of '
        'tools/guest_image/build.py')


def demo(args):
    return run(args)


COMMANDS = [('demo', demo, 'Boot, reboot and delete one instance through '
             'the driver on embedded QEMU.', _configure)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog='nova-pyvirt demo')
    _configure(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
