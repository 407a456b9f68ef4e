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

"""Guest devices: the children of a domain's ``<devices>`` element.

Each class declares the fields nova's libvirt driver writes or reads; any
other markup in a parsed device is kept untouched.
"""

from nova_pyvirt.xml.fields import Child
from nova_pyvirt.xml.fields import Children
from nova_pyvirt.xml.fields import Enum
from nova_pyvirt.xml.fields import Field
from nova_pyvirt.xml.fields import Flag
from nova_pyvirt.xml.fields import INT
from nova_pyvirt.xml.fields import ONOFF
from nova_pyvirt.xml.fields import Switch
from nova_pyvirt.xml.fields import Values
from nova_pyvirt.xml.fields import XMLObject
from nova_pyvirt.xml.fields import YESNO

DEVICE_CLASSES = {}


class Address(XMLObject):
    """A device address (pci, drive, virtio-serial, ccw, usb, ...)."""

    TAG = 'address'
    type = Field('@type')
    domain = Field('@domain')
    bus = Field('@bus')
    slot = Field('@slot')
    function = Field('@function')
    multifunction = Field('@multifunction')
    controller = Field('@controller')
    target = Field('@target')
    unit = Field('@unit')
    port = Field('@port')
    uuid = Field('@uuid')


class Device(XMLObject):
    """Fields every device may carry."""

    alias = Field('./alias/@name')
    address = Child('./address', Address)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.TAG:
            DEVICE_CLASSES.setdefault(cls.TAG, cls)


def device_for(element):
    """Wrap a ``<devices>`` child in its typed class (or a plain view)."""
    cls = DEVICE_CLASSES.get(element.tag, Device)
    return cls.wrap(element)


class DiskSourceHost(XMLObject):
    TAG = 'host'
    name = Field('@name')
    port = Field('@port')
    transport = Field('@transport')
    socket = Field('@socket')


class DiskAuth(XMLObject):
    """CHAP/ceph credentials: a username and a libvirt secret reference."""

    TAG = 'auth'
    username = Field('@username')
    secret_type = Field('./secret/@type')
    secret_usage = Field('./secret/@usage')
    secret_uuid = Field('./secret/@uuid')


class DiskEncryption(XMLObject):
    TAG = 'encryption'
    format = Field('@format')
    secret_type = Field('./secret/@type')
    secret_uuid = Field('./secret/@uuid')


class Slice(XMLObject):
    """A byte range of the source (``<slices><slice type='storage'/>``)."""

    TAG = 'slice'
    type = Field('@type')
    offset = Field('@offset', INT)
    size = Field('@size', INT)


class IOTune(XMLObject):
    TAG = 'iotune'
    group_name = Field('./group_name')
    total_bytes_sec = Field('./total_bytes_sec', INT)
    read_bytes_sec = Field('./read_bytes_sec', INT)
    write_bytes_sec = Field('./write_bytes_sec', INT)
    total_iops_sec = Field('./total_iops_sec', INT)
    read_iops_sec = Field('./read_iops_sec', INT)
    write_iops_sec = Field('./write_iops_sec', INT)
    total_bytes_sec_max = Field('./total_bytes_sec_max', INT)
    read_bytes_sec_max = Field('./read_bytes_sec_max', INT)
    write_bytes_sec_max = Field('./write_bytes_sec_max', INT)
    total_iops_sec_max = Field('./total_iops_sec_max', INT)
    read_iops_sec_max = Field('./read_iops_sec_max', INT)
    write_iops_sec_max = Field('./write_iops_sec_max', INT)
    size_iops_sec = Field('./size_iops_sec', INT)
    total_bytes_sec_max_length = Field('./total_bytes_sec_max_length', INT)
    read_bytes_sec_max_length = Field('./read_bytes_sec_max_length', INT)
    write_bytes_sec_max_length = Field('./write_bytes_sec_max_length', INT)
    total_iops_sec_max_length = Field('./total_iops_sec_max_length', INT)
    read_iops_sec_max_length = Field('./read_iops_sec_max_length', INT)
    write_iops_sec_max_length = Field('./write_iops_sec_max_length', INT)


# The limits, as nova's flavor extra specs and volume QoS specs name them.
IOTUNE_FIELDS = tuple(name for name, value in vars(IOTune).items()
                      if isinstance(value, Field) and value.kind is INT)


class Disk(Device):
    TAG = 'disk'
    ORDER = {'source': ('backingStore', 'mirror', 'geometry')}

    type = Field('@type', Enum('file', 'block', 'dir', 'network', 'volume',
                               'nvme', 'vhostuser'))
    device = Field('@device', Enum('disk', 'cdrom', 'floppy', 'lun'))
    model = Field('@model')
    snapshot = Field('@snapshot', Enum('no', 'internal', 'external',
                                       'manual'))
    driver_name = Field('./driver/@name')
    driver_type = Field('./driver/@type')
    driver_cache = Field('./driver/@cache', Enum(
        'default', 'none', 'writethrough', 'writeback', 'directsync',
        'unsafe'))
    driver_io = Field('./driver/@io', Enum('threads', 'native', 'io_uring'))
    driver_discard = Field('./driver/@discard', Enum('unmap', 'ignore'))
    driver_detect_zeroes = Field('./driver/@detect_zeroes')
    driver_iothread = Field('./driver/@iothread', INT)
    driver_queues = Field('./driver/@queues', INT)
    driver_error_policy = Field('./driver/@error_policy')
    auth = Child('./auth', DiskAuth)
    source_file = Field('./source/@file')
    source_dev = Field('./source/@dev')
    source_dir = Field('./source/@dir')
    source_protocol = Field('./source/@protocol')
    source_name = Field('./source/@name')
    source_pool = Field('./source/@pool')
    source_volume = Field('./source/@volume')
    source_mode = Field('./source/@mode')
    source_startup_policy = Field('./source/@startupPolicy')
    source_hosts = Children('./source/host', DiskSourceHost)
    source_auth = Child('./source/auth', DiskAuth)
    source_slices = Children('./source/slices/slice', Slice)
    source_identity_user = Field('./source/identity/@user')
    source_identity_group = Field('./source/identity/@group')
    source_initiator_iqn = Field('./source/initiator/iqn/@name')
    source_path = Switch('type', file=source_file, block=source_dev,
                         dir=source_dir)
    blockio_logical_block_size = Field('./blockio/@logical_block_size', INT)
    blockio_physical_block_size = Field('./blockio/@physical_block_size', INT)
    target_dev = Field('./target/@dev')
    target_bus = Field('./target/@bus')
    target_tray = Field('./target/@tray')
    target_removable = Field('./target/@removable')
    iotune = Child('./iotune', IOTune)
    readonly = Flag('./readonly')
    shareable = Flag('./shareable')
    transient = Flag('./transient')
    serial = Field('./serial')
    wwn = Field('./wwn')
    vendor = Field('./vendor')
    product = Field('./product')
    encryption = Child('./encryption', DiskEncryption)
    boot_order = Field('./boot/@order', INT)


class Controller(Device):
    TAG = 'controller'
    ORDER = {'.': ('model',)}
    type = Field('@type')
    index = Field('@index', INT)
    model = Field('@model')
    ports = Field('@ports', INT)
    vectors = Field('@vectors', INT)
    driver_queues = Field('./driver/@queues', INT)
    driver_iothread = Field('./driver/@iothread', INT)
    target_chassis = Field('./target/@chassis', INT)
    target_port = Field('./target/@port')


class FilterParameter(XMLObject):
    TAG = 'parameter'
    name = Field('@name')
    value = Field('@value')


class Interface(Device):
    TAG = 'interface'
    ORDER = {'virtualport': ('ip', 'route'), 'target': ('guest',),
             'driver': ('backend',), 'filterref': ('tune', 'teaming'),
             'bandwidth': ('port', 'coalesce')}

    type = Field('@type', Enum('bridge', 'network', 'ethernet', 'direct',
                               'vhostuser', 'user', 'hostdev', 'mcast',
                               'server', 'client', 'udp', 'vdpa',
                               'internal', 'null', 'vds'))
    trust_guest_rx_filters = Field('@trustGuestRxFilters', YESNO)
    mac_address = Field('./mac/@address')
    source_bridge = Field('./source/@bridge')
    source_network = Field('./source/@network')
    source_dev = Field('./source/@dev')
    source_mode = Field('./source/@mode')
    source_type = Field('./source/@type')
    source_path = Field('./source/@path')
    source_address = Child('./source/address', Address,
                           doc="a type='hostdev' interface's host device")
    vlan_tags = Values('./vlan/tag/@id')
    virtualport_type = Field('./virtualport/@type')
    virtualport_interfaceid = Field('./virtualport/parameters/@interfaceid')
    virtualport_profileid = Field('./virtualport/parameters/@profileid')
    virtualport_instanceid = Field('./virtualport/parameters/@instanceid')
    virtualport_managerid = Field('./virtualport/parameters/@managerid',
                                  INT)
    virtualport_typeid = Field('./virtualport/parameters/@typeid', INT)
    virtualport_typeidversion = Field(
        './virtualport/parameters/@typeidversion', INT)
    script_path = Field('./script/@path')
    target_dev = Field('./target/@dev')
    target_managed = Field('./target/@managed', YESNO)
    model = Field('./model/@type')
    driver_name = Field('./driver/@name')
    driver_packed = Field('./driver/@packed', ONOFF)
    driver_queues = Field('./driver/@queues', INT)
    driver_rx_queue_size = Field('./driver/@rx_queue_size', INT)
    driver_tx_queue_size = Field('./driver/@tx_queue_size', INT)
    filterref = Field('./filterref/@filter')
    filterref_parameters = Children('./filterref/parameter', FilterParameter)
    link_state = Field('./link/@state', Enum('up', 'down'))
    mtu = Field('./mtu/@size', INT)
    bandwidth_inbound_average = Field('./bandwidth/inbound/@average', INT)
    bandwidth_inbound_peak = Field('./bandwidth/inbound/@peak', INT)
    bandwidth_inbound_burst = Field('./bandwidth/inbound/@burst', INT)
    bandwidth_outbound_average = Field('./bandwidth/outbound/@average', INT)
    bandwidth_outbound_peak = Field('./bandwidth/outbound/@peak', INT)
    bandwidth_outbound_burst = Field('./bandwidth/outbound/@burst', INT)
    rom_bar = Field('./rom/@bar')
    boot_order = Field('./boot/@order', INT)


class CharDevice(Device):
    """serial, console, parallel and channel devices share this shape."""

    type = Field('@type')
    source_path = Field('./source/@path')
    source_mode = Field('./source/@mode')
    source_host = Field('./source/@host')
    source_service = Field('./source/@service')
    protocol_type = Field('./protocol/@type')
    log_file = Field('./log/@file')
    log_append = Field('./log/@append')
    target_type = Field('./target/@type')
    target_port = Field('./target/@port', INT)
    target_name = Field('./target/@name')
    target_model = Field('./target/model/@name')


class Serial(CharDevice):
    TAG = 'serial'


class Console(CharDevice):
    TAG = 'console'


class Parallel(CharDevice):
    TAG = 'parallel'


class Channel(CharDevice):
    TAG = 'channel'


class GraphicsListen(XMLObject):
    TAG = 'listen'
    type = Field('@type', Enum('address', 'network', 'socket', 'none'))
    address = Field('@address')
    network = Field('@network')
    socket = Field('@socket')


class Graphics(Device):
    TAG = 'graphics'
    type = Field('@type', Enum('vnc', 'spice', 'sdl', 'rdp', 'desktop',
                               'egl-headless', 'dbus'))
    port = Field('@port', INT)
    autoport = Field('@autoport', YESNO)
    websocket = Field('@websocket', INT)
    listen = Field('@listen')
    passwd = Field('@passwd')
    keymap = Field('@keymap')
    listens = Children('./listen', GraphicsListen)


class Video(Device):
    TAG = 'video'
    model = Field('./model/@type')
    vram = Field('./model/@vram', INT)
    heads = Field('./model/@heads', INT)
    primary = Field('./model/@primary', YESNO)


class Input(Device):
    TAG = 'input'
    type = Field('@type', Enum('mouse', 'tablet', 'keyboard', 'passthrough',
                               'evdev'))
    bus = Field('@bus')


class Sound(Device):
    TAG = 'sound'
    model = Field('@model')


class MemBalloon(Device):
    TAG = 'memballoon'
    model = Field('@model')
    autodeflate = Field('@autodeflate', Enum('on', 'off'))
    stats_period = Field('./stats/@period', INT)


class RNG(Device):
    TAG = 'rng'
    model = Field('@model')
    rate_bytes = Field('./rate/@bytes', INT)
    rate_period = Field('./rate/@period', INT)
    backend_model = Field('./backend/@model')
    backend_path = Field('./backend')


class Watchdog(Device):
    TAG = 'watchdog'
    model = Field('@model')
    action = Field('@action')


class HostdevPCI(Device):
    """A host device; typed fields cover PCI passthrough and mdevs.

    A mediated device is ``type='mdev'`` with ``model`` and its
    ``source_address.uuid``.
    """

    TAG = 'hostdev'
    ORDER = {'boot': ('rom',)}
    mode = Field('@mode')
    type = Field('@type')
    managed = Field('@managed', YESNO)
    model = Field('@model', doc="an mdev's model, e.g. vfio-pci")
    driver_name = Field('./driver/@name')
    source_address = Child('./source/address', Address)
    boot_order = Field('./boot/@order', INT)


class TPM(Device):
    TAG = 'tpm'
    model = Field('@model')
    backend_type = Field('./backend/@type')
    backend_version = Field('./backend/@version')
    backend_device_path = Field('./backend/device/@path')
    backend_encryption_secret = Field('./backend/encryption/@secret')


class Panic(Device):
    TAG = 'panic'
    model = Field('@model')


class Filesystem(Device):
    TAG = 'filesystem'
    ORDER = {'driver': ('binary',), 'target': ('idmap',),
             'readonly': ('space_hard_limit', 'space_soft_limit')}
    type = Field('@type')
    accessmode = Field('@accessmode')
    driver_type = Field('./driver/@type')
    driver_format = Field('./driver/@format')
    source_dir = Field('./source/@dir')
    source_file = Field('./source/@file')
    source_dev = Field('./source/@dev')
    target_dir = Field('./target/@dir')
    readonly = Flag('./readonly')


class Vsock(Device):
    TAG = 'vsock'
    model = Field('@model')
    cid_auto = Field('./cid/@auto', YESNO)
    cid_address = Field('./cid/@address', INT)
