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

"""Non-disk devices: NICs, console, graphics, video, input, RNG, agent.

Each function reads the image properties nova defines for its device
(``hw_vif_model``, ``hw_video_model``, ``hw_pointer_model``,
``hw_rng_model``, ``hw_qemu_guest_agent``) and refuses values the host
cannot provide with an error naming the property.
"""

from oslo_log import log as logging

from nova_pyvirt.design import machine
from nova_pyvirt import exception
from nova_pyvirt.xml import devices as dev

LOG = logging.getLogger(__name__)

GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0'
VIF_MODELS = ('virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet',
              'vmxnet3', 'igb')


def vif_model(image_meta):
    model = image_meta.properties.get('hw_vif_model') or 'virtio'
    if model not in VIF_MODELS:
        raise exception.InvalidImageProperty(
            name='hw_vif_model', value=model,
            reason='QEMU guests support NIC models %s' % ', '.join(
                VIF_MODELS))
    return model


def interface(vif, model):
    """A nova VIF (``nova.network.model.VIF``) as an ``<interface>``."""
    vif_type = vif['type']
    nic = dev.Interface(mac_address=vif['address'], model=model)
    details = vif.get('details') or {}
    network = vif.get('network') or {}
    mtu = (network.get('meta') or {}).get('mtu')
    if vif_type in ('bridge', 'ovs'):
        nic.type = 'bridge'
        nic.source_bridge = network.get('bridge') or details.get(
            'bridge_name')
        if vif_type == 'ovs':
            nic.virtualport_type = 'openvswitch'
            nic.virtualport_interfaceid = vif.get('ovs_interfaceid') or \
                vif['id']
    elif vif_type in ('tap', 'ethernet'):
        nic.type = 'ethernet'
    elif vif_type == 'vhostuser':
        nic.type = 'vhostuser'
        nic.source_type = 'unix'
        nic.source_path = details.get('vhostuser_socket')
        nic.source_mode = details.get('vhostuser_mode', 'server')
    else:
        raise exception.NovaException(
            'VIF %s has type %r, which this driver cannot plug' % (
                vif.get('id'), vif_type))
    if vif.get('devname') and vif_type != 'vhostuser':
        nic.target_dev = vif['devname']
    if mtu:
        nic.mtu = int(mtu)
    return nic


def serial_console(log_file=None):
    """A pty serial whose output is also logged for get_console_output.

    ``log_file`` is a file of the instance directory, which storage lays
    out; with none the serial is not logged.
    """
    if not log_file:
        return dev.Serial(type='pty', target_port=0)
    return dev.Serial(type='pty', target_port=0, log_file=log_file,
                      log_append='off')


def graphics(conf):
    if not conf.vnc.enabled:
        return None
    vnc = dev.Graphics(type='vnc', autoport=True,
                       listen=conf.vnc.server_listen)
    keymap = conf.pyvirt.vnc_keymap
    if keymap:
        LOG.warning('[pyvirt] vnc_keymap = %s: a host-side keymap is not '
                    'needed with QEMU\'s extended key events and breaks '
                    'some layouts; leave it unset unless a client needs it.',
                    keymap)
        vnc.keymap = keymap
    return vnc


def video(domain_caps, image_meta, has_graphics):
    requested = image_meta.properties.get('hw_video_model')
    if not requested and not has_graphics:
        return None
    preferred = ('virtio', 'vga', 'cirrus')
    caps = domain_caps.device('video')
    if caps is None:
        # libvirt does not describe video devices here: nothing to check.
        model = requested or preferred[0]
    else:
        supported = caps.enum('modelType')
        model = requested or next(
            (m for m in preferred if m in supported), None)
        if model not in supported:
            raise exception.InvalidImageProperty(
                name='hw_video_model', value=model,
                reason='this host supports video models %s' % ', '.join(
                    supported))
    if model == 'none':
        return None
    return dev.Video(model=model)


def pointer(conf, image_meta, has_graphics, virt_type):
    """A USB tablet for guests with graphics, where the host has USB.

    Only QEMU machines have a USB bus; elsewhere nova's default
    ``pointer_model`` is ignored and an image asking for a tablet refused.
    """
    requested = image_meta.properties.get('hw_pointer_model')
    model = requested or conf.pointer_model
    if model in (None, 'ps2mouse'):
        return None
    if model != 'usbtablet':
        raise exception.InvalidImageProperty(
            name='hw_pointer_model', value=model,
            reason='supported: usbtablet, ps2mouse')
    if virt_type not in machine.QEMU_VIRT_TYPES:
        if requested:
            raise exception.InvalidImageProperty(
                name='hw_pointer_model', value=model,
                reason='a USB tablet needs a QEMU machine; this host runs '
                '%s guests' % virt_type)
        return None
    if not has_graphics:
        return None
    return dev.Input(type='tablet', bus='usb')


def rng(flavor, image_meta):
    model = image_meta.properties.get('hw_rng_model')
    if not model:
        return None
    if model != 'virtio':
        raise exception.InvalidImageProperty(
            name='hw_rng_model', value=model, reason='supported: virtio')
    specs = flavor.extra_specs or {}
    if str(specs.get('hw_rng:allowed', 'true')).lower() != 'true':
        return None
    device = dev.RNG(model='virtio', backend_model='random',
                     backend_path='/dev/urandom')
    if 'hw_rng:rate_bytes' in specs:
        device.rate_bytes = int(specs['hw_rng:rate_bytes'])
        device.rate_period = int(specs.get('hw_rng:rate_period', 1000))
    return device


def guest_agent(image_meta):
    if not image_meta.properties.get('hw_qemu_guest_agent', False):
        return None
    return dev.Channel(type='unix', source_mode='bind', target_type='virtio',
                       target_name=GUEST_AGENT_CHANNEL)


def memballoon(conf):
    balloon = dev.MemBalloon(model='virtio')
    period = conf.pyvirt.mem_stats_period_seconds
    if period and period > 0:
        balloon.stats_period = period
    return balloon
