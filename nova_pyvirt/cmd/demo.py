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

"""``nova-pyvirt demo``: boot an instance through the driver and log in.

The user's story, as nova would run it on one host: create a key pair,
boot an instance with it, user data and a config drive on a network port,
wait for its address, log in over SSH with the key, look around, delete it.
Uses the embedded QEMU driver (``qemu:///embed``, no libvirt daemon), a
local image service holding the test guest's real kernel, ramdisk and
disk, nova's own objects and key pair code, and a private network in a
network namespace of the demo's own (:mod:`demo_network`), so the host's
network is never touched. It checks at the end that nothing is left:
domain, files, tap, bridge, dnsmasq, processes.
"""

import argparse
import base64
import contextlib
import os
import shlex
import sys
import time
from unittest import mock

from oslo_concurrency import processutils
from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova import context as nova_context
from nova import crypto
from nova.network import model as network_model
from nova import objects
import nova.privsep
from nova import utils as nova_utils

from nova_pyvirt.cmd import demo_images
from nova_pyvirt.cmd import demo_network
from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt import driver as pyvirt_driver
from nova_pyvirt.hypervisor import connection
from nova_pyvirt import privsep as pyvirt_privsep
from nova_pyvirt.storage import config_drive

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
READY = 'PYVIRT-GUEST: ready'
STEPS = 9
BOOT_TIMEOUT = 120
KEY_NAME = 'demo-key'
# Run by the guest at first boot, from the config drive.
USER_DATA = (b'#!/bin/sh\n'
             b'echo "user data ran at $(cut -d" " -f1 /proc/uptime) s of '
             b'uptime" > /run/demo-user-data\n')
LOGIN_COMMANDS = ('uname -a', 'cat /proc/uptime', 'hostname',
                  'cat /run/demo-user-data')
# What the guest prints about its first boot (tools/guest_image/README.md).
FIRST_BOOT_LINES = ('PYVIRT-CONFIG', 'PYVIRT-HOSTNAME', 'PYVIRT-KEYS',
                    'PYVIRT-USERDATA', 'PYVIRT-SSH', 'PYVIRT-NET')


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
                                                     'instances'))
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
        info_cache=objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo()),
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


def configure_privsep(conf):
    """Start the privsep daemons directly: the demo already runs as root."""
    script = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
    # A daemon is a Python process of its own, whose stderr privsep relays
    # as "privsep log:" lines: there oslo_privsep.daemon imports eventlet,
    # whose deprecation notice is attributed to that import. Only
    # warnings attributed to that module are ignored, in the daemons the
    # demo starts.
    helper = ' '.join(shlex.quote(arg) for arg in (
        sys.executable, '-W', 'ignore::Warning:oslo_privsep.daemon',
        script))
    for group in ('nova_sys_admin', pyvirt_privsep.CONFIG_SECTION):
        conf.set_override('helper_command', helper, group=group)


@contextlib.contextmanager
def without_cloud_services():
    """Answer what nova's metadata code asks of Neutron and the database.

    The config drive's content comes from nova's metadata code, which asks
    Neutron for the instance's security groups and nova's database for its
    block device mappings. The demo runs without either: no security
    groups, no mappings (the instance boots from its image).
    """
    no_mappings = objects.BlockDeviceMappingList(objects=[])
    with mock.patch('nova.network.security_group_api.'
                    'get_instance_security_groups', return_value=[]), \
            mock.patch.object(objects.BlockDeviceMappingList,
                              'get_by_instance_uuid',
                              return_value=no_mappings):
        yield


def first_boot_instance(image, flavor, public_key, network_info):
    """An instance booted with a key pair, user data and a config drive."""
    instance, image_meta = make_instance(image, flavor)
    instance.update(dict(
        hostname='demo-vm', key_name=KEY_NAME, key_data=public_key,
        user_data=base64.b64encode(USER_DATA).decode(), config_drive='True',
        launched_at=None, launch_index=0, reservation_id='r-demo',
        availability_zone='nova', metadata={}, device_metadata=None,
        numa_topology=None, root_device_name='/dev/vda', host='demo',
        default_ephemeral_device=None, default_swap_device=None,
        ec2_ids=objects.EC2Ids(instance_id='i-00000001',
                               ami_id='ami-00000001', kernel_id=None,
                               ramdisk_id=None)))
    instance.keypairs = objects.KeyPairList(objects=[objects.KeyPair(
        name=KEY_NAME, type='ssh', public_key=public_key)])
    instance.info_cache = objects.InstanceInfoCache(
        instance_uuid=instance.uuid, network_info=network_info)
    return instance, image_meta


def guest_address(output):
    """The address the guest's first NIC reported, or None."""
    for line in output.splitlines():
        if line.startswith('PYVIRT-NET ') and ' addr=' in line:
            addr = line.rsplit(' addr=', 1)[1].strip()
            if addr != '-':
                return addr.split('/')[0]
    return None


def processes_in_namespace(namespace):
    """PIDs (other than this one) in the network namespace."""
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit() and int(name) != os.getpid():
            try:
                if demo_network.namespace_id(name) == namespace:
                    found.append(int(name))
            except OSError:
                continue
    return found


def run(args):
    progress = Progress(STEPS)
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    host_namespace = demo_network.namespace_id()
    try:
        # First, while this process has a single thread.
        demo_network.enter_private_namespace()
    except (demo_network.NetworkSetupError,
            processutils.ProcessExecutionError) as exc:
        print('demo: FAILED: %s' % exc, file=sys.stderr)
        return 1
    namespace = demo_network.namespace_id()
    # The embedded driver logs to stderr unless told otherwise; keep its
    # warnings in a file so the demo's own lines stay readable.
    os.environ.setdefault('LIBVIRT_LOG_OUTPUTS', '3:file:%s' % os.path.join(
        state_dir, 'libvirt.log'))
    progress.step('configuring the driver for the embedded QEMU driver '
                  'under %s' % state_dir)
    conf = configure(state_dir)
    configure_privsep(conf)
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

    progress.step('creating key pair %s and a private network: bridge %s '
                  '(%s) and DHCP in the demo\'s own network namespace' % (
                      KEY_NAME, demo_network.BRIDGE, demo_network.GATEWAY))
    private_key, public_key, fingerprint = crypto.generate_key_pair()
    port_id = uuidutils.generate_uuid()
    mac = 'fa:16:3e:%s:%s:%s' % (port_id[0:2], port_id[2:4], port_id[4:6])
    vif = demo_network.port(port_id, mac)
    network_info = network_model.NetworkInfo([vif])
    network = demo_network.PrivateNetwork(state_dir, mac)
    progress.note('key fingerprint %s; namespace %s (the host\'s is %s)' % (
        fingerprint, namespace, host_namespace))
    instance = None
    leftovers = ['the demo stopped early']
    try:
        network.start()
        progress.note('dnsmasq (PID %d) serves %s to port %s (%s)' % (
            network.dnsmasq.pid, demo_network.FIXED_IP, port_id, mac))
        instance, image_meta = first_boot_instance(image, flavor, public_key,
                                                   network_info)
        leftovers = demo_run(progress, context, conf, images, network,
                             instance, image_meta, network_info,
                             private_key)
    finally:
        leftovers = finish(progress, network, namespace, leftovers)
    if leftovers:
        print('demo: FAILED: left behind: %s' % ', '.join(leftovers),
              file=sys.stderr)
        return 1
    print('demo: OK in %.1f s' % (time.monotonic() - progress.started))
    return 0


def demo_run(progress, context, conf, images, network, instance, image_meta,
             network_info, private_key):
    """Steps 4 to 8; returns what the driver left behind."""
    progress.step('starting the driver (init_host)')
    agent = demo_network.AgentVirtAPI(network, network_info)
    driver = pyvirt_driver.PyVirtDriver(agent, image_api=images)
    events = []
    driver.register_event_listener(events.append)
    driver.init_host(conf.host)
    host = driver._host
    progress.note('libvirt %s, QEMU %s, nodes %s' % (
        host.get_libversion(), host.get_version(),
        driver.get_available_nodes()))
    instance_dir = os.path.join(conf.instances_path, instance.uuid)
    try:
        progress.step('spawning instance %s with key pair %s, user data and '
                      'a config drive, on port %s' % (
                          instance.uuid, KEY_NAME, network_info[0]['id']))
        started = time.monotonic()
        with without_cloud_services():
            driver.spawn(context, instance, image_meta, [], None, {},
                         network_info=network_info)
        progress.note('running after %.1f s; %s; config drive %s (%d '
                      'bytes, %s)' % (
                          time.monotonic() - started,
                          ', '.join(agent.delivered),
                          config_drive.NAME, os.path.getsize(os.path.join(
                              instance_dir, config_drive.NAME)),
                          conf.config_drive_format))

        progress.step('waiting for the guest\'s address (DHCP)')
        deadline = time.monotonic() + BOOT_TIMEOUT
        address = None
        while address is None:
            output = driver.get_console_output(context, instance).decode(
                'utf-8', 'replace')
            address = guest_address(output)
            if address is None and time.monotonic() > deadline:
                raise RuntimeError('the guest reported no address within '
                                   '%d s' % BOOT_TIMEOUT)
            time.sleep(0.5)
        progress.note('guest has %s after %.1f s' % (
            address, time.monotonic() - started))
        for line in output.splitlines():
            if line.startswith(FIRST_BOOT_LINES):
                progress.note('| ' + line.strip())

        progress.step('logging in over SSH as root@%s with the key pair' %
                      address)
        outputs = demo_network.login(address, private_key, LOGIN_COMMANDS,
                                     BOOT_TIMEOUT)
        for command, text in zip(LOGIN_COMMANDS, outputs):
            progress.note('$ %s' % command)
            for line in text.splitlines():
                progress.note('  %s' % line)

        progress.step('diagnostics (get_instance_diagnostics)')
        diags = driver.get_instance_diagnostics(instance)
        progress.note('state %s, %d vCPU, memory %s MiB max, %d disk(s), '
                      '%d NIC(s)' % (diags.state, diags.num_cpus,
                                     diags.memory_details.maximum,
                                     diags.num_disks, diags.num_nics))
        for nic in diags.nic_details:
            progress.note('NIC %s: %d bytes received, %d sent' % (
                nic.mac_address, nic.rx_octets, nic.tx_octets))
    finally:
        progress.step('deleting the instance; checking that nothing is left')
        driver.destroy(context, instance, network_info, None)
        leftovers = ['domain %s' % uuid
                     for uuid in driver.list_instance_uuids()]
        if os.path.exists(instance_dir):
            leftovers.append('instance files %s' % instance_dir)
        tap = network_info[0]['devname']
        if demo_network.device_exists(tap):
            leftovers.append('tap %s' % tap)
        progress.note('domains left: %d, instance files left: %s' % (
            len(driver.list_instance_uuids()),
            'yes' if os.path.exists(instance_dir) else 'no'))
        progress.note('lifecycle events received: %s' % (', '.join(
            e.get_name() for e in events) or 'none'))
        driver.cleanup_host(conf.host)
    return leftovers


def finish(progress, network, namespace, leftovers):
    """Stop the network and the root helpers; everything left behind."""
    leftovers = list(leftovers) + network.stop()
    nova.privsep.sys_admin_pctxt.stop()
    pyvirt_privsep.sys_admin_pctxt.stop()
    deadline = time.monotonic() + 10
    while processes_in_namespace(namespace) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers += ['process %d' % pid
                  for pid in processes_in_namespace(namespace)]
    progress.note('bridge, dnsmasq and root helpers stopped; processes '
                  'left in the namespace: %d' % len(
                      processes_in_namespace(namespace)))
    return leftovers


def _configure(parser):
    parser.add_argument('--state-dir', default=os.path.join(
        REPO, '.cache', 'demo'), help='where the embedded libvirt root, '
        'instances and images live')
    parser.add_argument('--guest-image', default=os.path.join(
        REPO, '.cache', 'guest-image'), help='output of '
        'tools/guest_image/build.py')


def demo(args):
    return run(args)


COMMANDS = [('demo', demo, 'Boot one instance through the driver on '
             'embedded QEMU, log in to it over SSH and delete it.',
             _configure)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog='nova-pyvirt demo')
    _configure(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
