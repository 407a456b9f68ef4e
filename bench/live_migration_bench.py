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

"""Live migration through the driver against libvirt's own, between two
libvirtds over TLS.

Run from the repository root::

    .venv/bin/python bench/live_migration_bench.py          # full run
    .venv/bin/python bench/live_migration_bench.py --quick  # smoke run

The two hosts are the live migration test's
(:mod:`tests.functional.nova.two_libvirtds`): two
:class:`~tests.fixtures.remote_libvirtd.RemoteLibvirtdFixture` daemons,
each in its own mount and UTS namespace, on 127.0.0.2 (``host1``) and
127.0.0.3 (``host2``), listening on TLS with certificates of one
:class:`~tests.fixtures.pki.PkiFixture` CA, QEMU's migration and NBD
streams on the same addresses. Each host has a ``PyVirtDriver`` configured
as the test configures it.

Every sample starts from a fresh guest on ``host1``: the test guest
(``tools/guest_image``) spawned by the driver (1 vCPU, 128 MiB, TCG, a
1 GiB qcow2 overlay on the image cached on ``host1``), with
``--written-mib`` of random data written into the overlay before it
boots, booted with ``pyvirt.counter=1`` and ``pyvirt.dirty=RATE:SIZE``
(rewriting ``--dirty-rate`` MiB of its memory per second). Once it
dirties memory it moves to ``host2`` and is destroyed there; none of that
set-up is timed.

Contenders, interleaved over rounds (alternating which goes first):

* ``driver``: the calls nova makes, in nova's order, timed from the first
  to the last: ``check_can_live_migrate_destination`` (host2),
  ``check_can_live_migrate_source`` (host1),
  ``cleanup_live_migration_destination_check`` (host2),
  ``get_instance_disk_info`` (host1), ``pre_live_migration`` (host2),
  ``live_migration`` (host1) whose post method runs
  ``post_live_migration``, ``post_live_migration_at_source`` and
  ``cleanup`` (host1, removing its files), then
  ``post_live_migration_at_destination`` (host2).
* ``libvirt``: what a user of bare libvirt-python does: on host2 make the
  instance directory, copy the kernel and initrd into it, copy the base
  image if host2 has none, ``qemu-img create`` the overlay on it; then
  ``migrateToURI3`` on host1 with the very flags and typed parameters the
  driver passed (captured from the driver's first migration), then remove
  the instance directory on host1.

Figures: total time (target: driver / libvirt <= 1.1, medians), the
guest's pause from the longest gap in its counter and the downtime libvirt
reports (both printed for both contenders, not judged), and the bytes
the block migration copied (``disk_processed`` of the statistics in
host1's job-completed event) against the overlay's allocated size
(target <= 1.05 for every sample of both contenders), with a step by
step account of where the time went. ``--quick`` runs one round with a
smaller load; its time ratio is INFO.

Everything is removed at the end, also after a failure, Ctrl-C or
SIGTERM: the guests, both daemons, every file.
"""

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import warnings

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# Importing nova pulls in eventlet through oslo.privsep, which warns.
warnings.filterwarnings('ignore', message=r'(?s)\s*eventlet')
# libvirt's client logs errors of calls that are expected to fail (a
# domain looked up where it is gone); they go to a file, removed at the end.
LIBVIRT_LOG = os.path.join(tempfile.gettempdir(),
                           'pyvirt-live-bench-%d.libvirt.log' % os.getpid())
if __name__ == '__main__':
    os.environ.setdefault('LIBVIRT_LOG_OUTPUTS', '3:file:%s' % LIBVIRT_LOG)

import libvirt  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import objects  # noqa: E402
from nova.virt import virtapi  # noqa: E402
from oslo_serialization import jsonutils  # noqa: E402
from oslo_utils import units  # noqa: E402

from bench import benchlib  # noqa: E402
from nova_pyvirt.cmd import demo  # noqa: E402
from nova_pyvirt.cmd import demo_images  # noqa: E402
from nova_pyvirt import conf as pyvirt_conf  # noqa: E402
from nova_pyvirt import driver as pyvirt_driver  # noqa: E402
from nova_pyvirt.hypervisor import guest as guest_mod  # noqa: E402
from tests.fixtures import driver as driver_fixture  # noqa: E402
from tests.fixtures import pki as pki_fixture  # noqa: E402
from tests.fixtures import remote_libvirtd  # noqa: E402
from tests.fixtures import sshd as sshd_fixture  # noqa: E402
from tests import guest_counter  # noqa: E402

HOST1 = 'host1'
HOST2 = 'host2'
ADDRESSES = {HOST1: '127.0.0.2', HOST2: '127.0.0.3'}
TARGET_TIME = 1.1       # driver / libvirt, total time, medians
TARGET_WIRE = 1.05      # disk bytes copied / overlay allocated
EXTENTS = 8
# Seconds for a guest to boot and for its counter to show up on the
# destination after a migration (a busy 2-core machine, TCG).
BOOT_TIMEOUT = 180
# Counter lines the destination must print before the watch stops.
LINES_AFTER = 10


def _mib(count):
    return '%.1f MiB' % (count / units.Mi)


_allocated = benchlib.allocated_bytes
_run = benchlib.output_of


class Sample(object):
    """One timed migration and what was measured around it."""

    def __init__(self, seconds, allocated, stats, gap, dirty_rate, steps):
        self.seconds = seconds
        self.steps = steps
        self.allocated = allocated
        self.stats = stats
        self.gap = gap
        self.dirty_rate = dirty_rate

    @property
    def disk_bytes(self):
        return self.stats.get('disk_processed', 0)

    @property
    def memory_bytes(self):
        return self.stats.get('memory_processed', 0)

    @property
    def downtime_ms(self):
        return self.stats.get('downtime')


class Bench(object):
    """Two hosts, their drivers, and the guests the bench made."""

    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix='pyvirt-live-bench-')
        self.fixtures = []
        self.drivers = {}
        self.instances = []
        self.captured = []
        self.downtimes = []
        self.steps = {}
        self._ids = 0

    # -- the hosts -----------------------------------------------------------

    def start(self):
        self.paths = {HOST1: os.path.join(self.work, 'instances'),
                      HOST2: os.path.join(self.work, 'instances-host2')}
        for path in self.paths.values():
            os.makedirs(path)
        pki = self._use(pki_fixture.PkiFixture())
        port = sshd_fixture.common_free_port(list(ADDRESSES.values()))
        self.daemons = {}
        for host, other in ((HOST1, HOST2), (HOST2, HOST1)):
            # Each daemon sees its own directory at the other host's path
            # too: a guest arriving with the source's paths opens the
            # destination's files, as on hosts with one instances path.
            self.daemons[host] = self._use(
                remote_libvirtd.RemoteLibvirtdFixture(
                    address=ADDRESSES[host], pki=pki, hostname=host,
                    tls_port=port, migration=True,
                    binds=[(self.paths[host], self.paths[other])]))
        client = pki.client_dir(os.path.join(self.work, 'client-pki'))

        self.conf = pyvirt_conf.CONF
        self.conf([], project='nova', default_config_files=[])
        objects.register_all()
        self.context = nova_context.get_admin_context()
        demo.configure_privsep(self.conf)
        self.conf.set_override('virt_type', 'qemu', group='pyvirt')
        self.conf.set_override('lock_path', os.path.join(self.work, 'locks'),
                               group='oslo_concurrency')
        # No display: each daemon picks VNC ports on its own.
        self.conf.set_override('enabled', False, group='vnc')
        self.images = demo_images.LocalImageService(
            os.path.join(self.work, 'images'))
        root = demo.register_images(self.images,
                                    driver_fixture.guest_image_dir())
        props = dict(root['properties'])
        props['os_command_line'] += ' pyvirt.counter=1 pyvirt.dirty=%d:%d' % (
            self.args.dirty_rate, self.args.dirty_size)
        self.image = self.images.add(
            os.path.join(driver_fixture.GUEST_IMAGE, 'disk-marker.qcow2'),
            'qcow2', name='pyvirt-live-bench', properties=props)
        # The driver reads its URI, instances path and addresses once,
        # when it is built: set them, build host1's, set them again.
        for host in (HOST1, HOST2):
            daemon = self.daemons[host]
            self.conf.set_override('my_ip', ADDRESSES[host])
            self.conf.set_override('host', host)
            self.conf.set_override(
                'connection_uri', daemon.tls_uri(pkipath=client),
                group='pyvirt')
            self.conf.set_override('instances_path', self.paths[host])
            self.conf.set_override(
                'live_migration_uri',
                'qemu+tls://%%s:%d/system?pkipath=%s' % (
                    port, daemon.client_pki_dir), group='pyvirt')
            self.conf.set_override('live_migration_inbound_addr',
                                   ADDRESSES[host], group='pyvirt')
            driver = pyvirt_driver.PyVirtDriver(virtapi.VirtAPI(),
                                                image_api=self.images)
            driver.init_host(host)
            self.drivers[host] = driver
        # The baseline's own connection to host1, as a libvirt-python user
        # would open it; it also hears every job that completes on host1
        # (the driver's Host already runs libvirt's event loop).
        self.conn = libvirt.open(self.daemons[HOST1].tls_uri(pkipath=client))
        self.completed = {}
        self._callback = self.conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
            self._job_completed, None)
        self.random_chunk = os.path.join(self.work, 'random.chunk')
        with open(self.random_chunk, 'wb') as handle:
            handle.write(os.urandom(max(1, self.args.written_mib * units.Mi //
                                        EXTENTS)))

    def _job_completed(self, conn, dom, stats, opaque):
        self.completed[dom.UUIDString()] = dict(stats)

    def completed_stats(self, instance, timeout=10):
        """The statistics of ``instance``'s migration, from host1's event.

        The source's record has the disk counters; the destination's
        (``jobStats(COMPLETED)``) has the memory's only.
        """
        deadline = time.monotonic() + timeout
        while instance.uuid not in self.completed:
            if time.monotonic() > deadline:
                raise RuntimeError('no job-completed event for %s on %s' % (
                    instance.uuid, HOST1))
            time.sleep(0.05)
        return self.completed.pop(instance.uuid)

    def _use(self, fixture):
        fixture.setUp()
        self.fixtures.append(fixture)
        return fixture

    def connection(self, host):
        return self.drivers[host]._host.get_connection()

    def domain(self, host, instance):
        try:
            return self.connection(host).lookupByUUIDString(instance.uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def instance_dir(self, host, instance):
        return os.path.join(self.paths[host], instance.uuid)

    def stop(self):
        problems = []
        for instance in self.instances:
            for host, driver in self.drivers.items():
                try:
                    if self.domain(host, instance) is not None:
                        driver.destroy(self.context, instance, [], None)
                except Exception as exc:
                    problems.append('destroy %s on %s: %s' % (
                        instance.uuid, host, exc))
        if getattr(self, 'conn', None) is not None:
            try:
                self.conn.domainEventDeregisterAny(self._callback)
                self.conn.close()
            except libvirt.libvirtError as exc:
                problems.append('closing the connection: %s' % exc)
        for host, driver in self.drivers.items():
            try:
                driver.cleanup_host(host)
            except Exception as exc:
                problems.append('closing %s: %s' % (host, exc))
        for fixture in reversed(self.fixtures):
            try:
                fixture.cleanUp()
            except Exception as exc:
                problems.append('cleanup: %s' % exc)
        shutil.rmtree(self.work, ignore_errors=True)
        if os.path.exists(LIBVIRT_LOG):
            os.unlink(LIBVIRT_LOG)
        for problem in problems:
            print('live_migration_bench: %s' % problem, file=sys.stderr)

    # -- one guest -----------------------------------------------------------

    def boot_guest(self):
        """A fresh guest on host1 with data in its overlay, dirtying memory.

        Returns ``(instance, overlay path)``.
        """
        self._ids += 1
        flavor = objects.Flavor(
            id=1, name='bench.live', flavorid='bench', vcpus=1,
            memory_mb=128, root_gb=1, ephemeral_gb=0, swap=0,
            extra_specs={})
        instance, image_meta = demo.make_instance(self.image, flavor,
                                                  self._ids)
        instance.host = HOST1
        instance.node = self.drivers[HOST1].get_available_nodes()[0]
        instance.progress = 0
        self.instances.append(instance)
        driver = self.drivers[HOST1]
        driver.spawn(self.context, instance, image_meta, [], None, {},
                     power_on=False)
        overlay = os.path.join(self.instance_dir(HOST1, instance), 'disk')
        self._write_data(overlay)
        driver.power_on(self.context, instance, [])
        self.wait_console(HOST1, instance, 'PYVIRT-DIRTY ')
        console = self.console(HOST1, instance)
        if 'PYVIRT-DIRTY rate=' not in console:
            raise RuntimeError('the guest does not dirty its memory:\n%s' %
                               console[-2000:])
        return instance, overlay

    def _write_data(self, overlay):
        if not self.args.written_mib:
            return
        virtual = jsonutils.loads(_run(['qemu-img', 'info', '--output=json',
                                        overlay]))['virtual-size']
        chunk = os.path.getsize(self.random_chunk)
        # Past the first MiB (the guest's marker), spread over the disk.
        stride = (virtual - units.Mi) // EXTENTS
        for index in range(EXTENTS):
            _run(['qemu-io', '-f', 'qcow2', '-c', 'write -s %s %d %d' % (
                self.random_chunk, units.Mi + index * stride, chunk),
                overlay])

    def console_path(self, host, instance):
        return os.path.join(self.instance_dir(host, instance), 'console.log')

    def console(self, host, instance):
        try:
            with open(self.console_path(host, instance), 'rb') as handle:
                return handle.read().decode('ascii', 'replace')
        except FileNotFoundError:
            return ''

    def wait_console(self, host, instance, text, timeout=BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while text not in self.console(host, instance):
            if time.monotonic() > deadline:
                raise RuntimeError('%s did not print %r on %s within %d s' % (
                    instance.uuid, text, host, timeout))
            time.sleep(0.2)

    def dirty_rate(self, host, instance, seconds=1):
        """QEMU's estimate of the guest's dirty rate (MiB/s), or None."""
        dom = self.domain(host, instance)
        try:
            dom.startDirtyRateCalc(seconds, 0)
        except libvirt.libvirtError:
            return None
        deadline = time.monotonic() + seconds + 30
        while time.monotonic() < deadline:
            time.sleep(0.25)
            records = self.connection(host).domainListGetStats(
                [dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)
            stats = records[0][1] if records else {}
            if stats.get('dirtyrate.calc_status') == \
                    libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
                return stats.get('dirtyrate.megabytes_per_second')
        return None

    def remove_guest(self, instance):
        """Destroy the guest wherever it is; remove its files on both."""
        for host, driver in self.drivers.items():
            if self.domain(host, instance) is not None:
                driver.destroy(self.context, instance, [], None)
            shutil.rmtree(self.instance_dir(host, instance),
                          ignore_errors=True)
        self.instances.remove(instance)

    def describe(self, instance):
        """Where the guest's domains are, and their states."""
        found = []
        for host in (HOST1, HOST2):
            dom = self.domain(host, instance)
            if dom is None:
                found.append('no domain on %s' % host)
            else:
                state, reason = dom.state()
                found.append('on %s: state %d reason %d%s' % (
                    host, state, reason,
                    ', persistent' if dom.isPersistent() else ''))
        return ', '.join(found)

    def check_moved(self, instance):
        """Problems with the guest after its move (empty: none)."""
        problems = []
        dom = self.domain(HOST2, instance)
        if dom is None or dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            problems.append('not running on %s' % HOST2)
        elif not dom.isPersistent():
            problems.append('not defined on %s' % HOST2)
        if self.domain(HOST1, instance) is not None:
            problems.append('still defined on %s' % HOST1)
        if os.path.exists(self.instance_dir(HOST1, instance)):
            problems.append('files left on %s' % HOST1)
        return problems

    # -- the contenders ------------------------------------------------------

    @contextlib.contextmanager
    def step(self, name):
        """Add the seconds the block takes to step ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0) + (
                time.perf_counter() - start)

    def driver_migration(self, instance):
        """Live-migrate ``instance`` host1 -> host2 the way nova does."""
        src, dst = self.drivers[HOST1], self.drivers[HOST2]
        ctx = self.context
        migration = objects.Migration(
            instance_uuid=instance.uuid, source_compute=HOST1,
            dest_compute=HOST2, migration_type='live-migration',
            status='running')
        done = []

        def post_method(context, instance, dest, block_migration,
                        migrate_data):
            with self.step('post at source'):
                src.post_live_migration(context, instance, None,
                                        migrate_data)
                src.post_live_migration_at_source(context, instance, [])
                src.cleanup(context, instance, [], None, destroy_disks=True,
                            migrate_data=migrate_data)
            done.append(True)

        def recover_method(context, instance, dest, migrate_data,
                           migration_status='error'):
            raise RuntimeError('the driver rolled back the migration of %s '
                               '(%s)' % (instance.uuid, migration_status))

        with self.step('check destination'):
            data = dst.check_can_live_migrate_destination(
                ctx, instance, None, None, block_migration=None,
                disk_over_commit=False)
        try:
            with self.step('check source'):
                data = src.check_can_live_migrate_source(ctx, instance, data)
        finally:
            with self.step('check destination'):
                dst.cleanup_live_migration_destination_check(ctx, data)
        with self.step('pre_live_migration'):
            disk_info = src.get_instance_disk_info(instance)
            data = dst.pre_live_migration(ctx, instance, None, [],
                                          disk_info, data)
        data.migration = migration
        with self.step('live_migration'):
            src.live_migration(ctx, instance, HOST2, post_method,
                               recover_method,
                               block_migration=data.block_migration,
                               migrate_data=data)
        if not done:
            raise RuntimeError('the driver did not call post_method')
        instance.host = HOST2
        with self.step('post at destination'):
            dst.post_live_migration_at_destination(
                ctx, instance, [], block_migration=data.block_migration)
        return data

    def capture_migrate(self):
        """Record what the driver passes to ``migrateToURI3``."""
        real = guest_mod.Guest.migrate
        captured = self.captured

        def migrate(guest, dest_uri, params, flags):
            captured.append((dest_uri, dict(params), flags))
            with self.step('migrateToURI3'):
                return real(guest, dest_uri, params, flags)

        def set_downtime(guest, milliseconds):
            self.downtimes.append(milliseconds)
            return real_downtime(guest, milliseconds)

        real_downtime = guest_mod.Guest.migrate_set_max_downtime
        guest_mod.Guest.migrate = migrate
        guest_mod.Guest.migrate_set_max_downtime = set_downtime

    def libvirt_migration(self, instance):
        """The same move with bare libvirt (see the module docstring)."""
        dest_uri, params, flags = self.captured[0]
        src_dir = self.instance_dir(HOST1, instance)
        dst_dir = self.instance_dir(HOST2, instance)
        with self.step('prepare host2'):
            self._prepare_bare(src_dir, dst_dir)
        dom = self.conn.lookupByUUIDString(instance.uuid)
        with self.step('migrateToURI3'):
            dom.migrateToURI3(dest_uri, params, flags)
        with self.step('rm on host1'):
            shutil.rmtree(src_dir)

    def _prepare_bare(self, src_dir, dst_dir):
        overlay = os.path.join(src_dir, 'disk')
        info = jsonutils.loads(_run(['qemu-img', 'info', '-U',
                                     '--output=json', overlay]))
        base = info['full-backing-filename']
        base_here = os.path.join(self.paths[HOST2],
                                 os.path.relpath(base, self.paths[HOST1]))
        os.mkdir(dst_dir)
        for name in ('kernel', 'ramdisk'):
            shutil.copy(os.path.join(src_dir, name),
                        os.path.join(dst_dir, name))
        if not os.path.exists(base_here):
            os.makedirs(os.path.dirname(base_here), exist_ok=True)
            shutil.copy(base, base_here)
        _run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base_here,
              '-F', info['backing-filename-format'],
              os.path.join(dst_dir, 'disk'), str(info['virtual-size'])])

    def measure(self, contender):
        instance, overlay = self.boot_guest()
        try:
            rate = self.dirty_rate(HOST1, instance)
            allocated = _allocated(overlay)
            watch = guest_counter.CounterWatch([
                self.console_path(HOST1, instance),
                self.console_path(HOST2, instance)]).start()
            try:
                self.steps = {}
                start = time.perf_counter()
                if contender == 'driver':
                    self.driver_migration(instance)
                else:
                    self.libvirt_migration(instance)
                seconds = time.perf_counter() - start
                self._wait_counting(watch, instance)
            finally:
                watch.stop()
            problems = self.check_moved(instance)
            if problems:
                raise RuntimeError('%s after the %s migration: %s' % (
                    instance.uuid, contender, '; '.join(problems)))
            stats = self.completed_stats(instance)
            boots = {b for _t, b, _p in watch.seen.values()}
            if len(boots) != 1:
                raise RuntimeError('%s rebooted: boot ids %s' % (
                    instance.uuid, sorted(boots)))
            gap = watch.longest_gap()[0]
        finally:
            self.remove_guest(instance)
        return Sample(seconds, allocated, stats, gap, rate, self.steps)

    def _wait_counting(self, watch, instance):
        path = self.console_path(HOST2, instance)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while len(watch.on(path)) < LINES_AFTER:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    '%s printed %d counter lines on %s within %d s of its '
                    'move (%d on %s); %s; its console there ends with:\n%s'
                    % (instance.uuid, len(watch.on(path)), HOST2,
                       BOOT_TIMEOUT, len(watch.on(self.console_path(
                           HOST1, instance))), HOST1,
                       self.describe(instance),
                       self.console(HOST2, instance)[-1500:]))
            time.sleep(0.1)


def flag_names(flags):
    names = [name[len('VIR_MIGRATE_'):] for name in dir(libvirt)
             if name.startswith('VIR_MIGRATE_') and
             not name.startswith('VIR_MIGRATE_PARAM_') and
             isinstance(getattr(libvirt, name), int) and
             getattr(libvirt, name) and
             bin(getattr(libvirt, name)).count('1') == 1 and
             flags & getattr(libvirt, name)]
    return '|'.join(sorted(names))


def report(label, samples):
    times = [s.seconds for s in samples]
    gaps = [s.gap * 1000 for s in samples]
    downtimes = [s.downtime_ms for s in samples
                 if s.downtime_ms is not None]
    rates = [s.dirty_rate for s in samples if s.dirty_rate is not None]
    print('%-9s %6d %8.2f %8.2f %8.2f %7.1f%% %8.0f %8.0f %8s %10s %10s %6s'
          % (label, len(samples), statistics.median(times), min(times),
             max(times), 100.0 * (max(times) / min(times) - 1),
             statistics.median(gaps), min(gaps),
             '%.0f' % statistics.median(downtimes) if downtimes else '-',
             _mib(statistics.median(s.memory_bytes for s in samples)),
             _mib(statistics.median(s.disk_bytes for s in samples)),
             '%.0f' % statistics.median(rates) if rates else '-'))


def header():
    print('%-9s %6s %8s %8s %8s %8s %8s %8s %8s %10s %10s %6s' % (
        '', 'rounds', 'median s', 'min s', 'max s', 'spread', 'gap ms',
        'min gap', 'libv ms', 'memory', 'disk', 'MB/s'))


def run(bench, args):
    print('live_migration_bench: %d round(s); guest 128 MiB, 1 vCPU, TCG, '
          'dirtying %d MiB/s over %d MiB; %d MiB written into its overlay%s'
          % (args.rounds, args.dirty_rate, args.dirty_size, args.written_mib,
             ', QUICK' if args.quick else ''))
    print('versions: libvirt-python %s, nova %s' % (
        benchlib.package_version('libvirt-python'),
        benchlib.package_version('nova')))
    print('timing: wall clock, medians; %d CPUs, load average %s' % (
        os.cpu_count() or 0, benchlib.loadavg()))
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print('note: the load average exceeds the CPU count: other jobs '
              'compete for the CPUs;\nexpect a wide spread and rerun '
              'before quoting figures')
    bench.start()
    conn = bench.connection(HOST1)
    print('hosts: %s (%s) and %s (%s), libvirt %d, QEMU %d, over TLS' % (
        HOST1, ADDRESSES[HOST1], HOST2, ADDRESSES[HOST2],
        conn.getLibVersion(), conn.getVersion()))
    bench.capture_migrate()

    samples = {'driver': [], 'libvirt': []}
    for index in range(args.warmup):
        for contender in ('driver', 'libvirt'):
            bench.measure(contender)
    for index in range(args.rounds):
        order = ['driver', 'libvirt']
        if index % 2:
            order.reverse()
        for contender in order:
            sample = bench.measure(contender)
            samples[contender].append(sample)
            print('  round %d %-7s %6.2f s, gap %4.0f ms, libvirt downtime '
                  '%s ms, memory %s, disk %s of %s allocated, dirty rate %s '
                  'MB/s, load %s' % (
                      index + 1, contender, sample.seconds, sample.gap * 1000,
                      sample.downtime_ms, _mib(sample.memory_bytes),
                      _mib(sample.disk_bytes), _mib(sample.allocated),
                      sample.dirty_rate, benchlib.loadavg()), flush=True)

    dest_uri, params, flags = bench.captured[0]
    print('\nthe driver called migrateToURI3(%s, %s, %s)' % (
        dest_uri, params, flag_names(flags)))
    print('while it ran, the driver allowed a pause of %s ms '
          '(migrateSetMaxDowntime, steps of [pyvirt] live_migration_downtime*)'
          % ', '.join(str(d) for d in sorted(set(bench.downtimes))))
    print('the baseline, on a connection of its own: mkdir on host2, copy '
          'kernel and initrd, copy the base if host2 has none, qemu-img '
          'create the overlay;\nmigrateToURI3 with those arguments and '
          'QEMU\'s default allowed pause (300 ms); rm -r on host1')
    print('\n== driver live migration vs bare migrateToURI3 (interleaved '
          'rounds) ==')
    header()
    report('driver', samples['driver'])
    report('libvirt', samples['libvirt'])
    ours = statistics.median(s.seconds for s in samples['driver'])
    theirs = statistics.median(s.seconds for s in samples['libvirt'])
    ratio = ours / theirs
    min_ratio = min(s.seconds for s in samples['driver']) / min(
        s.seconds for s in samples['libvirt'])
    per_round = sorted(a.seconds / b.seconds for a, b in zip(
        samples['driver'], samples['libvirt']))
    print('ratio driver / libvirt: %.3f (medians), %.3f (minimums), '
          'per-round %.3f..%.3f; target <= %.2f' % (
              ratio, min_ratio, per_round[0], per_round[-1], TARGET_TIME))
    print('\nwhere the time goes (medians, s; "job" is libvirt\'s '
          'time_elapsed of the migration job):')
    for name in ('driver', 'libvirt'):
        got = samples[name]
        names = list(got[0].steps)
        parts = ['%s %.3f' % (n, statistics.median(s.steps.get(n, 0)
                                                   for s in got))
                 for n in names]
        parts.append('job %.3f' % statistics.median(
            s.stats.get('time_elapsed', 0) / 1000.0 for s in got))
        print('  %-8s %s' % (name, ', '.join(parts)))
    print('gap ms: the longest silence of the guest\'s 100 ms counter '
          '(pause + up to 100 ms); libv ms: the downtime libvirt reports')

    wires = [(s.disk_bytes / s.allocated, s) for c in samples.values()
             for s in c]
    worst, worst_sample = max(wires, key=lambda w: w[0])
    # Nothing copied would be a block migration that lost the guest's data
    # (the overlay holds --written-mib of it), not a good ratio.
    copied = all(s.disk_bytes >= args.written_mib * units.Mi
                 for c in samples.values() for s in c)
    checks = [
        ('driver / libvirt time', '%.3f (%.2f s / %.2f s)' % (
            ratio, ours, theirs), '<= %.2f' % TARGET_TIME,
         None if args.quick else ratio <= TARGET_TIME),
        ('disk copied / allocated', '%.3f (%s of %s, worst sample)' % (
            worst, _mib(worst_sample.disk_bytes),
            _mib(worst_sample.allocated)), '<= %.2f' % TARGET_WIRE,
         copied and worst <= TARGET_WIRE),
    ]
    for name in ('driver', 'libvirt'):
        got = samples[name]
        downtimes = [s.downtime_ms for s in got
                     if s.downtime_ms is not None]
        checks.append(('  %s downtime' % name, 'gap %.0f ms, libvirt %s ms' % (
            1000 * statistics.median(s.gap for s in got),
            '%.0f' % statistics.median(downtimes) if downtimes else '-'),
            'info', None))
    return benchlib.print_summary('summary', checks, (24, 42, 7))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 1 round, no warm-up, 8 MiB '
                             'written (the time ratio is INFO)')
    parser.add_argument('--rounds', type=int, default=None,
                        help='interleaved rounds (default 7)')
    parser.add_argument('--warmup', type=int, default=None,
                        help='untimed rounds first (default 1)')
    parser.add_argument('--dirty-rate', type=int, default=8,
                        help='MiB/s of memory the guest rewrites')
    parser.add_argument('--dirty-size', type=int, default=16,
                        help='MiB of memory the guest rewrites in turn')
    parser.add_argument('--written-mib', type=int, default=None,
                        help='random data written into the overlay before '
                             'the guest boots (default 64)')
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 7)
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.written_mib is None:
        args.written_mib = 8 if args.quick else 64
    return args


def main(argv=None):
    args = parse_args(argv)
    # SIGTERM must unwind through the clean-up, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(
        128 + signum))
    bench = Bench(args)
    try:
        return run(bench, args)
    finally:
        bench.stop()


if __name__ == '__main__':
    sys.exit(main())
