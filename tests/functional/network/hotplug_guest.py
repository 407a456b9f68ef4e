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

"""A running guest gets a port attached and detached, on a real OVS.

Run by :mod:`test_interface_hotplug` inside the OVS fixture's namespaces
(``python -m tests.functional.network.hotplug_guest GUEST_DIR STATE_DIR``):
the driver on an embedded QEMU root of its own spawns the test guest
without a port, waits until it is up, then for a direct and a hybrid
ML2/OVS port attaches it (os-vif through its privsep daemon, libvirt
putting the tap on ``br-int`` or ``qbr``), reads what OVS and the guest's
live and persistent definitions show, and detaches it (the guest must
release the NIC). Prints one JSON document of what it saw; everything it
made is destroyed before it exits.
"""

import os
import shutil
import subprocess
import sys
import time

from nova import context as nova_context
from nova import objects
from nova.virt import virtapi
from oslo_serialization import jsonutils

from nova_pyvirt.cmd import demo
from nova_pyvirt.cmd import demo_images
from nova_pyvirt import driver as pyvirt_driver
from nova_pyvirt.hypervisor import connection
from tests import design_support as support
from tests.fixtures import embedded
from tests.functional.network import os_vif_host

OVS_VSCTL = '/usr/bin/ovs-vsctl'


def port(hybrid):
    return support.vif('ovs', hybrid=hybrid, datapath_type='netdev',
                       active=True, **os_vif_host.new_port_values())


def ovs_ports():
    out = subprocess.run([OVS_VSCTL, 'list-ports', 'br-int'], check=True,
                         capture_output=True, text=True).stdout
    return sorted(out.split())


def nics(driver, instance):
    guest = driver._guest(instance)
    return {'live': [n.mac_address for n in guest.definition().interfaces],
            'persistent': [n.mac_address
                           for n in guest.inactive().interfaces]}


def main(guest_dir, state_dir):
    if os.path.isdir(embedded.PROBE_CACHE):
        shutil.copytree(embedded.PROBE_CACHE,
                        os.path.join(state_dir, 'embed', 'cache'))
    # The namespace's /sys is its own, without the machine's cgroups.
    connection.EMBED_QEMU_CONF += 'cgroup_controllers = [ ]\n'
    conf = demo.configure(state_dir)
    conf.set_override('enabled', False, group='vnc')
    conf.set_override('live_device_detach_timeout', 60, group='pyvirt')
    os_vif_host.configure_os_vif(conf)
    objects.register_all()
    context = nova_context.get_admin_context()
    images = demo_images.LocalImageService(os.path.join(state_dir,
                                                        'images'))
    root = demo.register_images(images, guest_dir)
    driver = pyvirt_driver.PyVirtDriver(virtapi.VirtAPI(), image_api=images)
    driver.init_host('hotplug-host')
    flavor = objects.Flavor(name='t', flavorid='t', vcpus=1, memory_mb=128,
                            root_gb=1, ephemeral_gb=0, swap=0,
                            extra_specs={})
    instance, image_meta = demo.make_instance(root, flavor)
    seen = {}
    try:
        driver.spawn(context, instance, image_meta, [], None, {},
                     network_info=[])
        # The guest must be up to release a NIC on request (ACPI).
        demo.wait_for_console(driver, context, instance,
                              'PYVIRT-GUEST: ready', 1, timeout=180)
        for kind in ('direct', 'hybrid'):
            vif = port(kind == 'hybrid')
            driver.attach_interface(context, instance, image_meta, vif)
            attached = {'ports': ovs_ports(), 'nics': nics(driver,
                                                           instance)}
            diags = driver.get_instance_diagnostics(instance)
            attached['diagnostics'] = [n.mac_address
                                       for n in diags.nic_details]
            start = time.monotonic()
            driver.detach_interface(context, instance, vif)
            seen[kind] = {
                'port': vif['id'], 'mac': vif['address'],
                'devname': vif['devname'], 'attached': attached,
                'detach_seconds': time.monotonic() - start,
                'detached': {'ports': ovs_ports(),
                             'nics': nics(driver, instance)}}
    finally:
        driver.destroy(context, instance, [], None)
        driver.cleanup_host('hotplug-host')
    print(jsonutils.dumps(seen))


if __name__ == '__main__':
    main(*sys.argv[1:])
