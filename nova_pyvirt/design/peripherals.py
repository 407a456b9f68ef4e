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

from nova.network import model as network_model
from nova.virt import hardware

from nova_pyvirt.design import machine
from nova_pyvirt.design import supported
from nova_pyvirt import exception
from nova_pyvirt.xml import devices as dev

LOG = logging.getLogger(__name__)

GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0'
VIF_MODELS = ('virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet',
              'vmxnet3', 'igb')
SUPPORTED_VIF_TYPES = (network_model.VIF_TYPE_OVS, network_model.VIF_TYPE_TAP)
# libvirt's own default period of an RNG rate limit, in milliseconds.
DEFAULT_RNG_PERIOD_MS = 1000
# The kernel's limit of queues per tap device (since Linux 4.0).
MAX_TAP_QUEUES = 256


def vif_model(image_meta, domain_caps=None):
    """The NIC model of ``hw_vif_model`` (virtio by default).

    libvirt 9 does not list NIC models in its domain capabilities, so the
    host's QEMU models are the ones checked (the same list the host
    reports as ``COMPUTE_NET_VIF_MODEL_*`` traits); a libvirt that does
    list them (an ``<interface>`` with a ``modelType`` enum) is believed.
    """
    model = image_meta.properties.get('hw_vif_model') or 'virtio'
    supported = VIF_MODELS
    caps = domain_caps.device('interface') if domain_caps is not None \
        else None
    if caps is not None and caps.enum('modelType'):
        supported = tuple(caps.enum('modelType'))
    if model not in supported:
        raise exception.InvalidImageProperty(
            name='hw_vif_model', value=model,
            reason='accepted: the NIC models of QEMU guests, %s'
            % ', '.join(supported))
    return model


def vif_queues(conf, flavor, image_meta, model):
    """Queues of each virtio NIC: None, or one per vCPU, capped.

    As nova's libvirt driver: ``hw_vif_multiqueue_enabled`` (image) or
    ``hw:vif_multiqueue_enabled`` (flavor) gives a virtio NIC one queue
    pair per vCPU, at most ``[libvirt] max_queues``. When that is unset
    nova caps by kernel version; every kernel this driver supports (4.0 and
    later) allows 256 queues per tap, so 256 is the cap (and design stays
    free of host reads).
    """
    if model != 'virtio':
        return None
    if not hardware.get_vif_multiqueue_constraint(flavor, image_meta):
        return None
    cap = conf.libvirt.max_queues or MAX_TAP_QUEUES
    return min(flavor.vcpus, cap)


def interfaces(conf, flavor, image_meta, network_info, domain_caps=None):
    """The ``<interface>`` of each port, in order.

    Spawn designs a guest's NICs with it, and hot-plug the one NIC of an
    attached port, so both write the same element for the same port.
    """
    if not network_info:
        return []
    model = vif_model(image_meta, domain_caps)
    queues = vif_queues(conf, flavor, image_meta, model)
    return [interface(vif, model, queues) for vif in network_info]


def hybrid_bridge_name(vif):
    """The ``qbr`` Linux bridge os-vif builds for a hybrid-plugged port."""
    return ('qbr' + vif['id'])[:network_model.NIC_NAME_LEN]


def interface(vif, model, queues=None):
    """A nova VIF (``nova.network.model.VIF``) as an ``<interface>``.

    ``vif_type=ovs`` plugged directly is a bridge interface on the
    integration bridge whose ``<virtualport type='openvswitch'>`` carries
    the Neutron port id, so libvirt adds the tap to OVS with
    ``external_ids:iface-id`` set, which is how the OVS agent (or OVN)
    finds the port. Hybrid-plugged (``details['ovs_hybrid_plug']``), the
    tap goes on the port's ``qbr`` Linux bridge instead, and os-vif has
    joined that bridge to OVS: no virtualport. ``vif_type=tap`` is an
    ethernet interface on the tap device the network package created
    (``managed='no'``: libvirt must neither create nor delete it).
    """
    vif_type = vif.get('type')
    if vif_type not in SUPPORTED_VIF_TYPES:
        raise exception.UnsupportedVifType(
            port_id=vif.get('id'), vif_type=vif_type,
            supported=', '.join(SUPPORTED_VIF_TYPES))
    details = vif.get('details') or {}
    network = vif.get('network') or {}
    # libvirt writes MACs in lower case.
    nic = dev.Interface(mac_address=vif['address'].lower())
    if vif_type == network_model.VIF_TYPE_OVS:
        nic.type = 'bridge'
        if details.get(network_model.VIF_DETAILS_OVS_HYBRID_PLUG):
            nic.source_bridge = hybrid_bridge_name(vif)
        else:
            nic.source_bridge = network.get('bridge') or details.get(
                'bridge_name')
            nic.virtualport_type = 'openvswitch'
            nic.virtualport_interfaceid = vif.get('ovs_interfaceid') or \
                vif['id']
        if vif.get('devname'):
            nic.target_dev = vif['devname']
    else:
        nic.type = 'ethernet'
        nic.target_dev = vif['devname']
        nic.target_managed = False
    if model:
        nic.model = model
    if queues:
        # vhost: the kernel's virtio-net backend, which multiqueue needs.
        nic.driver_name = 'vhost'
        nic.driver_queues = queues
    mtu = (network.get('meta') or {}).get('mtu')
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


def graphics(conf, quiet=False):
    """The VNC display, or None; ``quiet``: no warning (validation asks)."""
    if not conf.vnc.enabled:
        return None
    vnc = dev.Graphics(type='vnc', autoport=True,
                       listen=conf.vnc.server_listen)
    keymap = conf.pyvirt.vnc_keymap
    if keymap:
        if not quiet:
            LOG.warning('[pyvirt] vnc_keymap = %s: a host-side keymap is '
                        'not needed with QEMU\'s extended key events and '
                        'breaks some layouts; leave it unset unless a '
                        'client needs it.', keymap)
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
                reason='accepted on this host: %s' % ', '.join(
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
            reason='accepted: usbtablet, ps2mouse')
    if virt_type not in machine.QEMU_VIRT_TYPES:
        if requested:
            raise exception.InvalidImageProperty(
                name='hw_pointer_model', value=model,
                reason='a USB tablet needs a QEMU machine; this host runs '
                '%s guests; accepted: ps2mouse' % virt_type)
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
            name='hw_rng_model', value=model, reason='accepted: virtio')
    specs = flavor.extra_specs or {}
    if not supported.boolean(specs.get('hw_rng:allowed', 'true')):
        return None
    device = dev.RNG(model='virtio', backend_model='random',
                     backend_path='/dev/urandom')
    # 0 bytes is nova's "no limit", as an absent rate.
    rate_bytes = int(specs.get('hw_rng:rate_bytes', 0))
    if rate_bytes:
        device.rate_bytes = rate_bytes
        device.rate_period = int(specs.get('hw_rng:rate_period',
                                           DEFAULT_RNG_PERIOD_MS))
    return device


def guest_agent(image_meta):
    if not image_meta.properties.get('hw_qemu_guest_agent', False):
        return None
    # No <source>: libvirt makes the socket (bound, in the domain's own
    # directory) when the guest starts, and drops a pathless source from
    # the definition.
    return dev.Channel(type='unix', target_type='virtio',
                       target_name=GUEST_AGENT_CHANNEL)


def memballoon(conf):
    balloon = dev.MemBalloon(model='virtio')
    period = conf.pyvirt.mem_stats_period_seconds
    if period and period > 0:
        balloon.stats_period = period
    return balloon
