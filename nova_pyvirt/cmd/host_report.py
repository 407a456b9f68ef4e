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

"""``nova-pyvirt host-report``: what this host tells nova's scheduler.

Reads nova's configuration like nova-compute, connects to the same libvirt
and prints the supported instances, traits, placement inventory, CPU mode
and machine types the driver reports, as text or as JSON. The connection
is always closed again; errors are one line on stderr.
"""

import contextlib
import logging
import sys
import textwrap

import libvirt
from oslo_config import cfg
from oslo_serialization import jsonutils

from nova import exception as nova_exception

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt.hypervisor import connection
from nova_pyvirt.hypervisor import host as host_mod
from nova_pyvirt.report import host_summary

PROG = 'nova-pyvirt host-report'
# (key, column heading) of the placement inventory table.
INVENTORY_FIELDS = (('total', 'TOTAL'), ('reserved', 'RESERVED'),
                    ('allocation_ratio', 'RATIO'), ('min_unit', 'MIN'),
                    ('max_unit', 'MAX'), ('step_size', 'STEP'))
WIDTH = 78


class UsageError(Exception):
    pass


def virt_types():
    """The values ``[pyvirt] virt_type`` accepts."""
    opt = next(o for o in pyvirt_conf.hypervisor_opts
               if o.name == 'virt_type')
    return list(opt.type.choices)


def _configure(parser):
    parser.add_argument('--config-file', '--config', dest='config',
                        action='append', default=[], metavar='PATH',
                        help="nova configuration file (repeatable; as "
                        "nova-compute's). Default: oslo.config's search "
                        "path (/etc/nova/nova.conf, ...)")
    parser.add_argument('--connection-uri', '--uri', dest='connection_uri',
                        metavar='URI', help='libvirt URI to report on '
                        'instead of [pyvirt] connection_uri')
    parser.add_argument('--virt-type', metavar='{%s}' % ','.join(
                        virt_types()), help='overrides [pyvirt] virt_type')
    parser.add_argument('--format', choices=['text', 'json'],
                        default='text', help='output format (default: text)')


def load_config(config_files):
    conf = pyvirt_conf.CONF
    args = []
    for path in config_files:
        args += ['--config-file', path]
    conf(args, project='nova', default_config_files=[] if args else None)
    return conf


def resolve_target(args, conf):
    """``(uri, virt_type)`` from the arguments, else the configuration."""
    if args.virt_type is not None and args.virt_type not in virt_types():
        raise UsageError('--virt-type %r is not one of %s' % (
            args.virt_type, ', '.join(virt_types())))
    virt_type = args.virt_type or conf.pyvirt.virt_type
    uri = (args.connection_uri or conf.pyvirt.connection_uri or
           connection.default_uri(virt_type))
    return uri, virt_type


@contextlib.contextmanager
def _quiet_logging():
    """Keep the driver's log records off stderr: errors are reported once.

    Without any handler, Python prints WARNING and above to stderr; a
    handler that drops records prevents that, and a configured logging
    (a test's capture) is left as it is.
    """
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def collect(uri, conf, virt_type):
    """Connect to ``uri``, gather the report and close the connection.

    Read-write like nova-compute: libvirt refuses domain capabilities, and
    with them the device traits, on read-only connections. Nothing is
    changed on the host.
    """
    host = host_mod.Host(uri, reconnect_interval=None)
    try:
        host.initialize()
        return host_summary.gather(host, conf, virt_type)
    finally:
        host.cleanup()


# -- text output -------------------------------------------------------------

def _wrapped(items, indent='    '):
    return textwrap.wrap(', '.join(items), WIDTH, initial_indent=indent,
                         subsequent_indent=indent, break_on_hyphens=False)


def _table(header, rows):
    widths = [max(len(str(row[i])) for row in [header] + rows)
              for i in range(len(header))]
    return ['  ' + '  '.join(str(cell).ljust(width) for cell, width
                             in zip(row, widths)).rstrip()
            for row in [header] + rows]


def _value(value):
    return '-' if value is None or value == '' else str(value)


def _host_section(report):
    hv = report['hypervisor_version']
    lv = report['libvirt_version']
    rows = [('libvirt URI', report['uri']),
            ('virt type', report['virt_type']),
            ('hypervisor host name', report['hypervisor_hostname']),
            ('libvirt version', '%s (%s)' % (lv['dotted'], lv['number'])),
            ('hypervisor type', report['hypervisor_type']),
            ('hypervisor version', '%s (%s)' % (hv['dotted'],
                                                hv['number']))]
    return ['Host'] + ['  %-21s %s' % (name + ':', _value(value))
                       for name, value in rows]


def _supported_instances_section(report):
    lines = ['Supported instances (architecture, hypervisor type, vm mode)']
    entries = [tuple(e) for e in report['supported_instances']]
    if not entries:
        return lines + ['  none']
    return lines + _table(('ARCH', 'HV TYPE', 'VM MODE'), entries)[1:]


def _traits_section(report):
    lines = ['Traits (%d)' % len(report['traits'])]
    return lines + (['  ' + t for t in report['traits']] or ['  none'])


def _cpu_section(report):
    cpu = report['cpu']
    if cpu['mode_configured']:
        mode = '%s ([pyvirt] cpu_mode)' % cpu['mode']
    else:
        mode = '%s (default for virt type %s)' % (
            cpu['mode'], report['virt_type'])
    host_cpu = cpu['host']
    rows = [('mode', mode)]
    if cpu['mode'] == 'custom':
        rows.append(('models', ', '.join(cpu['models'])))
    if cpu['extra_flags']:
        rows.append(('extra flags', ', '.join(cpu['extra_flags'])))
    rows.append(('host CPU', '%s, vendor %s, arch %s' % (
        _value(host_cpu['model']), _value(host_cpu['vendor']),
        _value(host_cpu['arch']))))
    if cpu['mode'] == 'host-model':
        expanded = cpu['host_model']
        rows.append(('host-model', 'not offered by libvirt' if not expanded
                     else '%s, vendor %s' % (', '.join(expanded['models']),
                                             _value(expanded['vendor']))))
    return ['CPU'] + ['  %-12s %s' % (name + ':', value)
                      for name, value in rows]


def _machine_types_section(report):
    lines = ['Machine types (no traits exist for them; for information)']
    if not report['machine_types']:
        return lines + ['  none']
    shown = {}
    for arch, info in sorted(report['machine_types'].items()):
        machines = info['machines']
        lines.append('  %s: default %s' % (arch, _value(info['default'])))
        aliases = ['%s -> %s' % (name, target)
                   for name, target in machines.items() if name != target]
        if aliases:
            lines.append('    aliases: ' + ', '.join(aliases))
        others = [name for name, target in machines.items()
                  if name == target]
        same = next((seen for seen, names in shown.items()
                     if names == others), None)
        if same is not None and others:
            lines.append('    machine types (%d): as %s' % (len(others),
                                                            same))
        elif others:
            lines.append('    machine types (%d):' % len(others))
            lines += _wrapped(others, indent='      ')
        if not machines:
            lines.append('    none listed')
        shown[arch] = others
    return lines


def _inventory_section(report):
    lines = ['Placement inventory']
    rows = [[rc] + [_value(inv.get(key)) for key, _heading
                    in INVENTORY_FIELDS]
            for rc, inv in report['inventory'].items()]
    lines += _table(['RESOURCE CLASS'] + [heading for _key, heading
                                          in INVENTORY_FIELDS], rows)
    usage = report['usage']
    lines.append('  in use: %s of %s VCPU, %s of %s MEMORY_MB, %s of %s '
                 'DISK_GB' % (
                     _value(usage['vcpus_used']), _value(usage['vcpus']),
                     _value(usage['memory_mb_used']),
                     _value(usage['memory_mb']),
                     _value(usage['local_gb_used']),
                     _value(usage['local_gb'])))
    if report['images_type'] == 'lvm':
        lines.append('  disks: logical volumes ([pyvirt] images_type lvm)')
    else:
        lines.append('  disks: %s files in %s' % (
            report['images_type'], report['instances_path']))
    return lines


def format_text(report):
    """The readable report: short sections, each under a heading."""
    sections = [_host_section(report),
                _supported_instances_section(report),
                _traits_section(report),
                _cpu_section(report),
                _machine_types_section(report),
                _inventory_section(report)]
    if report['warnings']:
        sections.append(['Warnings'] + [
            line for warning in report['warnings']
            for line in textwrap.wrap(warning, WIDTH, initial_indent='  - ',
                                      subsequent_indent='    ')])
    return '\n\n'.join('\n'.join(lines) for lines in sections) + '\n'


def format_json(report):
    return jsonutils.dumps(report, indent=2, sort_keys=True) + '\n'


# -- the command -------------------------------------------------------------

def _one_line(exc):
    return ' '.join(str(exc).split())


def host_report_command(args):
    with _quiet_logging():
        try:
            conf = load_config(args.config)
            uri, virt_type = resolve_target(args, conf)
        except (UsageError, cfg.Error) as exc:
            print('%s: error: %s' % (PROG, _one_line(exc)), file=sys.stderr)
            return 2
        try:
            report = collect(uri, conf, virt_type)
        except cfg.Error as exc:
            print('%s: error: %s' % (PROG, _one_line(exc)), file=sys.stderr)
            return 2
        except (nova_exception.NovaException, libvirt.libvirtError) as exc:
            message = _one_line(exc)
            if uri not in message:
                message = 'libvirt at %s: %s' % (uri, message)
            print('%s: error: %s' % (PROG, message), file=sys.stderr)
            return 1
    if args.format == 'json':
        sys.stdout.write(format_json(report))
    else:
        sys.stdout.write(format_text(report))
    return 0


COMMANDS = [('host-report', host_report_command,
             "Print what this host reports to nova's scheduler and "
             'placement.', _configure)]
