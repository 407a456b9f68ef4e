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

"""``nova-pyvirt render-xml``: print the domain XML the driver would write.

Operators see what will run before it runs: give a flavor, image properties,
ports (``--port``, ``--network-info``) and optionally saved host documents;
without them the local libvirt is asked (falling back to an embedded QEMU
driver when no daemon answers).
"""

import os
import re
import sys

import libvirt
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt.design import domain_builder
from nova_pyvirt.design import request
from nova_pyvirt.design import validation
from nova_pyvirt import exception
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host_facts
from nova_pyvirt.storage import instance_files

FLAVOR_FIELDS = {'vcpus': 'vcpus', 'ram': 'memory_mb', 'disk': 'root_gb',
                 'ephemeral': 'ephemeral_gb', 'swap': 'swap', 'name': 'name'}
EMBED_ROOT = os.path.join(os.path.expanduser('~'), '.cache', 'nova-pyvirt',
                          'embed')


class UsageError(Exception):
    pass


def _ignore_libvirt_error(context, error):
    # libvirt prints every error to stderr unless a handler is set; the
    # command reports the one that matters, once.
    pass


def parse_flavor(text):
    """``vcpus=2,ram=2048,disk=20,hw:cpu_sockets=2`` -> nova Flavor."""
    values = {'name': 'render-xml', 'vcpus': 1, 'memory_mb': 512,
              'root_gb': 1, 'ephemeral_gb': 0, 'swap': 0}
    extra_specs = {}
    for item in filter(None, (text or '').split(',')):
        key, sep, value = item.partition('=')
        if not sep:
            raise UsageError('--flavor item %r is not key=value' % item)
        key = key.strip()
        if key in FLAVOR_FIELDS:
            field = FLAVOR_FIELDS[key]
            if field != 'name':
                try:
                    value = int(value)
                except ValueError:
                    raise UsageError('--flavor %s=%r is not an integer'
                                     % (key, value))
            values[field] = value
        else:
            extra_specs[key] = value.strip()
    return objects.Flavor(extra_specs=extra_specs, **values)


def parse_image_properties(items):
    """Repeated ``k=v`` -> ImageMeta, checking each property on its own."""
    props = {}
    for item in items or []:
        key, sep, value = item.partition('=')
        if not sep:
            raise UsageError('--image-property %r is not key=value' % item)
        key = key.strip()
        if key not in objects.ImageMetaProps.fields:
            raise exception.InvalidImageProperty(
                name=key, value=value, reason='not an image property nova '
                'knows; accepted: the properties of nova\'s image '
                'metadata (doc/source/guest-inputs.rst)')
        try:
            objects.ImageMetaProps.from_dict({key: value})
        except ValueError as exc:
            raise exception.InvalidImageProperty(
                name=key, value=value, reason='%s; accepted: a value of '
                'the type nova defines for it' % exc)
        props[key] = value
    return objects.ImageMeta.from_dict({'properties': props})


PORT_HELP = ('a Neutron port as bound to the host (repeatable): '
             'TYPE:PORT_ID:MAC[:hybrid][:mtu=N], TYPE being ovs or tap; '
             'hybrid puts an ovs port on its qbr Linux bridge (ML2/OVS with '
             'the iptables firewall). E.g. --port ovs:'
             '3f0c6a52-8d0e-4b7b-9d7c-2a1e5c4b9f10:fa:16:3e:12:34:56')
MAC_RE = re.compile(r'^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$')


def parse_port(text, bridge='br-int'):
    """``ovs:PORT_ID:MAC[:hybrid][:mtu=N]`` -> a nova VIF, as Neutron binds.

    The VIF is the one nova hands the driver for a port ML2/OVS bound to
    this host: on ``bridge`` (nova's ``[neutron] ovs_bridge``), the tap
    named from the port id as Neutron names it.
    """
    parts = (text or '').split(':')
    if len(parts) < 8:
        raise UsageError('--port %r is not TYPE:PORT_ID:MAC[:hybrid]'
                         '[:mtu=N]' % text)
    vif_type, pid, mac, flags = (parts[0], parts[1], ':'.join(parts[2:8]),
                                 parts[8:])
    if not uuidutils.is_uuid_like(pid):
        raise UsageError('--port %r: %r is not a port UUID' % (text, pid))
    if not MAC_RE.match(mac):
        raise UsageError('--port %r: %r is not a MAC address' % (text, mac))
    hybrid = False
    meta = {}
    for flag in flags:
        if flag == 'hybrid' and vif_type == network_model.VIF_TYPE_OVS:
            hybrid = True
        elif flag.startswith('mtu=') and flag[4:].isdigit():
            meta['mtu'] = int(flag[4:])
        else:
            raise UsageError('--port %r: unknown flag %r (hybrid, mtu=N)'
                             % (text, flag))
    details = {network_model.VIF_DETAILS_PORT_FILTER: True}
    if vif_type == network_model.VIF_TYPE_OVS:
        details[network_model.VIF_DETAILS_OVS_HYBRID_PLUG] = hybrid
    network = network_model.Network(id=None, bridge=bridge, label='render',
                                    meta=meta)
    return network_model.VIF(
        id=pid, address=mac.lower(), type=vif_type, network=network,
        details=details, ovs_interfaceid=pid,
        devname=('tap' + pid)[:network_model.NIC_NAME_LEN], active=True)


def load_network_info(path):
    """A nova ``network_info`` JSON list (as in the instance info cache)."""
    try:
        with open(path) as handle:
            data = jsonutils.loads(handle.read())
    except (OSError, ValueError) as exc:
        raise UsageError('--network-info %s: %s' % (path, exc))
    if not isinstance(data, list):
        raise UsageError('--network-info %s: not a JSON list of VIFs'
                         % path)
    return network_model.NetworkInfo.hydrate(data)


def ports(args, conf):
    network_info = []
    if args.network_info:
        network_info.extend(load_network_info(args.network_info))
    bridge = conf.neutron.ovs_bridge
    network_info.extend(parse_port(text, bridge) for text in args.port)
    return network_info


def local_disks(instance_dir, flavor):
    disks = [request.LocalDisk('disk', os.path.join(instance_dir, 'disk'))]
    if flavor.ephemeral_gb:
        disks.append(request.LocalDisk(
            'disk.eph0', os.path.join(instance_dir, 'disk.eph0')))
    if flavor.swap:
        disks.append(request.LocalDisk(
            'disk.swap', os.path.join(instance_dir, 'disk.swap'),
            format='raw'))
    return disks


def gather_host_facts(args, conf, notices):
    """The host's facts; ``notices`` gets what to tell on success."""
    if args.capabilities or args.domain_capabilities:
        if not (args.capabilities and args.domain_capabilities):
            raise UsageError('--capabilities and --domain-capabilities go '
                             'together')
        return host_facts.from_files(args.capabilities,
                                     args.domain_capabilities)
    uri = args.connection_uri or conf.pyvirt.connection_uri
    # Read-write: libvirt refuses domain capabilities to read-only
    # connections, and nothing here changes the host.
    try:
        conn = connection.open_connection(
            uri or connection.default_uri(conf.pyvirt.virt_type))
    except libvirt.libvirtError as exc:
        if uri:
            raise UsageError('cannot connect to %s: %s' % (uri, exc))
        embedded = connection.prepare_embedded_root(EMBED_ROOT)
        notices.append('no libvirt daemon (%s); asked the embedded driver '
                       '%s' % (exc.get_error_message(), embedded))
        conn = connection.open_connection(embedded)
    return host_facts.from_connection(conn)


def render(args, conf, notices=None):
    """The design of the arguments' guest on the host they name.

    Inputs that need no host (the flavor's sizes, extra specs, image
    properties, options, ports) are checked before libvirt is asked
    anything; design checks the rest against the host.
    """
    notices = [] if notices is None else notices
    flavor = parse_flavor(args.flavor)
    image_meta = parse_image_properties(args.image_property)
    instance = objects.Instance(
        uuid=uuidutils.generate_uuid(), id=1, display_name='render-xml',
        user_id='render-xml', project_id='render-xml', os_type=None)
    files = instance_files.InstanceFiles(conf.instances_path,
                                         instance.uuid)
    guest_request = request.GuestRequest(
        instance, flavor, image_meta, files.path,
        local_disks=local_disks(files.path, flavor),
        network_info=ports(args, conf), console_log=files.console_log)
    validation.check_inputs(guest_request, conf)
    host = gather_host_facts(args, conf, notices)
    return domain_builder.design_guest(guest_request, conf, host)


_FLAVOR_KEYS = {field: key for key, field in FLAVOR_FIELDS.items()}


def argument_of(exc, args):
    """The command-line argument a validation error comes from, or None."""
    kwargs = exc.kwargs
    if isinstance(exc, exception.InvalidFlavor):
        return '--flavor %s=%s' % (_FLAVOR_KEYS.get(kwargs['name'],
                                                    kwargs['name']),
                                   kwargs['value'])
    if isinstance(exc, exception.InvalidFlavorExtraSpec):
        return '--flavor %s' % kwargs['name']
    if isinstance(exc, exception.InvalidImageProperty):
        return '--image-property %s' % kwargs['name']
    if isinstance(exc, exception.InvalidHostConfiguration):
        if kwargs.get('option') == 'virt_type' and args.virt_type:
            return '--virt-type %s' % args.virt_type
        return None
    if isinstance(exc, (exception.InvalidGuestDevice,
                        exception.UnsupportedVifType)) and \
            str(kwargs.get('device', 'Port')).startswith('Port'):
        return '--port' if args.port else '--network-info'
    return None


def _configure(parser):
    parser.add_argument('--flavor', default='vcpus=1,ram=512,disk=1',
                        help='vcpus=N,ram=MiB,disk=GiB[,ephemeral=GiB,'
                        'swap=MiB,name=NAME,extra_spec=value...]')
    parser.add_argument('--image-property', action='append', default=[],
                        metavar='KEY=VALUE', help='an image property '
                        '(repeatable), e.g. hw_disk_bus=scsi')
    parser.add_argument('--port', action='append', default=[],
                        metavar='TYPE:PORT_ID:MAC[:hybrid]', help=PORT_HELP)
    parser.add_argument('--network-info', metavar='FILE',
                        help='a nova network_info JSON list (the '
                        'instance_info_caches.network_info of an instance); '
                        'its ports come before those of --port')
    parser.add_argument('--virt-type', choices=['kvm', 'qemu', 'test'],
                        help='overrides [pyvirt] virt_type')
    parser.add_argument('--config', action='append', default=[],
                        metavar='NOVA_CONF', help='nova configuration file '
                        '(repeatable)')
    parser.add_argument('--capabilities', metavar='FILE',
                        help='host capabilities XML (virsh capabilities)')
    parser.add_argument('--domain-capabilities', metavar='FILE',
                        help='domain capabilities XML (virsh '
                        'domcapabilities)')
    parser.add_argument('--connection-uri', help='libvirt URI to ask '
                        'instead of [pyvirt] connection_uri')


def load_config(config_files, virt_type=None):
    conf = pyvirt_conf.CONF
    args = []
    for path in config_files:
        args += ['--config-file', path]
    conf(args, project='nova', default_config_files=[] if args else None)
    if virt_type:
        conf.set_override('virt_type', virt_type, group='pyvirt')
    return conf


def render_xml(args):
    """The command: the domain on stdout, or one error line and status 2."""
    objects.register_all()
    libvirt.registerErrorHandler(_ignore_libvirt_error, None)
    notices = []
    try:
        conf = load_config(args.config, args.virt_type)
        design = render(args, conf, notices)
    except exception.InvalidGuestInput as exc:
        argument = argument_of(exc, args)
        message = ' '.join(str(exc).split())
        print('nova-pyvirt render-xml: error: %s%s' % (
            argument + ': ' if argument else '', message), file=sys.stderr)
        return 2
    except (UsageError, nova_exception.NovaException,
            libvirt.libvirtError) as exc:
        print('nova-pyvirt render-xml: error: %s' % ' '.join(
            str(exc).split()), file=sys.stderr)
        return 2
    print(design.domain.to_xml())
    for notice in notices:
        print('nova-pyvirt render-xml: %s' % notice, file=sys.stderr)
    if design.machine_type:
        print('nova-pyvirt render-xml: machine type %s (stored with the '
              'instance)' % design.machine_type, file=sys.stderr)
    return 0


COMMANDS = [('render-xml', render_xml,
             'Print the domain XML the driver would generate.', _configure)]
