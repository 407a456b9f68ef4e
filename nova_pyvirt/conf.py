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

"""Options of the ``[pyvirt]`` group, and the list of the driver's options.

Importing this module registers the group on nova's global ``CONF``
(:data:`nova.conf.CONF`), which is the object nova-compute parses its
configuration files into. :func:`list_opts` is the ``oslo.config.opts``
entry point used by ``oslo-config-generator --namespace nova_pyvirt``; it
also lists ``[pyvirt_sys_admin]``, the oslo.privsep options of the
driver's privsep daemon, which oslo.privsep registers itself when
:mod:`nova_pyvirt.privsep` is imported.

``[pyvirt]`` holds only what is specific to this driver. Where nova has an
option for a setting, the driver reads nova's (:data:`NOVA_OPTIONS`), which
``import nova.conf`` registers on the same ``CONF``; the configuration
reference lists them (doc/source/configuration.rst).
"""

import copy

from oslo_config import cfg
from oslo_config import types
from oslo_privsep import capabilities
from oslo_privsep import priv_context

import nova.conf

from nova_pyvirt import privsep

GROUP_NAME = 'pyvirt'

#: nova's own options the driver reads as ``(group, name)``, where the
#: libvirt driver reads them too; the driver has none of its own for these.
NOVA_OPTIONS = (
    ('DEFAULT', 'instances_path'),
    ('DEFAULT', 'preallocate_images'),
    ('image_cache', 'subdirectory_name'),
    ('image_cache', 'remove_unused_base_images'),
    ('image_cache', 'remove_unused_original_minimum_age_seconds'),
    ('libvirt', 'volume_clear'),
    ('libvirt', 'volume_clear_size'),
    ('libvirt', 'remote_filesystem_transport'),
)

pyvirt_group = cfg.OptGroup(
    GROUP_NAME,
    title='nova-pyvirt compute driver options',
    help="""
Options of the nova-pyvirt compute driver, loaded by nova-compute with
``[DEFAULT] compute_driver = pyvirt.PyVirtDriver``.

Only what is specific to this driver is here. Where nova has an option, the
driver reads nova's, as nova's libvirt driver does: %s.
""" % ', '.join('``[%s] %s``' % option for option in NOVA_OPTIONS))

# "x86_64=q35", "aarch64=virt-7.2": host architecture = machine type.
_MACHINE_TYPE_ITEM = types.String(
    regex=r'^[A-Za-z0-9_]+=[A-Za-z0-9_.+-]+$',
    type_name='arch=machine-type')

# "+pcid", "-vmx", "pcid", "sse4.1": optional sign, then a CPU feature name.
_CPU_FLAG_ITEM = types.String(
    regex=r'^[+-]?[A-Za-z0-9_.-]+$',
    type_name='[+|-]cpu-flag')

hypervisor_opts = [
    cfg.StrOpt(
        'virt_type',
        default='kvm',
        choices=[
            ('kvm', 'Hardware-accelerated guests (``<domain type="kvm">``); '
                    'needs a usable ``/dev/kvm``.'),
            ('qemu', 'Software emulation with QEMU TCG '
                     '(``<domain type="qemu">``); slow, but runs anywhere.'),
            ('test', "libvirt's test driver (``<domain type=\"test\">``, "
                     '``test:///default`` or ``test:///<node file>``): '
                     'guests are only simulated. For developing and testing '
                     'scheduling, never for real workloads.'),
        ],
        help="""
Domain type of the guests this host runs.

Related options:

* ``connection_uri``: derived from this option when left empty.
* ``cpu_mode``: its default depends on this option.
"""),
    cfg.StrOpt(
        'connection_uri',
        default='',
        help="""
libvirt connection URI.

Empty (the default) means the URI derived from ``virt_type``, which is
``qemu:///system`` for both ``kvm`` and ``qemu``, and ``test:///default``
for ``test``. Any URI of libvirt's QEMU driver may be given (of its test
driver with ``virt_type = test``). For example
``qemu:///embed?root=/var/lib/nova-pyvirt/qemu`` runs QEMU through libvirt's
embedded QEMU driver inside the nova-compute process, with no libvirt daemon
(one embedded root per process, and no libvirt secrets in that mode).

Remote URIs authenticate with libvirt's own lookup and nothing else:
``qemu+tls://HOST/system`` with the client certificate, key and CA of
``?pkipath=DIR`` (or libvirt's default PKI paths), ``qemu+tcp://HOST/system``
with the SASL user name and password of libvirt's ``auth.conf``
(``$XDG_CONFIG_HOME/libvirt/auth.conf`` of the service user, for example),
``qemu+ssh://USER@HOST/system`` with the service user's ssh key. Nothing is
prompted for; a missing or wrong credential fails ``init_host`` with an
error naming the URI and the auth scheme.
"""),
]

cpu_opts = [
    cfg.StrOpt(
        'cpu_mode',
        default=None,
        choices=[
            ('host-model', 'Copy the host CPU model and feature flags '
                           '(libvirt ``host-model``).'),
            ('host-passthrough', 'Expose the host CPU exactly; live '
                                 'migration then needs identical hosts.'),
            ('custom', 'Use the first model of ``cpu_models`` that the host '
                       'supports.'),
            ('none', 'Write no ``<cpu>`` element: QEMU picks its default '
                     'model.'),
        ],
        help="""
CPU mode of the guests.

Unset (the default) means ``host-model`` when ``virt_type`` is ``kvm`` and
no ``<cpu>`` element (as ``none``) when ``virt_type`` is ``qemu``.

Related options:

* ``cpu_models``: required when this option is ``custom``, and only used then.
* ``cpu_model_extra_flags``
"""),
    cfg.ListOpt(
        'cpu_models',
        default=[],
        help="""
Ordered list of named CPU models (as listed by ``virsh cpu-models x86_64``)
for ``cpu_mode = custom``, most widely supported first, for example
``Nehalem,SandyBridge,Haswell-noTSX``. Guests get the first model the host
can run; models it cannot run may stay listed (for other hosts) as long as
one can run here.
"""),
    cfg.ListOpt(
        'cpu_model_extra_flags',
        item_type=_CPU_FLAG_ITEM,
        default=[],
        help="""
CPU feature flags to enable or disable on top of the CPU model.

``+flag`` or a bare ``flag`` enables the feature, ``-flag`` disables it;
names are case-insensitive. Example: ``+pcid, -vmx, ssbd``. Applies to
``host-model`` and ``custom`` CPU modes.
"""),
    cfg.ListOpt(
        'hw_machine_type',
        item_type=_MACHINE_TYPE_ITEM,
        default=None,
        help="""
Default machine type per host architecture, as ``arch=machine-type`` pairs,
for example ``x86_64=q35``. Values can be checked with
``virsh domcapabilities``. An image property ``hw_machine_type`` takes
precedence; unset means libvirt's default machine type for the architecture.
"""),
]

storage_opts = [
    cfg.StrOpt(
        'images_type',
        default='qcow2',
        choices=[
            ('qcow2', 'A qcow2 overlay per disk, backed by a cached base '
                      'image.'),
            ('raw', 'A full raw copy of the image per disk.'),
            ('lvm', 'A logical volume per disk in ``images_volume_group``.'),
        ],
        help='Backend that holds the ephemeral disks of instances.'),
    cfg.StrOpt(
        'images_volume_group',
        help="""
LVM volume group in which instance disks are created.

Related options:

* ``images_type``: required when it is ``lvm``.
"""),
]

volume_opts = [
    cfg.StrOpt(
        'iscsi_transport',
        default='kernel',
        choices=[
            ('kernel', 'The host logs in with its iSCSI initiator (os-brick) '
                       'and the guest gets the block device.'),
            ('qemu', 'QEMU connects to the target itself '
                     '(``<disk type="network">`` with protocol ``iscsi``); '
                     'nothing is attached on the host.'),
        ],
        help='How iSCSI volumes reach the guest.'),
    cfg.StrOpt(
        'nfs_transport',
        default='mount',
        choices=[
            ('mount', 'Mount the export under ``nfs_mount_point_base`` and '
                      'give the guest the file.'),
            ('qemu', "QEMU's own NFS client opens the file "
                     '(``<disk type="network">`` with protocol ``nfs``); '
                     'nothing is mounted on the host.'),
        ],
        help='How NFS volumes reach the guest.'),
    cfg.StrOpt(
        'nfs_mount_point_base',
        default='/var/lib/nova-pyvirt/mnt',
        help="""
Directory under which NFS exports are mounted, when ``nfs_transport`` is
``mount``.
"""),
    cfg.StrOpt(
        'nfs_mount_options',
        help="""
Options passed with ``-o`` to ``mount -t nfs``, for example
``vers=4.1,proto=tcp``, when ``nfs_transport`` is ``mount``. Unset means the
system defaults.
"""),
]

migration_opts = [
    cfg.StrOpt(
        'remote_ssh_user',
        help="""
User that ssh logs in as on the other compute hosts (cold migration, resize).
Unset: ssh's default, the user nova-compute runs as unless the ssh client
configuration names another.
"""),
    cfg.PortOpt(
        'remote_ssh_port',
        default=22,
        help="""
Port of sshd on the other compute hosts. Always passed to ssh (-p), so it
overrides a Port in the ssh client configuration.
"""),
    cfg.StrOpt(
        'remote_ssh_identity_file',
        help="""
Private key ssh authenticates with (IdentityFile, with IdentitiesOnly=yes).
Unset: ssh's default keys and agent. A file name may contain spaces and %,
not "${".
"""),
    cfg.BoolOpt(
        'remote_ssh_strict_host_key_checking',
        default=True,
        help="""
Refuse hosts whose key is not in the known-hosts file
(StrictHostKeyChecking=yes). False accepts any host key
(StrictHostKeyChecking=no) and, unless remote_ssh_known_hosts_file is set,
records none: for test environments only.
"""),
    cfg.StrOpt(
        'remote_ssh_known_hosts_file',
        help="""
Known-hosts file with the other compute hosts' keys (UserKnownHostsFile).
Unset: ssh's defaults (~/.ssh/known_hosts of the nova-compute user and
/etc/ssh/ssh_known_hosts).
"""),
    cfg.IntOpt(
        'remote_ssh_connect_timeout',
        default=30,
        min=1,
        help="""
Seconds ssh waits to connect to another compute host (ConnectTimeout).
"""),
    cfg.BoolOpt(
        'remote_copy_compression',
        default=False,
        help="""
Compress disk copies between hosts (``[libvirt]
remote_filesystem_transport``): ssh -C for the ssh transport, rsync
--compress for rsync. Costs CPU; helps on slow links with compressible data.
With the rsync transport it also keeps the holes of sparse files, which rsync
sends as zeros, off the network.
"""),
]

live_migration_opts = [
    cfg.StrOpt(
        'live_migration_scheme',
        default='tls',
        choices=[
            ('tls', 'libvirt over TLS with client certificates '
                    '(``qemu+tls://``, port 16514 by default).'),
            ('tcp', 'libvirt over TCP, authenticated with SASL '
                    '(``qemu+tcp://``).'),
            ('ssh', "libvirt's ssh transport (``qemu+ssh://``)."),
        ],
        help="""
Transport of the connection that the source host's libvirtd opens to the
destination's libvirtd during a live migration (peer-to-peer). The URI is
``qemu+SCHEME://ADDRESS/system`` where ADDRESS is the destination's
``live_migration_inbound_addr``, or its host name when that is unset.

Related options:

* ``live_migration_uri``: when set, replaces the URI built from this option.
* ``live_migration_inbound_addr``
"""),
    cfg.StrOpt(
        'live_migration_uri',
        help="""
Template of the destination's libvirt URI for live migration, with ``%s``
where the destination's address goes, for example
``qemu+tls://%s:16514/system?pkipath=/etc/pki/libvirt-migration``.
Unset (the default): built from ``live_migration_scheme``. The URI is opened
by the source host's libvirtd, so files it names (``pkipath=``) are that
daemon's. Read once when nova-compute starts.
"""),
    cfg.StrOpt(
        'live_migration_inbound_addr',
        help="""
Address (IP or host name) other hosts reach this host at for incoming live
migrations: the source's libvirtd connects to this host's libvirtd there,
and QEMU's migration stream (and block migration's NBD stream) is sent to
it. Unset: this host's name (nova's ``[DEFAULT] host``), which must then
resolve on the other hosts. Point it at a dedicated migration network to
keep migrations off the management network. Read once when nova-compute
starts.
"""),
    cfg.BoolOpt(
        'live_migration_with_native_tls',
        default=False,
        help="""
Encrypt QEMU's migration stream, and the block migration NBD stream, with
QEMU's native TLS (``VIR_MIGRATE_TLS``). Needs certificates for QEMU on
every host (``migrate_tls_x509_cert_dir`` or ``default_tls_x509_cert_dir``
in libvirt's ``qemu.conf``). Unlike ``live_migration_tunnelled`` it keeps
QEMU's own data path and so costs little. Takes precedence over
``live_migration_tunnelled``.
"""),
    cfg.BoolOpt(
        'live_migration_tunnelled',
        default=False,
        help="""
Tunnel the migration data through the libvirt connection between the
daemons (``VIR_MIGRATE_TUNNELLED``), so it is encrypted whenever that
connection is (``live_migration_scheme = tls``). libvirt copies every byte
through both daemons: slower and more CPU than
``live_migration_with_native_tls``, and only one network port is needed.
"""),
    cfg.IntOpt(
        'live_migration_bandwidth',
        default=0,
        min=0,
        help="""
Maximum bandwidth of a live migration, in MiB/s. Zero (the default) lets
libvirt and QEMU choose (no limit).
"""),
    cfg.IntOpt(
        'live_migration_downtime',
        default=500,
        min=100,
        help="""
Maximum pause, in milliseconds, that the guest is allowed at the end of a
live migration, reached in ``live_migration_downtime_steps`` steps.

Related options:

* ``live_migration_downtime_steps``
* ``live_migration_downtime_delay``
"""),
    cfg.IntOpt(
        'live_migration_downtime_steps',
        default=10,
        min=3,
        help="""
Number of steps in which the allowed pause grows to
``live_migration_downtime``: a migration that does not converge is allowed
a longer pause as time goes on.
"""),
    cfg.IntOpt(
        'live_migration_downtime_delay',
        default=75,
        min=3,
        help="""
Seconds per GiB of data to migrate (memory, plus local disks for a block
migration) between two steps of the allowed pause.
"""),
    cfg.IntOpt(
        'live_migration_completion_timeout',
        default=800,
        min=0,
        mutable=True,
        help="""
Seconds per GiB of data to migrate (memory, plus local disks for a block
migration) that a live migration may take before
``live_migration_timeout_action`` is taken. Zero: no timeout.
"""),
    cfg.StrOpt(
        'live_migration_timeout_action',
        default='abort',
        choices=[
            ('abort', 'Cancel the migration; the guest keeps running on the '
                      'source.'),
            ('force_complete', 'Complete it: switch to post-copy when '
                               '``live_migration_permit_post_copy`` is on, '
                               'else pause the guest until the rest is '
                               'copied.'),
        ],
        mutable=True,
        help="""
What happens to a live migration that ran past
``live_migration_completion_timeout``.
"""),
    cfg.BoolOpt(
        'live_migration_permit_post_copy',
        default=False,
        help="""
Allow a live migration to switch to post-copy (``VIR_MIGRATE_POSTCOPY``):
the guest runs on the destination while its remaining memory is fetched
from the source on demand. Used by force-complete and by the
``force_complete`` timeout action. A network failure during post-copy
loses the guest: it then lives on neither host completely. Takes
precedence over ``live_migration_permit_auto_converge`` when the migration
is forced.
"""),
    cfg.BoolOpt(
        'live_migration_permit_auto_converge',
        default=False,
        help="""
Allow QEMU to throttle the guest's vCPUs when memory is dirtied faster than
it is copied (``VIR_MIGRATE_AUTO_CONVERGE``), so that busy guests still
converge; they run slower while migrating.
"""),
    cfg.FloatOpt(
        'live_migration_progress_interval',
        default=5.0,
        min=0.5,
        help="""
Minimum seconds between two saves of a running live migration's progress
(the migration's memory and disk counters, the instance's progress). The
job statistics are read more often; saving less often keeps the database
load bounded.
"""),
]

guest_opts = [
    cfg.IntOpt(
        'mem_stats_period_seconds',
        default=10,
        help="""
Period in seconds of the guest memory balloon statistics. Zero or a
negative value disables the statistics.
"""),
    cfg.IntOpt(
        'wait_soft_reboot_seconds',
        default=120,
        min=1,
        help="""
Seconds to wait for a guest to shut down after an ACPI power-button
request during a soft reboot before falling back to a hard reboot.
"""),
    cfg.IntOpt(
        'live_device_detach_timeout',
        default=30,
        min=1,
        help="""
Seconds to wait for the guest to release a device (disk, interface) that is
being detached from a running instance before the detach is reported as
failed.
"""),
    cfg.StrOpt(
        'disk_cachemode',
        default='none',
        choices=[
            ('none', 'No host page cache (O_DIRECT); host writes are not '
                     'cached, the guest sees a write cache it must flush.'),
            ('writethrough', 'Host page cache for reads; every write is '
                             'flushed to disk.'),
            ('writeback', 'Host page cache for reads and writes; guest '
                          'flushes reach the disk.'),
            ('directsync', 'O_DIRECT and every write flushed.'),
            ('unsafe', 'Host page cache and guest flushes ignored: for '
                       'throw-away test guests only.'),
            ('default', "QEMU's default."),
        ],
        help="""
Host page cache mode of instance-local disks (libvirt ``<driver cache>``).
``none`` bypasses the host cache (O_DIRECT), which is safe and what live
migration needs; use ``writeback`` where the instances path lives on a
filesystem without O_DIRECT support, such as tmpfs. Volumes always use
``none``.
"""),
    cfg.StrOpt(
        'vnc_keymap',
        default=None,
        help="""
Keymap of the VNC server, for example ``en-us``. Leave unset: QEMU's
extended key events let VNC clients send scancodes, so a host-side keymap is
unnecessary and breaks some layouts. A configured keymap is honoured and
logged as a warning.
"""),
]

ALL_OPTS = (hypervisor_opts + cpu_opts + storage_opts + volume_opts +
            migration_opts + live_migration_opts + guest_opts)

CONF = nova.conf.CONF


def register_opts(conf):
    """Register the ``[pyvirt]`` group and its options on ``conf``.

    Safe to call more than once on the same ``ConfigOpts``.
    """
    conf.register_group(pyvirt_group)
    conf.register_opts(ALL_OPTS, group=pyvirt_group)


privsep_group = cfg.OptGroup(
    privsep.CONFIG_SECTION,
    title="nova-pyvirt's privsep daemon",
    help="""
oslo.privsep options of the daemon that runs the driver's root operations
(lvm2, writes to volume devices, unmounting NFS exports). nova-compute
starts it as it starts nova's own, with ``privsep-helper --privsep_context
nova_pyvirt.privsep.sys_admin_pctxt`` through its root helper, unless
``helper_command`` is set.
""")


def privsep_opts():
    """oslo.privsep's options, with this daemon's default capabilities."""
    opts = copy.deepcopy(priv_context.OPTS)
    for opt in opts:
        if opt.dest == 'capabilities':
            opt.default = list(privsep.CAPABILITIES)
            opt.sample_default = ','.join(
                capabilities.CAPS_BYVALUE[cap]
                for cap in privsep.CAPABILITIES)
    return opts


def list_opts():
    """The ``oslo.config.opts`` entry point.

    ``[(pyvirt group, [opts]), (privsep group, [oslo.privsep's opts])]``:
    groups, not names, so the sample configuration carries their help.
    """
    return [(pyvirt_group, list(ALL_OPTS)), (privsep_group, privsep_opts())]


register_opts(CONF)
