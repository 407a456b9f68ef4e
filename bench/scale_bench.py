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

"""The driver's periodic work on a dense host, against libvirt's own cost.

Run from the repository root::

    .venv/bin/python bench/scale_bench.py          # full run
    .venv/bin/python bench/scale_bench.py --quick  # smoke run

For each host size N the bench builds a host of N instances whose domains
are real libvirt domains and whose files are what a spawn leaves (a qcow2
overlay on a shared cached base, ``disk.info``, ``console.log``), plus an
image cache of cached bases, and times what nova-compute calls on its
timers:

* ``audit``: ``get_available_resource`` + ``update_provider_tree`` (the
  resource tracker's minute);
* ``sync``: ``get_num_instances`` + ``get_info`` of every instance (the
  power-state sync);
* ``uuids``: ``list_instance_uuids`` (running-deleted clean-up, start-up);
* ``imagecache``: ``manage_image_cache`` with every instance;
* ``resume``: ``resume_state_on_host_boot`` of every running instance
  (each finds its guest running and leaves it);
* ``restart``: what nova-compute does from its start to the end of its
  first audit: a new driver's ``init_host``, ``list_instance_uuids``,
  ``plug_vifs`` and ``get_info`` (uncached) of every instance (and
  ``resume_state_on_host_boot`` where the guest is not running though
  nova's database says it should be: none here), then the audit.

Each call is timed against two baselines in the same run: the floor (the
bare libvirt calls that return the same information) and nova's own
libvirt driver, run against the same libvirt connection.  Each host size
runs in a child process of its own, so its peak RSS is its own.

Running domains come from libvirt's test driver (a ``test:///`` node
file), so that a thousand fit on this machine; a smaller set runs on
embedded QEMU (TCG, guests started paused) to show the same curve on the
real hypervisor.  Everything the bench creates (domains, QEMU processes,
files) is removed at the end, also after a failure, Ctrl-C or SIGTERM.
"""

import argparse
import collections
import contextlib
import gc
import hashlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

from oslo_serialization import jsonutils

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

warnings.filterwarnings('ignore', message=r'(?s)\s*eventlet')

from tests import process_table  # noqa: E402

SIZES = (10, 100, 1000)
QUICK_SIZES = (5, 20)
QEMU_SIZES = (4, 12, 36)
QUICK_QEMU_SIZES = (2,)
CACHE_BASES = 5000
QUICK_CACHE_BASES = 40
# Instances share the first few cached bases, as a host's do: most
# instances of a cloud boot from a handful of images.
SHARED_BASES = 20
BASE_SIZE = 1024 ** 3
# One instance in ten is shut off, as on a real host.
SHUTOFF_EVERY = 10
EPHEMERAL_EVERY = 4

TARGET_AUDIT = 2.0        # audit / floor at the largest N
TARGET_SYNC = 1.5         # power-state sync / floor
TARGET_RESTART = 1.5      # restart / floor's list + describe every domain
TARGET_LINEAR = 1.5       # ratio at the largest N / ratio at the one before

CALLS = ('audit', 'sync', 'uuids', 'imagecache', 'resume', 'restart')
CONTENDERS = ('ours', 'floor', 'nova')
RESULT_MARK = 'scale_bench-result '
PREFIX = 'pyvirt-scale-bench-'
NODE_NAME = 'scale-bench-host'


# -- the parent: one child per host size, clean-up whatever happens --------

class _Terminated(Exception):
    pass


def _on_signal(signum, frame):
    raise _Terminated(signum)


def _processes_under(path):
    """PIDs whose command line names ``path`` (the QEMUs of a root)."""
    found = []
    for pid, cmdline in process_table.processes().items():
        if pid != os.getpid() and path.encode() in cmdline and \
                b'scale_bench.py' not in cmdline:
            found.append(pid)
    return found


def remove_state(state_dir):
    """Kill what a child may have left running in ``state_dir``, remove it.

    The child destroys its own domains; this is for a child that was
    killed before it could.  Only processes started for this state
    directory (QEMU names its root in its command line) are signalled.
    """
    for pid in _processes_under(state_dir):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(state_dir, ignore_errors=True)


def run_child(args, hypervisor, size, bases):
    state_dir = tempfile.mkdtemp(prefix=PREFIX)
    cmd = [sys.executable, os.path.abspath(__file__), '--child',
           '%s:%d:%d' % (hypervisor, size, bases), '--state-dir', state_dir,
           '--rounds', str(args.rounds), '--budget', str(args.budget),
           '--clock', args.clock, '--batch-seconds', str(args.batch_seconds)]
    if args.no_nova:
        cmd.append('--no-nova')
    # The child's log (nova's and libvirt's warnings) goes to a file beside
    # the state, shown only if the child fails.
    log = tempfile.NamedTemporaryFile(prefix=PREFIX, suffix='.log')
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                             text=True,
                             env=dict(os.environ, PYTHONUNBUFFERED='1'))
    result = None
    try:
        for line in child.stdout:
            if line.startswith(RESULT_MARK):
                result = jsonutils.loads(line[len(RESULT_MARK):])
            else:
                sys.stdout.write(line)
                sys.stdout.flush()
        child.wait()
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        remove_state(state_dir)
        failed = child.returncode != 0 or result is None
        if failed:
            log.seek(0)
            sys.stdout.write(log.read().decode('utf-8', 'replace')[-6000:])
        log.close()
    if failed:
        raise RuntimeError('%s N=%d: the child failed (status %s)' % (
            hypervisor, size, child.returncode))
    return result


def _fmt_ms(seconds):
    return '%.2f' % (seconds * 1000.0) if seconds is not None else '-'


def _ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def _fmt_ratio(value):
    if value is None:
        return '-'
    return '%.2f' % value if value >= 0.1 else '%.4f' % value


def print_size(result):
    n = result['size']
    print('\n-- %s N=%d: load %s (start) / %s (end), peak RSS %.1f MiB --' % (
        result['hypervisor'], n, result['load_start'], result['load_end'],
        result['maxrss_kib'] / 1024.0))
    print('%-11s %11s %11s %11s %8s %8s %10s %10s' % (
        'call', 'ours ms', 'floor ms', 'nova ms', 'ours/fl', 'ours/nv',
        'us/inst', 'spread'))
    for call in CALLS:
        med = result['medians'].get(call)
        if not med:
            continue
        ours = med.get('ours')
        spread = result['spreads'].get(call, {}).get('ours')
        print('%-11s %11s %11s %11s %8s %8s %10s %9s%%' % (
            call, _fmt_ms(ours), _fmt_ms(med.get('floor')),
            _fmt_ms(med.get('nova')),
            _fmt_ratio(_ratio(ours, med.get('floor'))),
            _fmt_ratio(_ratio(ours, med.get('nova'))),
            '%.1f' % (ours * 1e6 / n) if ours is not None else '-',
            '%.0f' % (spread * 100) if spread is not None else '-'))
    for note in result['notes']:
        print('   note: %s' % note)
    mem = result['memory']
    print('   RSS (MiB): after build %.1f; + libvirt connection %.1f; '
          '+ ours %.1f; + nova %.1f' % (
              mem['built'] / 1024.0, mem['connection'] / 1024.0,
              mem['ours'] / 1024.0, mem['nova'] / 1024.0))


def judge(results, quick):
    """Summary rows ``(name, value, target, ok)`` for benchlib."""
    checks = []
    for hypervisor in ('test', 'qemu'):
        runs = [r for r in results if r['hypervisor'] == hypervisor]
        if not runs:
            continue
        big = runs[-1]
        mid = runs[-2] if len(runs) > 1 else None
        tag = '%s N=%d' % (hypervisor, big['size'])
        judged = hypervisor == 'test' and not quick

        def ratio(run, call, against):
            med = run['medians'].get(call, {})
            return _ratio(med.get('ours'), med.get(against))

        def row(name, value, target, ok):
            checks.append((name, _fmt_ratio(value) if isinstance(
                value, float) else (value or '-'), target,
                (ok if judged else None) if value is not None else None))

        audit = ratio(big, 'audit', 'floor')
        row('%s audit/floor' % tag, audit, '<= %.1f' % TARGET_AUDIT,
            audit is not None and audit <= TARGET_AUDIT)
        audit_nova = ratio(big, 'audit', 'nova')
        row('%s audit/nova' % tag, audit_nova, '< 1.0',
            audit_nova is not None and audit_nova < 1.0)
        sync = ratio(big, 'sync', 'floor')
        row('%s sync/floor' % tag, sync, '<= %.1f' % TARGET_SYNC,
            sync is not None and sync <= TARGET_SYNC)
        restart = ratio(big, 'restart', 'floor')
        row('%s restart/floor' % tag, restart, '<= %.1f' % TARGET_RESTART,
            restart is not None and restart <= TARGET_RESTART)
        cache = ratio(big, 'imagecache', 'nova')
        row('%s imagecache/nova' % tag, cache, '< 1.0',
            cache is not None and cache < 1.0)
        if mid is not None:
            for call in ('audit', 'sync', 'uuids', 'imagecache', 'resume',
                         'restart'):
                now, before = ratio(big, call, 'floor'), \
                    ratio(mid, call, 'floor')
                growth = _ratio(now, before)
                row('%s linear %s' % (hypervisor, call), growth,
                    '<= %.1f (N=%d vs %d)' % (TARGET_LINEAR, big['size'],
                                              mid['size']),
                    growth is not None and growth <= TARGET_LINEAR)
            grow = (big['memory']['ours'] - mid['memory']['ours']) / float(
                big['size'] - mid['size'])
            checks.append(('%s RSS/instance ours' % hypervisor,
                           '%.1f KiB' % grow, 'reported', None))
            grow = (big['memory']['connection'] -
                    mid['memory']['connection']) / float(
                big['size'] - mid['size'])
            checks.append(('%s RSS/instance libvirt' % hypervisor,
                           '%.1f KiB' % grow, 'reported', None))
            if big['memory']['nova']:
                grow = (big['memory']['nova'] - mid['memory']['nova']) / \
                    float(big['size'] - mid['size'])
                checks.append(('%s RSS/instance nova' % hypervisor,
                               '%.1f KiB' % grow, 'reported', None))
    return checks


def main_parent(args):
    from bench import benchlib
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sizes = _sizes(args.sizes, QUICK_SIZES if args.quick else SIZES)
    qemu_sizes = _sizes(args.qemu_sizes,
                        QUICK_QEMU_SIZES if args.quick else QEMU_SIZES)
    bases = args.cache_bases or (QUICK_CACHE_BASES if args.quick
                                 else CACHE_BASES)
    print('scale_bench: load average %s, %d CPUs, nova %s, libvirt-python '
          '%s; sizes %s (test driver), %s (embedded QEMU); %d cached bases; '
          'clock: %s; %d rounds' % (
              benchlib.loadavg(), os.cpu_count(),
              benchlib.package_version('nova'),
              benchlib.package_version('libvirt-python'),
              ','.join(map(str, sizes)) or '-',
              ','.join(map(str, qemu_sizes)) or '-', bases, args.clock,
              args.rounds))
    results = []
    try:
        for size in sizes:
            results.append(run_child(args, 'test', size, bases))
            print_size(results[-1])
        if qemu_sizes and shutil.which('qemu-system-x86_64') is None:
            print('embedded QEMU: skipped, qemu-system-x86_64 is not '
                  'installed')
            qemu_sizes = ()
        for size in qemu_sizes:
            results.append(run_child(args, 'qemu', size, bases))
            print_size(results[-1])
    except _Terminated as exc:
        print('scale_bench: stopped by signal %s; cleaned up' % exc)
        return 128 + exc.args[0]
    status = benchlib.print_summary(
        'scale_bench (load average %s at the end)' % benchlib.loadavg(),
        judge(results, args.quick), widths=(30, 12, 22))
    if args.quick:
        print('(--quick: smoke run, targets reported as INFO)')
        return 0
    return status


def _sizes(text, default):
    if text is None:
        return tuple(default)
    return tuple(int(s) for s in text.split(',') if s.strip())


# -- the child: one host of N instances -------------------------------------

def _rss_kib():
    gc.collect()
    with open('/proc/self/statm') as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') // 1024


def _sha1(text):
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


class ScaleHost(object):
    """N instances' files, cached bases and libvirt domains in one dir."""

    def __init__(self, state_dir, hypervisor, size, bases):
        self.state_dir = state_dir
        self.hypervisor = hypervisor
        self.size = size
        self.bases = max(bases, SHARED_BASES)
        self.instances_path = os.path.join(state_dir, 'instances')
        self.base_dir = os.path.join(self.instances_path, '_base')
        self.lock_path = os.path.join(state_dir, 'locks')
        self.image_ids = []
        self.instances = []     # (uuid, image id, running, disk paths)
        self.conn = None        # the raw virConnect
        self.shared = None      # what the drivers get from open
        self.uri = None
        self.node_file = None

    # files

    def build_files(self):
        from nova_pyvirt.design import request
        from nova_pyvirt.storage import imagecache
        from nova_pyvirt.storage import instance_disks
        from nova_pyvirt.storage import instance_files
        os.makedirs(self.base_dir)
        os.makedirs(self.lock_path)
        cache = imagecache.ImageCache(self.base_dir, self.lock_path)
        for index in range(self.bases):
            image_id = '00000000-0000-4000-8000-%012d' % index
            path = cache.path_for(image_id)
            with open(path, 'wb') as handle:
                handle.truncate(BASE_SIZE)      # a sparse raw base
            # What ImageCache.fetch records once it inspected the image.
            cache._remember(path, imagecache.CachedImage(
                path=path, format='raw', virtual_size=BASE_SIZE))
            self.image_ids.append(image_id)
        templates = {}
        shared = min(SHARED_BASES, self.bases)
        for index in range(shared):
            template = os.path.join(self.state_dir, 'overlay-%d' % index)
            subprocess.run(
                ['qemu-img', 'create', '-q', '-f', 'qcow2', '-b',
                 cache.path_for(self.image_ids[index]), '-F', 'raw',
                 template, str(BASE_SIZE)], check=True)
            templates[index] = template
        blank = os.path.join(self.state_dir, 'blank')
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', blank,
                        str(BASE_SIZE)], check=True)
        for index in range(self.size):
            uuid = '%08x-0000-4000-8000-%012d' % (0x5ca1e000 + index, index)
            files = instance_files.InstanceFiles(self.instances_path, uuid)
            files.create()
            root = files.file('disk')
            # An overlay names its base by absolute path: a copy of one
            # made by qemu-img is what qemu-img would make again.
            shutil.copyfile(templates[index % shared], root)
            disks = [request.LocalDisk(name='disk', path=root)]
            if index % EPHEMERAL_EVERY == 0:
                eph = files.file('disk.eph0')
                shutil.copyfile(blank, eph)
                disks.append(request.LocalDisk(name='disk.eph0', path=eph))
            instance_disks.DiskSet(files, disks).save()
            with open(files.console_log, 'wb') as handle:
                handle.write(b'login: \n' * 512)
            self.instances.append((uuid, self.image_ids[index % shared],
                                   index % SHUTOFF_EVERY != 1,
                                   [d.path for d in disks], files))

    def domain_xml(self, index):
        uuid, _image, _running, disks, files = self.instances[index]
        kind = 'test' if self.hypervisor == 'test' else 'qemu'
        devices = []
        for number, path in enumerate(disks):
            devices.append(
                "<disk type='file' device='disk'><driver name='qemu' "
                "type='qcow2' cache='none'/><source file='%s'/>"
                "<target dev='vd%s' bus='virtio'/></disk>" % (
                    path, 'abcdefgh'[number]))
        devices.append("<serial type='file'><source path='%s'/>"
                       "<target port='0'/></serial>" % files.console_log)
        if kind == 'test':
            devices.append(
                "<interface type='bridge'><mac address='fa:16:3e:%02x:%02x:"
                "%02x'/><source bridge='br-int'/><model type='virtio'/>"
                "</interface>" % ((index >> 16) & 255, (index >> 8) & 255,
                                  index & 255))
        devices.append("<memballoon model='none'/>")
        machine = " machine='pc'" if kind == 'qemu' else ''
        return (
            "<domain type='%(kind)s'><name>instance-%(id)08x</name>"
            "<uuid>%(uuid)s</uuid>"
            "<metadata><nova:instance xmlns:nova='http://openstack.org/xmlns/"
            "libvirt/nova/1.1'><nova:name>scale-%(id)d</nova:name>"
            "<nova:flavor name='m1.tiny'><nova:memory>128</nova:memory>"
            "<nova:disk>1</nova:disk><nova:vcpus>1</nova:vcpus>"
            "</nova:flavor></nova:instance></metadata>"
            "<memory unit='MiB'>%(mem)d</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'%(machine)s>hvm</type></os>"
            "<features><acpi/></features><clock offset='utc'/>"
            "<on_crash>destroy</on_crash>"
            "<devices>%(devices)s</devices></domain>" % {
                'kind': kind, 'id': index + 1, 'uuid': uuid,
                'mem': 128 if kind == 'test' else 32, 'machine': machine,
                'devices': ''.join(devices)})

    # libvirt

    def open_test(self):
        import libvirt
        from nova_pyvirt.hypervisor import connection
        self.node_file = os.path.join(self.state_dir, 'node.xml')
        with open(self.node_file, 'w') as handle:
            handle.write(
                '<node><cpu><mhz>2000</mhz><nodes>1</nodes><sockets>2'
                '</sockets><cores>16</cores><threads>2</threads><active>64'
                '</active></cpu><memory>%d</memory>' % (512 * 1024 * 1024))
            for index in range(self.size):
                handle.write(self.domain_xml(index))
            handle.write('</node>')
        self.uri = 'test://%s' % self.node_file
        connection.start_event_loop()
        started = time.perf_counter()
        self.conn = libvirt.open(self.uri)
        load = time.perf_counter() - started
        for uuid, _image, running, _disks, _files in self.instances:
            if not running:
                self.conn.lookupByUUIDString(uuid).destroy()
        self.shared = connection.SharedEmbeddedConnection(
            self.conn, connection._EventFanout(self.conn))
        return load

    def open_qemu(self):
        import libvirt
        from nova_pyvirt.hypervisor import connection
        from tests.fixtures import embedded
        root = os.path.join(self.state_dir, 'embed')
        if os.path.isdir(embedded.PROBE_CACHE):
            shutil.copytree(embedded.PROBE_CACHE, os.path.join(root, 'cache'))
        self.uri = connection.prepare_embedded_root(root)
        started = time.perf_counter()
        self.shared = connection.open_connection(self.uri)
        self.conn = self.shared._conn
        load = time.perf_counter() - started
        for index, (uuid, _i, running, _d, _f) in enumerate(self.instances):
            dom = self.conn.defineXML(self.domain_xml(index))
            if running:
                dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        return load

    def close(self):
        """Destroy and undefine what this host defined (QEMU)."""
        if self.conn is None:
            return
        if self.hypervisor == 'qemu':
            for dom in self.conn.listAllDomains():
                with contextlib.suppress(Exception):
                    if dom.isActive():
                        dom.destroy()
                with contextlib.suppress(Exception):
                    dom.undefine()
        else:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None


class Contenders(object):
    """Our driver, nova's and the floor on one ScaleHost."""

    def __init__(self, host, with_nova):
        self.host = host
        self.with_nova = with_nova
        self.notes = []
        self.ours = None
        self.nova = None
        self._patches = contextlib.ExitStack()

    def configure(self):
        from nova import conf as nova_conf
        from nova.conf import neutron as neutron_conf
        from nova import objects
        conf = nova_conf.CONF
        conf([], project='nova', default_config_files=[])
        # As nova-compute's start does (nova's audit reads them).
        neutron_conf.register_dynamic_opts(conf)
        objects.register_all()
        from nova_pyvirt import conf as pyvirt_conf  # noqa: F401  registers
        host = self.host
        virt_type = 'test' if host.hypervisor == 'test' else 'qemu'
        conf.set_override('host', NODE_NAME)
        conf.set_override('virt_type', virt_type, group='pyvirt')
        conf.set_override('connection_uri', host.uri, group='pyvirt')
        conf.set_override('lock_path', host.lock_path,
                          group='oslo_concurrency')
        conf.set_override('instances_path', host.instances_path)
        conf.set_override('virt_type', 'qemu', group='libvirt')
        conf.set_override('connection_uri', host.uri, group='libvirt')
        conf.set_override('enabled', False, group='vnc')
        self.conf = conf

    def start(self):
        from unittest import mock

        from nova import context as nova_context
        from nova.virt import virtapi
        from nova_pyvirt import driver as pyvirt_driver
        from nova_pyvirt.hypervisor import connection
        shared = self.host.shared
        # Every driver gets the one connection the host opened: they ask
        # the same libvirt, and a restart does not pay libvirt's own
        # loading of N domains (printed apart).
        self._patches.enter_context(mock.patch.object(
            connection, 'open_connection', lambda uri, ro=False: shared))
        self.context = nova_context.get_admin_context()
        self.virtapi = virtapi.VirtAPI()
        self.make_instances()
        self.ours = pyvirt_driver.PyVirtDriver(self.virtapi)
        self.ours.init_host(NODE_NAME)
        self.nodename = self.ours.get_available_nodes()[0]
        if self.with_nova:
            try:
                self.nova = self._nova_driver()
            except Exception as exc:
                self.notes.append('nova driver could not start: %s: %s' % (
                    type(exc).__name__, exc))
                self.nova = None

    def make_instances(self):
        from nova.compute import power_state
        from nova import objects
        # Guests on QEMU are started paused (a running TCG guest keeps a
        # CPU busy), and nova's database says so.
        paused = None if self.host.hypervisor == 'test' else True
        flavor = objects.Flavor(id=1, name='m1.tiny', vcpus=1, memory_mb=128,
                                root_gb=1, ephemeral_gb=0, swap=0,
                                extra_specs={})
        self.instances = []
        for index, (uuid, image, running, _d, _f) in enumerate(
                self.host.instances):
            inst = objects.Instance(
                uuid=uuid, id=index + 1, image_ref=image, kernel_id=None,
                ramdisk_id=None, host=NODE_NAME, node=NODE_NAME,
                task_state=None, vm_state='active' if running else 'stopped',
                power_state=(power_state.SHUTDOWN if not running else
                             power_state.RUNNING if paused is None else
                             power_state.PAUSED),
                flavor=flavor, os_type=None, system_metadata={},
                display_name='scale-%d' % index, project_id='p',
                user_id='u')
            self.instances.append(inst)
        self.running = [i for i in self.instances
                        if i.power_state == power_state.RUNNING]

    def _nova_driver(self):
        """nova's LibvirtDriver on the same connection.

        What is bent, and why (printed with the figures):

        * ``Host._connect`` returns the bench's connection (shared, as
          ours is);
        * on the test driver nova's minimum QEMU version check is
          lowered: the test driver's "hypervisor" version is 0.0.2;
        * its two database queries answer from memory:
          ``BlockDeviceMappingList.bdms_by_instance_uuid`` (no mappings)
          and ``InstanceList.get_by_filters`` (the bench's instances);
        * its privsep daemon runs ``privsep-helper`` directly (as root).
        """
        from unittest import mock

        from nova import objects
        from nova.virt.libvirt import driver as libvirt_driver
        from nova.virt.libvirt import host as libvirt_host
        shared = self.host.shared
        self._patches.enter_context(mock.patch.object(
            libvirt_host.Host, '_connect',
            lambda self_, uri, read_only: shared))
        self._patches.enter_context(mock.patch.object(
            objects.BlockDeviceMappingList, 'bdms_by_instance_uuid',
            classmethod(lambda cls, ctx, uuids: {})))
        by_uuid = {i.uuid: i for i in self.instances}

        def get_by_filters(cls, ctx, filters, *args, **kwargs):
            return objects.InstanceList(objects=[
                by_uuid[u] for u in filters.get('uuid', ()) if u in by_uuid])
        self._patches.enter_context(mock.patch.object(
            objects.InstanceList, 'get_by_filters',
            classmethod(get_by_filters)))
        # nova's image cache touches bases through its privsep daemon.
        helper = os.path.join(os.path.dirname(sys.executable),
                              'privsep-helper')
        self.conf.set_override('helper_command', helper,
                               group='nova_sys_admin')
        if self.host.hypervisor == 'test':
            for name in ('MIN_QEMU_VERSION', 'NEXT_MIN_QEMU_VERSION'):
                self._patches.enter_context(mock.patch.object(
                    libvirt_driver, name, (0, 0, 0)))
        driver = libvirt_driver.LibvirtDriver(self.virtapi, False)
        driver.init_host(NODE_NAME)
        self._nova_class = libvirt_driver.LibvirtDriver
        return driver

    def close(self):
        for driver in (self.ours, self.nova):
            if driver is not None:
                with contextlib.suppress(Exception):
                    driver.cleanup_host(NODE_NAME)
        self._patches.close()

    # the calls, for each contender

    def provider_tree(self):
        from nova.compute import provider_tree
        tree = provider_tree.ProviderTree()
        tree.new_root(self.nodename, '00000000-0000-4000-8000-00000000cafe')
        return tree

    def audit(self, driver):
        def run():
            driver.get_available_resource(self.nodename)
            driver.update_provider_tree(self.provider_tree(), self.nodename)
        return run

    def sync(self, driver):
        def run():
            driver.get_num_instances()
            for instance in self.instances:
                driver.get_info(instance)
        return run

    def uuids(self, driver):
        return driver.list_instance_uuids

    def imagecache(self, driver):
        return lambda: driver.manage_image_cache(self.context,
                                                 self.instances)

    def restart_ours(self):
        from nova_pyvirt import driver as pyvirt_driver
        return self._restart(lambda: pyvirt_driver.PyVirtDriver(
            self.virtapi))

    def restart_nova(self):
        return self._restart(lambda: self._nova_class(self.virtapi, False))

    def _restart(self, make):
        from nova.compute import power_state

        def run():
            # What nova-compute does from its start to its first audit:
            # ComputeManager.init_host (driver.init_host, the evacuated
            # instances check, _init_instance of each instance), then
            # update_available_resource.
            driver = make()
            driver.init_host(NODE_NAME)
            driver.list_instance_uuids()
            for instance in self.instances:
                driver.plug_vifs(instance, [])
                state = driver.get_info(instance, use_cache=False).state
                if (instance.power_state == power_state.RUNNING and
                        state != power_state.RUNNING):
                    # Not reached here: the guests kept running.
                    driver.resume_state_on_host_boot(self.context, instance,
                                                     [], None)
            self.audit(driver)()
            return lambda: driver.cleanup_host(NODE_NAME)
        return run

    def resume(self, driver):
        def run():
            for instance in self.running:
                driver.resume_state_on_host_boot(self.context, instance,
                                                 [], None)
        return run

    # the floor: bare libvirt calls for the same information

    def floor_audit(self):
        import libvirt
        conn = self.host.conn
        disks = [p for i in self.host.instances for p in i[3]]
        groups = (libvirt.VIR_DOMAIN_STATS_STATE |
                  libvirt.VIR_DOMAIN_STATS_VCPU)
        active = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
        try:
            conn.getAllDomainStats(groups, active)
        except libvirt.libvirtError:
            groups = libvirt.VIR_DOMAIN_STATS_STATE
        instances_path = self.host.instances_path

        def run():
            info = conn.getInfo()
            try:
                conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
            except libvirt.libvirtError:
                conn.getFreeMemory()
            conn.getVersion()
            conn.getHostname()
            vcpus = 0
            for dom, stats in conn.getAllDomainStats(groups, active):
                # The test driver has no vcpu group: one call per domain.
                vcpus += stats.get('vcpu.maximum') or dom.maxVcpus()
            os.statvfs(instances_path)
            allocated = sum(os.stat(p).st_blocks for p in disks)
            return info, vcpus, allocated
        return run

    def floor_sync(self):
        import libvirt
        conn = self.host.conn

        def run():
            return {dom.UUIDString(): stats['state.state'] for dom, stats in
                    conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)}
        return run

    def floor_uuids(self):
        conn = self.host.conn
        return lambda: [d.UUIDString() for d in conn.listAllDomains(0)]

    def floor_imagecache(self):
        """List and stat the cache; read each overlay's backing name."""
        base_dir = self.host.base_dir
        disks = [p for i in self.host.instances for p in i[3]]

        def run():
            for entry in os.scandir(base_dir):
                entry.stat()
            for path in disks:
                with open(path, 'rb') as handle:
                    header = handle.read(20)
                    offset = int.from_bytes(header[8:16], 'big')
                    length = int.from_bytes(header[16:20], 'big')
                    if offset:
                        handle.seek(offset)
                        handle.read(length)
        return run

    def floor_resume(self):
        conn = self.host.conn
        uuids = [i.uuid for i in self.running]
        return lambda: [conn.lookupByUUIDString(u).state() for u in uuids]

    def floor_restart(self):
        conn = self.host.conn
        return lambda: [d.XMLDesc(0) for d in conn.listAllDomains(0)]


def _where(exc):
    """``function (file:line)`` of nova's frames nearest the error."""
    import traceback
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if '/nova/' in f.filename and 'oslo' not in f.filename]
    return ' < '.join('%s (%s:%d)' % (f.name, os.path.basename(f.filename),
                                      f.lineno) for f in frames[-3:][::-1])


def cpu_clock():
    """CPU seconds of this process and of its children waited for.

    The default clock: the machine is shared, and CPU time leaves out the
    time other jobs take the CPUs.  Children count: nova's driver and
    image cache run ``qemu-img`` for every disk.
    """
    times = os.times()
    return time.process_time() + times.children_user + times.children_system


CLOCKS = {'cpu': cpu_clock, 'wall': time.perf_counter}


def measure(contenders, rounds, budget, errors, clock, batch_seconds):
    """Interleaved samples ``{label: [seconds per call]}``.

    ``contenders``: ``[(label, fn)]``; ``fn()`` may return a callable,
    run untimed after the sample (a restart's tear-down), and such a
    contender is timed one call per sample.  Others are called as often
    per sample as the first contender needs for ``batch_seconds``.  A
    contender whose samples add up to ``budget`` seconds stops after 3
    samples (after 1 if that one took the whole budget); one that raises
    is dropped, its error added to ``errors``.
    """
    samples = collections.OrderedDict((label, []) for label, _ in contenders)
    spent = collections.Counter()
    failed = set()
    repeat = {}
    for number in range(rounds):
        order = contenders if number % 2 == 0 else contenders[::-1]
        for label, fn in order:
            taken = samples[label]
            if label in failed or (
                    taken and spent[label] >= budget and
                    (len(taken) >= 3 or spent[label] >= budget * len(
                        taken))):
                continue
            count = repeat.get(label, 1)
            gc.collect()
            gc.disable()
            try:
                started = clock()
                for _ in range(count):
                    after = fn()
                elapsed = clock() - started
            except Exception as exc:
                failed.add(label)
                errors.append((label, exc))
                continue
            finally:
                gc.enable()
            if callable(after):
                after()
            elif label not in repeat:
                # Calibrated on the first sample: short calls are
                # repeated so one sample is not mostly clock noise.
                repeat[label] = max(1, min(50, int(
                    batch_seconds / max(elapsed, 1e-6))))
                if repeat[label] > 1:
                    continue    # this sample is the calibration
            taken.append(elapsed / count)
            spent[label] += elapsed
    return samples


def main_child(args):
    from bench import benchlib
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(
        128 + signum))
    hypervisor, size, bases = args.child.split(':')
    size, bases = int(size), int(bases)
    load_start = benchlib.loadavg()
    host = ScaleHost(args.state_dir, hypervisor, size, bases)
    contenders = Contenders(host, not args.no_nova)
    status = 1
    # Imported before the first memory figure, which is then the host's
    # files and libvirt's domains, not code.
    import nova_pyvirt.driver  # noqa: F401
    if not args.no_nova:
        import nova.virt.libvirt.driver  # noqa: F401
    try:
        started = time.perf_counter()
        host.build_files()
        build = time.perf_counter() - started
        mem_built = _rss_kib()
        load = host.open_test() if hypervisor == 'test' else host.open_qemu()
        mem_conn = _rss_kib()
        contenders.notes.append(
            'host built in %.1f s; libvirt loaded its %d domains in %.0f ms '
            '(not part of any figure)' % (build, size, load * 1000))
        contenders.configure()
        contenders.start()
        c = contenders
        # One warm-up of each call, then the memory the driver keeps.
        for fn in (c.audit(c.ours), c.sync(c.ours), c.uuids(c.ours),
                   c.imagecache(c.ours)):
            fn()
        mem_ours = _rss_kib()
        mem_nova = mem_ours
        table = [('audit', c.audit, c.floor_audit),
                 ('sync', c.sync, c.floor_sync),
                 ('uuids', c.uuids, c.floor_uuids),
                 ('imagecache', c.imagecache, c.floor_imagecache),
                 ('resume', c.resume, c.floor_resume)]
        if c.nova is not None:
            for call, make, _floor in table:
                if call == 'resume' and not c.running:
                    continue
                try:
                    make(c.nova)()
                except Exception as exc:
                    c.notes.append('nova %s failed: %s: %s (in %s)' % (
                        call, type(exc).__name__, str(exc)[:200],
                        _where(exc)))
            mem_nova = _rss_kib()
        medians, spreads = {}, {}
        failed_nova = {n.split()[1] for n in c.notes
                       if n.startswith('nova ') and ' failed' in n}
        if not c.running:
            table = [t for t in table if t[0] != 'resume']
            c.notes.append('resume: not timed, no guest is running '
                           '(started paused)')
        for call, make, floor in table + [
                ('restart', None, c.floor_restart)]:
            runs = [('floor', floor())]
            if call == 'restart':
                runs.insert(0, ('ours', c.restart_ours()))
                if c.nova is not None:
                    runs.append(('nova', c.restart_nova()))
            else:
                runs.insert(0, ('ours', make(c.ours)))
                if c.nova is not None and call not in failed_nova:
                    runs.append(('nova', make(c.nova)))
            errors = []
            samples = measure(runs, args.rounds, args.budget, errors,
                              CLOCKS[args.clock], args.batch_seconds)
            for label, exc in errors:
                c.notes.append('%s %s failed: %s: %s (in %s)' % (
                    label, call, type(exc).__name__, str(exc)[:200],
                    _where(exc)))
            medians[call] = {k: statistics.median(v)
                             for k, v in samples.items() if v}
            spreads[call] = {k: max(v) / min(v) - 1
                             for k, v in samples.items() if v}
        if c.nova is None and not args.no_nova:
            c.notes.append('no nova figures')
        result = {
            'hypervisor': hypervisor, 'size': size, 'medians': medians,
            'spreads': spreads, 'notes': contenders.notes,
            'load_start': load_start, 'load_end': benchlib.loadavg(),
            'maxrss_kib': resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss,
            'memory': {'built': mem_built,
                       'connection': mem_conn - mem_built,
                       'ours': mem_ours - mem_conn,
                       'nova': mem_nova - mem_ours}}
        status = 0
    finally:
        contenders.close()
        host.close()
        shutil.rmtree(args.state_dir, ignore_errors=True)
    print(RESULT_MARK + jsonutils.dumps(result))
    sys.stdout.flush()
    return status


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: small hosts, figures not judged')
    parser.add_argument('--sizes', help='test driver host sizes, e.g. '
                        '10,100,1000')
    parser.add_argument('--qemu-sizes', help='embedded QEMU host sizes '
                        '("" for none)')
    parser.add_argument('--cache-bases', type=int,
                        help='cached bases in the image cache')
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--budget', type=float, default=None,
                        help='seconds per contender and call after which '
                        'it stops at 3 samples')
    parser.add_argument('--clock', choices=sorted(CLOCKS), default='cpu',
                        help='cpu (default: this process and its '
                        'children) or wall')
    parser.add_argument('--batch-seconds', type=float, default=None,
                        help='short calls are repeated to last this long '
                        'per sample')
    parser.add_argument('--no-nova', action='store_true',
                        help="leave nova's driver out")
    parser.add_argument('--child', help=argparse.SUPPRESS)
    parser.add_argument('--state-dir', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 7
    if args.budget is None:
        args.budget = 1.0 if args.quick else 20.0
    if args.batch_seconds is None:
        args.batch_seconds = 0.005 if args.quick else 0.05
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        # nova's thread pools keep the interpreter from exiting: the
        # result is printed and the state removed, so leave at once.
        try:
            status = main_child(args)
        except BaseException:
            import traceback
            traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return main_parent(args)


if __name__ == '__main__':
    sys.exit(main())
