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

"""The driver's root paths, run by an unprivileged nova-compute.

Run as a script by :mod:`test_unprivileged_compute`, as the fixture's
unprivileged user (:class:`tests.fixtures.unprivileged.ComputeUser`)::

    compute_host.py ACTION JSON

It reads ``/etc/nova/nova.conf`` and gets root as nova-compute gets it
(``nova/cmd/compute.py``): ``priv_context.init`` with nova's root helper
(``sudo nova-rootwrap /etc/nova/rootwrap.conf``) and ``os_brick.setup``;
the privsep daemons start on the first privileged call. Then it runs one
action, printing one JSON object per line on standard output:

``lvm``
    the LVM backend (on the test's volume group, with the metadata-only
    activation: no device-mapper here) creates an instance's root volume
    from a cached qcow2 image and grows it, then an ephemeral volume and a
    swap volume, and prints what it made; once a line arrives on standard
    input (or it closes), a backend with ``volume_clear = zero`` removes
    the instance's volumes, and it prints what it removed. The loop
    devices it set up are gone before the process ends (see
    :mod:`tests.fixtures.unprivileged`).
``nfs``
    the NFS volume driver (``nfs_transport = mount``) connects a volume,
    which makes os-brick mount the export; for comparison, the same
    ``mount`` runs without privsep.

Each object also says who the process is (uid, groups, capabilities) and
which configuration files it read. Logs go to standard error. It imports
nothing from the test suite: its directory is not a package on its
``sys.path``.
"""

import os
import shlex
import sys
import types

from oslo_serialization import jsonutils

CONF_FILE = '/etc/nova/nova.conf'
MiB = 1024 * 1024


def status_fields(pid, names):
    values = {}
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            key, _sep, value = line.partition(':')
            if key in names:
                values[key] = value.split()[0] if key != 'Uid' else \
                    value.split()
    return values


def privsep_daemons(context):
    """``{pid: status}`` of the privsep daemons of ``context`` running.

    Uid, capabilities and ``NoNewPrivs`` from ``/proc/PID/status``, which
    everybody may read. A daemon forks away from the command that started
    it, so callers tell theirs by comparing before and after they start it.
    """
    found = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                argv = f.read().decode(errors='replace').split('\0')
            # Only daemons started for a compute host that reads this
            # configuration (other tests on the machine start their own).
            if ('--privsep_context' not in argv or context not in argv or
                    CONF_FILE not in argv):
                continue
            found[pid] = status_fields(pid, ('Uid', 'CapPrm', 'CapEff',
                                             'NoNewPrivs'))
        except OSError:
            continue
    return found


def started(context, before):
    return [status for pid, status in sorted(
        privsep_daemons(context).items()) if pid not in before]


def start():
    """Configuration, logging and privsep as nova-compute sets them."""
    import nova.conf
    from nova import utils as nova_utils
    import os_brick
    from oslo_log import log as logging
    from oslo_privsep import priv_context

    conf = nova.conf.CONF
    logging.register_options(conf)
    conf(['--config-file', CONF_FILE], project='nova')
    logging.setup(conf, 'nova')
    priv_context.init(root_helper=shlex.split(nova_utils.get_root_helper()))
    os_brick.setup(conf)
    import nova_pyvirt.conf  # noqa: F401  (registers [pyvirt])
    return conf


def create(conf, args):
    from nova_pyvirt.storage import imagecache
    from nova_pyvirt.storage import lvm

    from nova_pyvirt import privsep

    before = privsep_daemons(privsep.sys_admin_pctxt.pypath)
    backend = lvm.LvmBackend.from_conf(
        conf, activation=lvm.MetadataOnlyActivation())
    directory = os.path.join(args['instances'], args['uuid'])
    base = imagecache.CachedImage(args['image'], 'qcow2',
                                  args['virtual_size'])
    size, free = backend.capacity()
    disks = [backend.create_root(base, os.path.join(directory, 'disk'),
                                 32 * MiB)]
    # Grown while the extents after it are free: the metadata-only
    # activation keeps a volume in one contiguous range.
    grown = backend.resize(os.path.join(directory, 'disk'), 48 * MiB)
    disks += [backend.create_blank(os.path.join(directory, 'disk.eph0'),
                                   8 * MiB, 'disk.eph0'),
              backend.create_swap(os.path.join(directory, 'disk.swap'),
                                  8 * MiB)]
    return {
        'capacity': [size, free],
        'disks': [[d.name, d.path, d.source_type, d.format] for d in disks],
        'grown': [grown.name, grown.path],
        'volumes': backend.volumes(args['uuid']),
        'daemons': started(privsep.sys_admin_pctxt.pypath, before),
    }


def delete(conf, args):
    from nova_pyvirt.storage import lvm

    backend = lvm.LvmBackend(conf.pyvirt.images_volume_group,
                             volume_clear='zero',
                             activation=lvm.MetadataOnlyActivation())
    removed = backend.delete_instance(args['uuid'])
    return {'removed': removed, 'volumes': backend.volumes(args['uuid'])}


def nfs(conf, args):
    from nova import exception
    from oslo_concurrency import processutils

    from nova_pyvirt.volume import nfs as nfs_volume

    driver = nfs_volume.NFSVolumeDriver(conf, None)
    instance = types.SimpleNamespace(uuid=args['uuid'])
    info = {'driver_volume_type': 'nfs', 'serial': args['volume_id'],
            'data': {'export': args['export'], 'name': args['name'],
                     'format': 'raw'}}
    result = {'mountpoint': driver._mountpoint(args['export'])}
    before = privsep_daemons('os_brick.privileged.default')
    try:
        driver.connect(info, instance)
        result['connected'] = True
    except exception.VolumeAttachFailed as exc:
        result['connected'] = False
        result['error'] = str(exc)
    result['mountpoint_left'] = os.path.exists(result['mountpoint'])
    result['daemons'] = started('os_brick.privileged.default', before)

    # The same command without privsep, for comparison.
    control = os.path.join(args['workdir'], 'control-mountpoint')
    os.makedirs(control, exist_ok=True)
    try:
        processutils.execute('mount', '-t', 'nfs', args['export'], control)
        result['unprivileged_error'] = None
    except processutils.ProcessExecutionError as exc:
        result['unprivileged_error'] = exc.stderr
    os.rmdir(control)
    return result


def report(conf, values):
    result = {'uid': os.getuid(), 'euid': os.geteuid(),
              'groups': os.getgroups(),
              'self': status_fields('self', ('CapPrm', 'CapEff')),
              'config_files': list(conf.config_file)}
    result.update(values)
    print(jsonutils.dumps(result), flush=True)


def main(argv):
    action, args = argv[1], jsonutils.loads(argv[2])
    conf = start()
    if action == 'lvm':
        try:
            report(conf, create(conf, args))
            sys.stdin.readline()
        finally:
            # Also after a failed create: what it left goes, in this
            # namespace.
            report(conf, delete(conf, args))
    else:
        report(conf, nfs(conf, args))


if __name__ == '__main__':
    main(sys.argv)
