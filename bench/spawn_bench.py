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

"""Spawning through the driver against bare libvirt, on embedded QEMU.

Run from the repository root::

    .venv/bin/python bench/spawn_bench.py          # full run
    .venv/bin/python bench/spawn_bench.py --quick  # smoke run

Three measurements, all in one run on one embedded QEMU root (``type=qemu``,
TCG), with the test guest of ``tools/guest_image/build.py`` served by a
local image service:

1. spawn of a cached image through ``PyVirtDriver.spawn`` against
   ``defineXML`` + ``create`` of the very XML the driver generated, on the
   driver's own connection.  Both return once the domain runs.
2. spawn from a 64 MiB and from a 4 GiB base image (qcow2, sparse, same
   content at the start, both cached): the root disk must be a copy-on-write
   overlay, so the size of the base must not matter.
3. 4 concurrent spawns of one uncached image against one uncached spawn:
   the image must be downloaded once, and the 4 must not take much longer
   than the 1.

4. spawn with one Open vSwitch port (plugged by os-vif, the guest started
   paused until ``network-vif-plugged``, which a stand-in for nova-compute
   delivers at once) against the same spawn without a port, in a private
   OVS (``tests/fixtures/ovs.py``: userspace datapath, own mount and network
   namespaces), the bench re-running itself inside those namespaces.

Informational extras: where a spawn's time goes, step by step (1b, and 3c
for concurrent spawns), the same 4-against-1 comparison for bare libvirt
(3b: the host's floor for section 3), and with ``--profile`` a cProfile of
cached spawns.

Contenders are interleaved (alternating which goes first) over repeated
rounds; the clock is wall time and the figures are medians.  The exit
status is 1 when a target is missed.  Everything the bench creates
(domains, instance files, images, the embedded root) is removed at the
end, also after a failure, Ctrl-C or SIGTERM.
"""

import argparse
import collections
import contextlib
import cProfile
import gc
import os
import pstats
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# Importing nova pulls in eventlet through oslo.privsep, which warns.
warnings.filterwarnings('ignore', message=r'(?s)\s*eventlet')
# libvirt reads its log settings when the module is imported. Its messages
# (every domain is "tainted: high-privileges" in an embedded root, lookups
# of domains already gone are errors) would bury the figures: they go to a
# file, removed at the end.
LIBVIRT_LOG = os.path.join(tempfile.gettempdir(),
                           'pyvirt-spawn-bench-%d.libvirt.log' % os.getpid())
if __name__ == '__main__':
    os.environ.setdefault('LIBVIRT_LOG_OUTPUTS', '3:file:%s' % LIBVIRT_LOG)

from nova import context as nova_context  # noqa: E402
from nova import exception  # noqa: E402
from nova.network import model as network_model  # noqa: E402
from nova import objects  # noqa: E402
from nova.virt import virtapi  # noqa: E402
from oslo_serialization import jsonutils  # noqa: E402
from oslo_utils import units  # noqa: E402
from oslo_utils import uuidutils  # noqa: E402

from bench import benchlib  # noqa: E402
from nova_pyvirt.cmd import demo  # noqa: E402
from nova_pyvirt.cmd import demo_images  # noqa: E402
from nova_pyvirt import driver as pyvirt_driver  # noqa: E402
from nova_pyvirt.hypervisor import connection  # noqa: E402
from nova_pyvirt.hypervisor import guest as guest_mod  # noqa: E402
from nova_pyvirt.network import vifs as network_vifs  # noqa: E402
from tests.fixtures import embedded  # noqa: E402
from tests.fixtures import ovs  # noqa: E402

TARGET_SPAWN = 1.15        # driver spawn / defineXML + create
TARGET_BASE_SIZE = 1.1     # spawn from 4 GiB base / from 64 MiB base
TARGET_CONCURRENT = 1.6    # 4 concurrent uncached spawns / 1
TARGET_PORT = 1.15         # spawn with one OVS port / without a port
PORT_RESULT = 'spawn_bench-port-ratio'   # the child's result line
PRIVSEP_HELPER = os.path.join(os.path.dirname(sys.executable),
                              'privsep-helper')
CONCURRENCY = 4

SMALL_BASE = 64 * units.Mi
LARGE_BASE = 4 * units.Gi
# Flavor root disk for section 2: the same for both bases, and large
# enough for the 4 GiB one.
BASE_ROOT_GB = 5
# A copy-on-write root disk holds only qcow2 metadata right after spawn.
COW_MAX_ALLOCATED = 4 * units.Mi

GUEST_IMAGE = os.path.join(_ROOT, '.cache', 'guest-image')
BUILDER = os.path.join(_ROOT, 'tools', 'guest_image', 'build.py')


class CountingImageService(demo_images.LocalImageService):
    """The local image service, also counting downloads per image id."""

    def __init__(self, directory):
        super(CountingImageService, self).__init__(directory)
        self.by_image = collections.Counter()

    def download(self, context, image_id, *args, **kwargs):
        with self._lock:
            self.by_image[image_id] += 1
        return super(CountingImageService, self).download(
            context, image_id, *args, **kwargs)


class Bench(object):
    """The driver on a private embedded root, and what it spawned.

    Everything lives in one temporary directory: the embedded root, the
    instances path (with the image cache), the images and the locks.
    :meth:`close` destroys every domain and removes the directory.
    """

    def __init__(self, guest_dir):
        self.guest_dir = guest_dir
        self.state_dir = tempfile.mkdtemp(prefix='pyvirt-spawn-bench-')
        self.live = []
        self.ports = {}            # instance uuid -> its network_info
        self.driver = None
        self._ids = 0
        self._ids_lock = threading.Lock()

    def open(self):
        # The ~8 s QEMU capability probe is paid once per checkout (see
        # tests/fixtures/embedded.py): seed its results into the new root.
        if os.path.isdir(embedded.PROBE_CACHE):
            shutil.copytree(embedded.PROBE_CACHE,
                            os.path.join(self.state_dir, 'embed', 'cache'))
        self.conf = demo.configure(self.state_dir)
        # Every embedded root allocates VNC ports on its own: another
        # process's guests on this host can take the port libvirt picked
        # ("Address already in use"). The bench needs no display.
        self.conf.set_override('enabled', False, group='vnc')
        objects.register_all()
        self.context = nova_context.get_admin_context()
        self.images = CountingImageService(
            os.path.join(self.state_dir, 'images'))
        self.root_image = demo.register_images(self.images, self.guest_dir)
        self.driver = pyvirt_driver.PyVirtDriver(virtapi.VirtAPI(),
                                                 image_api=self.images)
        self.driver.init_host(self.conf.host)
        self.host = self.driver._host
        self.conn = self.host.get_connection()
        self.cache = self.driver._disks.cache

    def versions(self):
        return (_dotted(self.host.get_libversion()),
                _dotted(self.host.get_version()))

    def add_image(self, path, disk_format, name, image_id=None):
        """Register ``path`` booting like the test guest (kernel, initrd)."""
        props = dict(self.root_image['properties'])
        return self.images.add(path, disk_format, name=name,
                               properties=props, image_id=image_id)

    def forget_image(self, image):
        """Remove ``image`` from the image service and from the cache."""
        self.images.delete(self.context, image['id'])
        path = self.cache.path_for(image['id'])
        if os.path.exists(path):
            os.unlink(path)

    def instance(self, image, root_gb=1):
        with self._ids_lock:
            self._ids += 1
            number = self._ids
        flavor = objects.Flavor(
            name='bench.tiny', flavorid='bench', vcpus=1, memory_mb=128,
            root_gb=root_gb, ephemeral_gb=0, swap=0, extra_specs={})
        instance, image_meta = demo.make_instance(image, flavor, number)
        self.live.append(instance)
        return instance, image_meta

    def spawn(self, instance, image_meta, network_info=None):
        self.driver.spawn(self.context, instance, image_meta, [], None, {},
                          network_info=network_info)
        if network_info:
            self.ports[instance.uuid] = network_info

    def destroy(self, instance):
        self.driver.destroy(self.context, instance,
                            self.ports.pop(instance.uuid, []), None)
        self.live.remove(instance)

    def destroy_many(self, instances):
        """Destroy ``instances`` in parallel.

        Untimed, but slow: libvirt's destroy waits until the daemonized
        QEMU has been reaped by PID 1, which takes a second or more here.
        """
        instances = [i for i in instances if i in self.live]
        if instances:
            run_concurrently([lambda i=i: self.destroy(i) for i in instances],
                             'bench-destroy')

    def remove_domains(self, instances):
        """Destroy and undefine the domains of ``instances``, in parallel.

        The instances' files stay.
        """
        def remove(instance):
            try:
                dom = self.host.get_domain_by_uuid(instance.uuid)
            except exception.InstanceNotFound:
                return
            if dom.isActive():
                dom.destroy()
            dom.undefine()

        run_concurrently([lambda i=i: remove(i) for i in instances],
                         'bench-undefine')

    def root_disk(self, instance):
        return os.path.join(self.conf.instances_path, instance.uuid,
                            'disk')

    def close(self):
        """Destroy every domain and remove every file, whatever happened."""
        problems = []
        try:
            if self.driver is not None:
                for instance in list(self.live):
                    try:
                        self.destroy(instance)
                    except Exception as exc:
                        problems.append('destroy %s: %s' % (instance.uuid,
                                                            exc))
                try:
                    for dom in self.conn.listAllDomains():
                        if dom.isActive():
                            dom.destroy()
                        dom.undefine()
                except Exception as exc:
                    problems.append('removing domains: %s' % exc)
                try:
                    self.host.cleanup()
                except Exception as exc:
                    problems.append('closing the connection: %s' % exc)
        finally:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        for problem in problems:
            print('spawn_bench: cleanup: %s' % problem, file=sys.stderr)
        return not problems


def _dotted(number):
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000,
                         number % 1000)


_allocated = benchlib.allocated_bytes


def _qemu_img(*args):
    return subprocess.run(('qemu-img',) + args, check=True,
                          stdout=subprocess.PIPE, text=True).stdout


def _backing(path):
    """The backing file ``qemu-img info`` reports for ``path`` (or None)."""
    info = jsonutils.loads(_qemu_img('info', '--output=json', '--force-share',
                                     path))
    return info.get('full-backing-filename') or info.get('backing-filename')


# ---------------------------------------------------------------------------
# Timing.

Timing = collections.namedtuple('Timing', 'label samples')


def interleaved(contenders, rounds):
    """Run each ``(label, run)`` ``rounds`` times, alternating the order.

    ``run()`` does its own untimed set-up and tear-down and returns the
    seconds of the part it times.
    """
    samples = [[] for _ in contenders]
    for index in range(rounds):
        order = list(range(len(contenders)))
        if index % 2:
            order.reverse()
        for which in order:
            samples[which].append(contenders[which][1]())
    return [Timing(c[0], s) for c, s in zip(contenders, samples)]


def _timed(func, *args):
    gc.collect()
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def report_timing(timings, target, what):
    """Print one timing table; return (median ratio, min ratio).

    The ratio is the first timing over the second.
    """
    print('%-22s %6s %10s %10s %10s %8s' % (
        '', 'rounds', 'median ms', 'min ms', 'max ms', 'spread'))
    for timing in timings:
        s = timing.samples
        print('%-22s %6d %10.1f %10.1f %10.1f %7.1f%%' % (
            timing.label, len(s), 1e3 * statistics.median(s),
            1e3 * min(s), 1e3 * max(s), 100.0 * (max(s) / min(s) - 1)))
    first, second = timings[0].samples, timings[1].samples
    median_ratio = statistics.median(first) / statistics.median(second)
    min_ratio = min(first) / min(second)
    per_round = sorted(a / b for a, b in zip(first, second))
    print('ratio %s: %.3f (medians), %.3f (minimums), per-round '
          '%.3f..%.3f; target <= %.2f' % (
              what, median_ratio, min_ratio, per_round[0], per_round[-1],
              target))
    return median_ratio, min_ratio


# ---------------------------------------------------------------------------
# 1. Spawn against defineXML + create of the same XML.

def capture_spawn(bench, image):
    """Spawn ``image``; return the instance and the XML the driver defined."""
    host = bench.host
    captured = []
    real = host.define_domain

    def define_domain(xml_text):
        captured.append(xml_text)
        return real(xml_text)

    host.define_domain = define_domain
    try:
        instance, image_meta = bench.instance(image)
        bench.spawn(instance, image_meta)
    finally:
        del host.define_domain
    return instance, captured[-1]


def section_spawn(bench, rounds):
    print('\n== 1. spawn (image cached) vs defineXML + create of the same '
          'XML ==')
    # Caches the image and warms the driver; the XML it defines is the
    # baseline's. The domain goes, the instance's files stay: the XML
    # points at its disk, kernel and initrd.
    instance, xml_text = capture_spawn(bench, bench.root_image)
    dom = bench.host.get_domain_by_uuid(instance.uuid)
    dom.destroy()
    dom.undefine()
    print('XML from the driver: %d chars, domain %s; the baseline defines '
          'and starts it on the driver\'s connection, then destroys and '
          'undefines it' % (len(xml_text), instance.name))

    def libvirt_run():
        gc.collect()
        start = time.perf_counter()
        dom = bench.conn.defineXML(xml_text)
        dom.create()
        elapsed = time.perf_counter() - start
        dom.destroy()
        dom.undefine()
        return elapsed

    def driver_run():
        instance, image_meta = bench.instance(bench.root_image)
        elapsed = _timed(bench.spawn, instance, image_meta)
        bench.destroy(instance)
        return elapsed

    libvirt_run()
    try:
        timings = interleaved([('driver spawn', driver_run),
                               ('defineXML + create', libvirt_run)], rounds)
    finally:
        bench.destroy(instance)
    return timings, report_timing(timings, TARGET_SPAWN,
                                  'spawn/define+create')


class Stages(object):
    """Wall time of each step of spawn, per thread, by wrapping its parts.

    Use as a context manager: the driver's parts are wrapped on entry and
    restored on exit.  Times are inclusive and summed per thread name, so
    concurrent spawns (one thread each) are told apart.
    """

    ROWS = (
        ('fetch', 'image cache fetch, in all'),
        ('image_download', '  copy from the image service (cache miss)'),
        ('inspect', '  inspect: format inspector + qemu-img info'),
        ('fetch_rest', '  waiting for the image lock, rest'),
        ('root', 'root disk: qemu-img create (overlay)'),
        ('download', 'kernel + initrd copied into the instance'),
        ('design', 'guest design'),
        ('define', 'defineXML'),
        ('launch', 'createWithFlags + wait for RUNNING'),
        ('rest', 'rest: instance dir, disk.info, to_xml, logs'),
        ('total', 'spawn, in all'),
    )

    def __init__(self, bench):
        self.bench = bench
        self.times = collections.defaultdict(float)
        self._kernel_ramdisk = {bench.root_image['properties'].get(key)
                                for key in ('kernel_id', 'ramdisk_id')}
        disks = bench.driver._disks
        self._patches = [
            (disks.cache, 'fetch', 'fetch'),
            (disks.cache, '_inspect', 'inspect'),
            (bench.images, 'download', self._image_key),
            (disks.backend, 'create_root', 'root'),
            (disks, '_download', 'download'),
            (bench.driver, '_design', 'design'),
            (bench.host, 'define_domain', 'define'),
        ]

    def _image_key(self, context, image_id, *args, **kwargs):
        return None if image_id in self._kernel_ramdisk else 'image_download'

    def _wrap(self, func, key):
        def wrapper(*args, **kwargs):
            name = key(*args, **kwargs) if callable(key) else key
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                if name:
                    self.times[threading.current_thread().name, name] += (
                        time.perf_counter() - start)
        return wrapper

    def __enter__(self):
        # These are the driver's internals: a step whose method is gone
        # shows as 0 (its time moves to "rest") instead of breaking the run.
        self._patched = []
        for obj, attr, key in self._patches:
            func = getattr(obj, attr, None)
            if func is not None:
                setattr(obj, attr, self._wrap(func, key))
                self._patched.append((obj, attr))
        self._launch = guest_mod.Guest.launch
        guest_mod.Guest.launch = self._wrap(self._launch, 'launch')
        return self

    def __exit__(self, *exc):
        guest_mod.Guest.launch = self._launch
        for obj, attr in self._patched:
            delattr(obj, attr)

    def spawns(self, image, count):
        """Spawn ``count`` instances of ``image`` at once; one dict each."""
        instances = [self.bench.instance(image) for _ in range(count)]
        self.times.clear()
        try:
            _elapsed, totals, names = spawn_concurrently(self.bench,
                                                         instances)
        finally:
            self.bench.destroy_many([pair[0] for pair in instances])
        return [self.collect(name, total)
                for name, total in zip(names, totals)]

    def collect(self, thread_name, total):
        """The stages of the spawn ``thread_name`` ran, with its total."""
        run = {key: value for (thread, key), value in self.times.items()
               if thread == thread_name}
        run['total'] = total
        run['fetch_rest'] = run.get('fetch', 0.0) - run.get(
            'image_download', 0.0) - run.get('inspect', 0.0)
        run['rest'] = total - sum(run.get(key, 0.0) for key in (
            'fetch', 'root', 'download', 'design', 'define', 'launch'))
        return run


def run_concurrently(funcs, prefix='bench-call'):
    """Call each of ``funcs`` in its own thread, all released together.

    Returns the seconds until the last one returned, the seconds each
    took, and the thread names; re-raises the first error.
    """
    barrier = threading.Barrier(len(funcs) + 1)
    times = [None] * len(funcs)
    errors = []

    def body(index):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        start = time.perf_counter()
        try:
            funcs[index]()
        except BaseException as exc:
            errors.append(exc)
        finally:
            times[index] = time.perf_counter() - start

    threads = [threading.Thread(target=body, args=(index,),
                                name='%s-%d' % (prefix, index))
               for index in range(len(funcs))]
    try:
        for thread in threads:
            thread.start()
        gc.collect()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): let the calls already running
        # finish, so that the clean-up sees every domain they created.
        barrier.abort()
        for thread in threads:
            if thread.ident is not None:
                thread.join()
        raise
    if errors:
        raise errors[0]
    return elapsed, times, [thread.name for thread in threads]


def spawn_concurrently(bench, instances):
    """Spawn each ``(instance, image_meta)`` in its own thread."""
    return run_concurrently(
        [lambda pair=pair: bench.spawn(*pair) for pair in instances],
        'bench-spawn')


def _stage_ms(runs, key, pick=statistics.median):
    return 1e3 * pick([run.get(key, 0.0) for run in runs])


def section_stages(bench, count, baseline):
    print('\n== 1b. where the spawn time goes (median of %d instrumented '
          'spawns, image cached) ==' % count)
    with Stages(bench) as stages:
        runs = [stages.spawns(bench.root_image, 1)[0] for _ in range(count)]
    total = _stage_ms(runs, 'total')
    for key, label in Stages.ROWS:
        value = _stage_ms(runs, key)
        print('  %-46s %8.1f ms %5.1f%%' % (label, value,
                                            100 * value / total))
    print('  %-46s %8.1f ms' % ('defineXML + create (median, section 1)',
                                1e3 * baseline))
    return runs


def section_profile(bench, count, limit=30):
    print('\n== profile: cProfile over %d cached spawns, by cumulative time '
          '==' % count)
    profiler = cProfile.Profile()
    for _ in range(count):
        instance, image_meta = bench.instance(bench.root_image)
        gc.collect()
        profiler.enable()
        try:
            bench.spawn(instance, image_meta)
        finally:
            profiler.disable()
        bench.destroy(instance)
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][3])
    print('%9s %12s %12s  %s' % ('calls', 'own ms/spawn', 'cum ms/spawn',
                                 'function'))
    for (path, line, func), (_cc, calls, own, cum, _callers) in \
            rows[:limit]:
        print('%9d %12.2f %12.2f  %s' % (
            calls // count, 1e3 * own / count, 1e3 * cum / count,
            _where(path, line, func)))


def _where(path, line, func):
    if path == '~':
        return func
    for prefix in (_ROOT + os.sep, os.path.dirname(os.__file__) + os.sep):
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    else:
        marker = 'site-packages' + os.sep
        if marker in path:
            path = path.split(marker, 1)[1]
    return '%s:%d(%s)' % (path, line, func)


# ---------------------------------------------------------------------------
# 2. Base image size.

def make_base(bench, path, size):
    """A sparse qcow2 ``size`` bytes long starting with the marker disk."""
    _qemu_img('convert', '-f', 'raw', '-O', 'qcow2',
              os.path.join(bench.guest_dir, 'disk-marker.raw'), path)
    _qemu_img('resize', '-q', '-f', 'qcow2', path, str(size))


def section_base_size(bench, rounds, work_dir):
    print('\n== 2. spawn from a 64 MiB vs a 4 GiB base image (both cached, '
          'root_gb=%d) ==' % BASE_ROOT_GB)
    bases = {}
    for label, size in (('64 MiB', SMALL_BASE), ('4 GiB', LARGE_BASE)):
        path = os.path.join(work_dir, 'base-%d.qcow2' % size)
        make_base(bench, path, size)
        bases[label] = bench.add_image(path, 'qcow2',
                                       'bench-base-%s' % label)
        os.unlink(path)
    allocated = collections.defaultdict(list)
    stage_runs = collections.defaultdict(list)

    def run(label):
        instance, image_meta = bench.instance(bases[label],
                                              root_gb=BASE_ROOT_GB)
        stages.times.clear()
        elapsed = _timed(bench.spawn, instance, image_meta)
        stage_runs[label].append(stages.collect(
            threading.current_thread().name, elapsed))
        allocated[label].append(_allocated(bench.root_disk(instance)))
        bench.destroy(instance)
        return elapsed

    # Caches both images, and shows what the root disk is.
    rows = []
    for label, image in bases.items():
        instance, image_meta = bench.instance(image, root_gb=BASE_ROOT_GB)
        bench.spawn(instance, image_meta)
        cached = bench.cache.path_for(image['id'])
        root = bench.root_disk(instance)
        backing = _backing(root)
        rows.append((label, _allocated(cached), _allocated(root),
                     os.path.getsize(root), backing == cached))
        bench.destroy(instance)
    print('%-7s %14s %16s %15s  %s' % ('base', 'base allocated',
                                       'root allocated', 'root file size',
                                       'root is an overlay of the cached '
                                       'base'))
    for label, base_alloc, root_alloc, root_size, overlay in rows:
        print('%-7s %10d KiB %12d KiB %11d KiB  %s' % (
            label, base_alloc // units.Ki, root_alloc // units.Ki,
            root_size // units.Ki, 'yes' if overlay else 'NO'))

    # Both contenders carry the same (microsecond) instrumentation, which
    # shows in which step a difference would be.
    with Stages(bench) as stages:
        timings = interleaved([('spawn, 4 GiB base', lambda: run('4 GiB')),
                               ('spawn, 64 MiB base',
                                lambda: run('64 MiB'))], rounds)
    ratio = report_timing(timings, TARGET_BASE_SIZE, '4 GiB/64 MiB')
    keys = ('fetch', 'root', 'download', 'design', 'define', 'launch',
            'total')
    print('%-22s' % 'median ms per step' + ''.join('%9s' % k for k in keys))
    for label in ('4 GiB', '64 MiB'):
        print('%-22s' % ('spawn, %s base' % label) + ''.join(
            '%9.1f' % _stage_ms(stage_runs[label], k) for k in keys))
    print('root disk allocated right after spawn: 64 MiB base %s KiB, '
          '4 GiB base %s KiB' % (
              _kib_range(allocated['64 MiB']), _kib_range(allocated['4 GiB'])))
    cow = all(overlay for *_rest, overlay in rows) and max(
        allocated['4 GiB'] + allocated['64 MiB']) <= COW_MAX_ALLOCATED
    for image in bases.values():
        bench.forget_image(image)
    return timings, ratio, allocated, cow


def _kib_range(values):
    low, high = min(values) // units.Ki, max(values) // units.Ki
    return '%d' % low if low == high else '%d..%d' % (low, high)


# ---------------------------------------------------------------------------
# 3. Concurrent spawns of one uncached image.

def make_payload(bench, path, size):
    """A raw disk of ``size`` bytes: the marker disk, then random bytes.

    Random content cannot be skipped as zeros, so the download costs the
    whole size.
    """
    rng = random.Random(20261121)
    with open(os.path.join(bench.guest_dir, 'disk-marker.raw'),
              'rb') as src, open(path, 'wb') as dst:
        shutil.copyfileobj(src, dst)
        left = size - dst.tell()
        while left > 0:
            chunk = min(left, 8 * units.Mi)
            dst.write(rng.randbytes(chunk))
            left -= chunk


def section_concurrent(bench, rounds, payload, stage_rounds):
    size = os.path.getsize(payload)
    print('\n== 3. %d concurrent spawns of one uncached image vs 1 uncached '
          'spawn (%d MiB raw, random content) ==' % (CONCURRENCY,
                                                     size // units.Mi))
    print('each round registers the image under a fresh id; each spawn '
          'runs in its own thread')
    # (label, root image downloads, image service counter delta)
    downloads = []
    per_instance = []

    def fresh_image():
        return bench.add_image(payload, 'raw', 'bench-uncached',
                               image_id=uuidutils.generate_uuid())

    def run(count):
        image = fresh_image()
        instances = [bench.instance(image) for _ in range(count)]
        before = bench.images.downloads
        try:
            elapsed, times, _names = spawn_concurrently(bench, instances)
            downloads.append((count, bench.images.by_image[image['id']],
                              bench.images.downloads - before))
            if count > 1:
                per_instance.extend(times)
        finally:
            bench.destroy_many([pair[0] for pair in instances])
            bench.forget_image(image)
        return elapsed

    timings = interleaved([('%d concurrent spawns' % CONCURRENCY,
                            lambda: run(CONCURRENCY)),
                           ('1 spawn', lambda: run(1))], rounds)
    ratio = report_timing(timings, TARGET_CONCURRENT,
                          '%d concurrent/1' % CONCURRENCY)
    print('each of the %d concurrent spawns took %.1f..%.1f ms (median '
          '%.1f ms)' % (CONCURRENCY, 1e3 * min(per_instance),
                        1e3 * max(per_instance),
                        1e3 * statistics.median(per_instance)))
    once = True
    for count in (1, CONCURRENCY):
        rows = [d for d in downloads if d[0] == count]
        roots = sorted({d[1] for d in rows})
        deltas = sorted({d[2] for d in rows})
        # Kernel and initrd are copied from the image service into every
        # instance: two more downloads per spawn, by design.
        expected = 1 + 2 * count
        once = once and roots == [1] and deltas == [expected]
        print('downloads with %d spawning: root image %s per round; image '
              'service counter +%s per round (expected 1 + %d kernel/'
              'initrd)' % (count, '/'.join(map(str, roots)),
                           '/'.join(map(str, deltas)), expected - 1))

    floor = section_concurrent_floor(bench, rounds)

    print('\n== 3c. where the time goes, uncached (%d instrumented round%s;'
          ' ms) ==' % (stage_rounds, 's' if stage_rounds > 1 else ''))
    alone, together = [], []
    with Stages(bench) as stages:
        for _ in range(stage_rounds):
            for count, runs in ((1, alone), (CONCURRENCY, together)):
                image = fresh_image()
                try:
                    runs.extend(stages.spawns(image, count))
                finally:
                    bench.forget_image(image)
    print('  %-46s %8s %10s %8s' % ('', '1 alone', '%d: median' %
                                    CONCURRENCY, 'max'))
    for key, label in Stages.ROWS:
        print('  %-46s %8.1f %10.1f %8.1f' % (
            label, _stage_ms(alone, key), _stage_ms(together, key),
            _stage_ms(together, key, max)))
    return timings, ratio, once, floor


def section_concurrent_floor(bench, rounds):
    """The host's own cost of starting 4 guests at once, for reference."""
    print('\n== 3b. the same with bare libvirt: %d concurrent defineXML + '
          'create vs 1 (reference) ==' % CONCURRENCY)
    # The XML the driver generates for 4 instances of the cached image;
    # their files stay for the domains to use.
    captured = [capture_spawn(bench, bench.root_image)
                for _ in range(CONCURRENCY)]
    bench.remove_domains([pair[0] for pair in captured])

    def define_create(xml_text):
        bench.conn.defineXML(xml_text).create()

    def run(count):
        xmls = [xml_text for _instance, xml_text in captured[:count]]
        try:
            elapsed, _times, _names = run_concurrently(
                [lambda x=x: define_create(x) for x in xmls], 'bench-virt')
        finally:
            bench.remove_domains([pair[0] for pair in captured[:count]])
        return elapsed

    try:
        timings = interleaved([
            ('%d concurrent' % CONCURRENCY, lambda: run(CONCURRENCY)),
            ('1 alone', lambda: run(1))], rounds)
        ratio = report_timing(timings, TARGET_CONCURRENT,
                              '%d concurrent/1 (libvirt)' % CONCURRENCY)
    finally:
        bench.destroy_many([pair[0] for pair in captured])
    print('the driver cannot start %d TCG guests faster than libvirt can: '
          'this ratio is the\nfloor for section 3 on this host (minus the '
          'download, which the 4 share)' % CONCURRENCY)
    return ratio


# ---------------------------------------------------------------------------
# 4. Spawn with one OVS port against spawn without, in a private OVS.

class ImmediateEvents(virtapi.VirtAPI):
    """nova-compute's event wait, with Neutron answering at once.

    Every ``network-vif-plugged`` the driver waits for has come by the
    time the body (plug, define, start paused) ends, so what is timed is
    the driver's own cost of the wait: registering, the paused start and
    the resume.
    """

    def __init__(self):
        super(ImmediateEvents, self).__init__()
        self.events = 0

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        yield
        self.events += len(event_names)


def bench_port(hybrid=False):
    """A fresh port, bound as ML2/OVS binds it on a userspace datapath."""
    pid = uuidutils.generate_uuid()
    mac = 'fa:16:3e:%s:%s:%s' % (pid[0:2], pid[2:4], pid[4:6])
    network = network_model.Network(
        id='9b0c1d2e-3f40-4152-8637-48596a7b8c9d', bridge='br-int',
        label='bench', meta={'mtu': 1450})
    details = {network_model.VIF_DETAILS_PORT_FILTER: True,
               network_model.VIF_DETAILS_OVS_HYBRID_PLUG: hybrid,
               network_model.VIF_DETAILS_OVS_DATAPATH_TYPE: 'netdev'}
    return network_model.VIF(
        id=pid, address=mac, type=network_model.VIF_TYPE_OVS,
        network=network, details=details, ovs_interfaceid=pid,
        devname=('tap' + pid)[:network_model.NIC_NAME_LEN], active=False,
        delegate_create=True)


def configure_ports(conf):
    """os-vif and privsep as a compute host sets them, for the fixture."""
    # os-vif's ovs plugin reads its options once, when os-vif loads it:
    # they are registered (as the plugin will) and set first.
    import nova.privsep  # noqa: F401  (registers [nova_sys_admin])
    from vif_plug_ovs import ovs as ovs_plugin  # also its privsep context
    conf.register_opts(ovs_plugin.OvsPlugin.CONFIG_OPTS, group='os_vif_ovs')
    conf.set_override('ovsdb_connection', 'unix:%s/db.sock' %
                      ovs.DEFAULT_RUNDIR, group='os_vif_ovs')
    for group in ('vif_plug_ovs_privileged', 'nova_sys_admin'):
        conf.set_override('helper_command', PRIVSEP_HELPER, group=group)
    network_vifs.initialize_os_vif()


def section_ports(bench, rounds, hybrid=False):
    """Run inside the OVS fixture's namespaces (the child of the bench)."""
    print('\n== 4. spawn with one OVS port (%s plug, events included) vs '
          'spawn without ==' % ('hybrid' if hybrid else 'direct'))
    configure_ports(bench.conf)
    events = ImmediateEvents()
    bench.driver.virtapi = events
    bench.conf.set_override('vif_plugging_timeout', 300)
    bench.conf.set_override('vif_plugging_is_fatal', True)

    launches = {True: [], False: []}
    mode = []

    def run(with_port):
        instance, image_meta = bench.instance(bench.root_image)
        network_info = [bench_port(hybrid)] if with_port else []
        mode[:] = [with_port]
        elapsed = _timed(bench.spawn, instance, image_meta, network_info)
        bench.destroy(instance)
        return elapsed

    # Warm-up: caches the image, starts the privsep daemons and os-vif's
    # OVSDB connection (once per nova-compute, not per spawn).
    run(True)
    run(False)
    plugs = []
    vifs = bench.driver._vifs
    real_plug = vifs.plug

    def timed_plug(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real_plug(*args, **kwargs)
        finally:
            plugs.append(time.perf_counter() - start)
    real_launch = guest_mod.Guest.launch

    def timed_launch(guest, *args, **kwargs):
        start = time.perf_counter()
        try:
            return real_launch(guest, *args, **kwargs)
        finally:
            launches[mode[0]].append(time.perf_counter() - start)
    vifs.plug = timed_plug
    guest_mod.Guest.launch = timed_launch
    try:
        timings = interleaved([('spawn, 1 OVS port', lambda: run(True)),
                               ('spawn, no port', lambda: run(False))],
                              rounds)
    finally:
        del vifs.plug
        guest_mod.Guest.launch = real_launch
    print('network-vif-plugged events delivered: %d; medians: os-vif plug '
          'of the port %.1f ms,\nguest start (createWithFlags; libvirt '
          'adds the tap to OVS) %.1f ms with the port, %.1f ms without' % (
              events.events, 1e3 * statistics.median(plugs),
              1e3 * statistics.median(launches[True]),
              1e3 * statistics.median(launches[False])))
    return timings, report_timing(timings, TARGET_PORT, 'port/no port')


def ports_child(args, rounds):
    """The bench's entry point inside the OVS fixture's namespaces."""
    # The fixture's namespace has a /sys of its own (its network devices),
    # without the machine's cgroup mounts: this root's QEMU runs without
    # cgroups, as both contenders do.
    connection.EMBED_QEMU_CONF += 'cgroup_controllers = [ ]\n'
    bench = Bench(os.path.abspath(args.guest_image))
    try:
        bench.open()
        _t, (ratio, min_ratio) = section_ports(bench, rounds,
                                               args.ports_hybrid)
        print('%s %.6f %.6f' % (PORT_RESULT, ratio, min_ratio))
        return 0
    finally:
        if not bench.close():
            print('spawn_bench: cleanup was incomplete', file=sys.stderr)


def section_ports_in_ovs(args, rounds):
    """Start a private OVS, run section 4 in its namespaces; the ratios.

    None when this machine cannot run the fixture (not root, no tun).
    """
    reason = ovs.missing_capability()
    if reason:
        print('\n== 4. spawn with one OVS port: skipped (%s) ==' % reason)
        return None
    fixture = ovs.OvsFixture()
    fixture.setUp()
    try:
        argv = [sys.executable, os.path.abspath(__file__), '--ports-child',
                '--rounds', str(rounds), '--guest-image',
                os.path.abspath(args.guest_image)]
        if args.ports_hybrid:
            argv.append('--ports-hybrid')
        result = subprocess.run(fixture.command(argv), cwd=_ROOT,
                                stdout=subprocess.PIPE, text=True)
        ratios = None
        for line in result.stdout.splitlines():
            if line.startswith(PORT_RESULT):
                ratios = tuple(float(x) for x in line.split()[1:3])
            else:
                print(line)
        if result.returncode or ratios is None:
            raise RuntimeError('section 4 failed inside the OVS namespaces '
                               '(exit status %d)' % result.returncode)
        left = fixture.ports()
        print('ports left on br-int after the section: %d' % len(left))
        return ratios
    finally:
        fixture.cleanUp()


# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 1 round per section, a 32 MiB '
                             'uncached image (figures are indicative only)')
    parser.add_argument('--rounds', type=int, default=None,
                        help='timing rounds per contender (default 9; '
                             'sections 3 and 3b: 5)')
    parser.add_argument('--uncached-mib', type=int, default=None,
                        help='size of the section 3 image (default 128)')
    parser.add_argument('--profile', action='store_true',
                        help='also run cProfile over cached spawns and '
                             'print the top functions')
    parser.add_argument('--guest-image', default=GUEST_IMAGE,
                        help='output of tools/guest_image/build.py (built '
                             'on first use)')
    parser.add_argument('--only-ports', action='store_true',
                        help='run section 4 (spawn with an OVS port) only')
    parser.add_argument('--ports-hybrid', action='store_true',
                        help='section 4 plugs its port hybrid (qbr bridge)')
    parser.add_argument('--ports-child', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 9)
    if args.ports_child:
        return ports_child(args, rounds)
    concurrent_rounds = args.rounds or (1 if args.quick else 5)
    stage_runs = 1 if args.quick else 5
    uncached = (args.uncached_mib or (32 if args.quick else 128)) * units.Mi

    # SIGTERM must unwind through the clean-up, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(
        128 + signum))
    if args.guest_image == GUEST_IMAGE:
        subprocess.run([sys.executable, BUILDER, '--output', GUEST_IMAGE],
                       check=True, stdout=subprocess.DEVNULL)

    if args.only_ports:
        try:
            ratios = section_ports_in_ovs(args, rounds)
        finally:
            if os.path.exists(LIBVIRT_LOG):
                os.unlink(LIBVIRT_LOG)
        return benchlib.print_summary(
            'summary (ratios of wall-time medians)',
            [port_check(ratios)], (24, 32, 8))
    bench = Bench(os.path.abspath(args.guest_image))
    try:
        bench.open()
        return run(bench, args, rounds, concurrent_rounds, stage_runs,
                   uncached)
    finally:
        if not bench.close():
            print('spawn_bench: cleanup was incomplete', file=sys.stderr)
        if os.path.exists(LIBVIRT_LOG):
            os.unlink(LIBVIRT_LOG)


def run(bench, args, rounds, concurrent_rounds, stage_runs, uncached):
    import nova
    libvirt_version, qemu_version = bench.versions()
    print('spawn_bench: python %s, libvirt %s, QEMU %s (TCG), nova %s, '
          '%d CPUs%s' % (sys.version.split()[0], libvirt_version,
                         qemu_version, getattr(nova, '__version__', None) or
                         benchlib.package_version('nova'), os.cpu_count() or 0,
                         ', QUICK' if args.quick else ''))
    print('timing: wall clock, %d interleaved rounds (section 3: %d), '
          'medians; load average %s' % (
              rounds, concurrent_rounds, benchlib.loadavg()))
    print('guest: 1 vCPU, 128 MiB, kernel + initrd of the test guest, '
          'qcow2 root overlay, no VNC;\nstate in %s' % bench.state_dir)
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else 0
    if load > (os.cpu_count() or 1):
        print('note: the load average exceeds the CPU count: other jobs '
              'compete for the CPUs,\nso expect a wide spread and rerun '
              'before quoting figures')

    spawn_timings, (spawn_ratio, spawn_min) = section_spawn(bench, rounds)
    section_stages(bench, stage_runs,
                   statistics.median(spawn_timings[1].samples))
    if args.profile:
        section_profile(bench, max(stage_runs, 3))

    work_dir = os.path.join(bench.state_dir, 'work')
    os.makedirs(work_dir)
    _t, (size_ratio, size_min), allocated, cow = section_base_size(
        bench, rounds, work_dir)

    payload = os.path.join(work_dir, 'uncached.raw')
    make_payload(bench, payload, uncached)
    _t, (conc_ratio, conc_min), once, (floor_ratio, floor_min) = \
        section_concurrent(bench, concurrent_rounds, payload,
                           1 if args.quick else 2)

    # Section 4 runs in a child process, in the OVS fixture's namespaces,
    # with its own embedded root: this one's domains are gone by now.
    port_ratios = section_ports_in_ovs(args, rounds)

    checks = [
        ('spawn vs define+create', 'ratio %.3f (min-based %.3f)' % (
            spawn_ratio, spawn_min), '<= %.2f' % TARGET_SPAWN,
         spawn_ratio <= TARGET_SPAWN),
        ('4 GiB vs 64 MiB base', 'ratio %.3f (min-based %.3f)' % (
            size_ratio, size_min), '<= %.2f' % TARGET_BASE_SIZE,
         size_ratio <= TARGET_BASE_SIZE),
        ('root disk copy-on-write', 'overlay; <= %d KiB allocated' % (
            max(allocated['4 GiB'] + allocated['64 MiB']) // units.Ki),
         'overlay', cow),
        ('%d concurrent vs 1' % CONCURRENCY, 'ratio %.3f (min-based %.3f)' % (
            conc_ratio, conc_min), '<= %.2f' % TARGET_CONCURRENT,
         conc_ratio <= TARGET_CONCURRENT),
        ('downloads per image', 'exactly 1 each round' if once else
         'NOT exactly 1', '1', once),
        ('  libvirt alone (3b)', 'ratio %.3f (min-based %.3f)' % (
            floor_ratio, floor_min), 'info', None),
        port_check(port_ratios),
    ]
    return benchlib.print_summary(
        'summary (ratios of wall-time medians)', checks, (24, 32, 8))


def port_check(ratios):
    if ratios is None:
        return ('1 OVS port vs no port', 'skipped (no OVS here)', 'info',
                None)
    return ('1 OVS port vs no port', 'ratio %.3f (min-based %.3f)' % ratios,
            '<= %.2f' % TARGET_PORT, ratios[0] <= TARGET_PORT)


if __name__ == '__main__':
    sys.exit(main())
