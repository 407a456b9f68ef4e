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

"""The DevStack plugin (``devstack/``), run for real into a temporary $DEST.

DevStack cannot be installed here, so ``tests/fixtures/devstack/`` stands
in for it: its ``stack.sh``, ``unstack.sh`` and ``clean.sh`` source the
plugin in DevStack's phase order, and its ``functions`` re-implement the
DevStack functions the plugin calls (see the README there).

Everything else is real: the plugin's checkout is a clone of this tree
(with its uncommitted changes), pip creates a venv in ``$DEST/vroot`` and
installs nova-pyvirt, nova and all their dependencies into it, nova.conf is
edited, local.conf's sections are merged. To keep that fast and offline,
pip installs from a wheelhouse that is built once from the package index
(``pip wheel`` of ``requirements.txt``, constrained to the versions of the
environment running the tests) and kept in ``.cache/devstack-test/``;
nova-pyvirt itself is always built from the checkout.

Every harness run is audited (:mod:`tests.functional.devstack.fsaudit`):
writes outside $DEST are captured in overlays and compared with the list
in ``doc/source/devstack.rst``.
"""

import configparser
import fcntl
import fnmatch
import hashlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

from oslotest import base
from testtools import content

from nova_pyvirt.cmd import tempest_features
from tests.functional.devstack import fsaudit

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__),
                                    os.pardir, os.pardir, os.pardir))
HARNESS = os.path.join(REPO, 'tests', 'fixtures', 'devstack')
CACHE = os.path.join(REPO, '.cache', 'devstack-test')
DOC = os.path.join(REPO, 'doc', 'source', 'devstack.rst')
#: The stack user's real home (oslotest points $HOME at a temporary one).
HOME = pwd.getpwuid(os.getuid()).pw_dir
#: The PATH of a plain Debian host. The test machines put pyenv's shims and
#: rustup's proxies first in root's PATH; pip runs "rustc --version" for
#: its user agent, and rustup's proxy then writes ~/.rustup: a write
#: outside $DEST that no DevStack host would see.
HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
#: Seconds one harness script may take.
TIMEOUT = int(os.environ.get('PYVIRT_DEVSTACK_TIMEOUT', '900'))

STACK_STEPS = [
    '[1/8] installing distro packages from bindep.txt',
    '[2/8] granting libvirt access to {user}',
    '[3/8] installing python packages into {vroot}',
    '[4/8] installing tools into {vroot}/bin and {vroot}/etc/nova-pyvirt',
    '[5/8] configuring nova for pyvirt.PyVirtDriver',
    '[6/8] checking that nova loads pyvirt.PyVirtDriver',
    '[7/8] starting nova-compute from {vroot}',
    '[8/8] telling tempest which compute features the driver has',
]

#: Progress notes of the steps that write outside $DEST saying that the
#: step had nothing to do.
IDLE_NOTES = {
    '1/8': ('all installed already',),
    '2/8': ('not needed', 'already'),
    '7/8': ('nothing to start',),
}

#: What the harness itself writes in $DEST, as DevStack does: its data,
#: logs and pid files, bindep's venv, and the nova-cpu.conf it derives from
#: nova.conf when it starts nova-compute.
HARNESS_FILES = ('devstack/.localrc.auto', 'data', 'logs', 'status',
                 'bindep-venv', 'etc/nova/nova-cpu.conf')

#: Seconds nova-compute may take to start.
COMPUTE_TIMEOUT = int(os.environ.get('PYVIRT_DEVSTACK_COMPUTE_TIMEOUT',
                                     '120'))

NOVA_CONF = """\
[DEFAULT]
debug = False
compute_driver = libvirt.LibvirtDriver
state_path = {dest}/data/nova
instances_path = {dest}/data/nova/instances
transport_url = fake:/

[oslo_concurrency]
lock_path = {dest}/data/nova
"""

#: What DevStack's lib/tempest writes before the plugins' test-config.
TEMPEST_CONF = """\
[compute]
image_ref = 00000000-0000-0000-0000-000000000000

[compute-feature-enabled]
resize = True
live_migration = False
change_password = False
attach_encrypted_volume = True
"""

LOCAL_CONF = """\
[[local|localrc]]
DEST={dest}
DATA_DIR={dest}/data
SERVICE_DIR={dest}/status
STACK_USER={user}
NOVA_CONF_DIR={dest}/etc/nova
PYTHON={python}
ENABLED_SERVICES={services}
enable_plugin nova-pyvirt file://{repo}

[[post-config|$NOVA_CONF]]
[pyvirt]
virt_type = qemu
"""

#: A file whose name the glob "[compute-feature-enabled]:" matches: the
#: note of step [8/8] has that word, and DevStack's echo_summary expands
#: its arguments unquoted.
GLOB_BAIT = 'e:'

_TRACE = re.compile(r'^\++ (plugin\.sh|settings):\d+: (.*)$')
# The only lines DevStack's xtrace may show from the plugin: saving the
# trace setting and turning it off, as DevStack's own lib/ files do.
_TRACE_ALLOWED = re.compile(
    r'^(set \+o|grep xtrace|_XTRACE_\w+=.set -o xtrace.|set \+o xtrace)$')


def _base_python():
    """The interpreter behind this environment (it creates the vroot).

    The wheelhouse is built by this interpreter, so that environment
    markers (python_full_version) select the same wheels.
    """
    return os.path.realpath(getattr(sys, '_base_executable', sys.executable))


def _constraints():
    """This environment's versions, as DevStack's upper-constraints.txt."""
    out = subprocess.run(
        [sys.executable, '-m', 'pip', 'freeze', '--exclude-editable'],
        check=True, stdout=subprocess.PIPE, text=True).stdout
    pins = [line for line in out.splitlines()
            if '==' in line and
            not re.match(r'nova[-_.]pyvirt==', line, re.IGNORECASE)]
    return '\n'.join(sorted(pins)) + '\n'


def _build_requires():
    with open(os.path.join(REPO, 'pyproject.toml')) as f:
        text = f.read()
    match = re.search(r'^requires\s*=\s*\[(.*?)\]', text, re.M | re.S)
    return re.findall(r'"([^"]+)"', match.group(1)) if match else []


def _wheelhouse(constraints):
    """A directory of wheels for nova-pyvirt's dependencies, built once."""
    with open(os.path.join(REPO, 'requirements.txt'), 'rb') as f:
        requirements = f.read()
    # bindep: the harness installs it into $DEST/bindep-venv, as stack.sh
    # does (unconstrained, like DevStack).
    build = _build_requires() + ['wheel', 'bindep']
    key = hashlib.sha256(b'\0'.join([
        requirements, constraints.encode(), ' '.join(build).encode(),
        sys.version.encode(), sys.platform.encode()])).hexdigest()[:16]
    path = os.path.join(CACHE, 'wheels-' + key)
    done = os.path.join(path, '.complete')
    if os.path.exists(done):
        return path
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, 'wheels.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            return path
        tmp = path + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        cfile = os.path.join(tmp, 'constraints.txt')
        with open(cfile, 'w') as f:
            f.write(constraints)
        env = dict(os.environ, PIP_CACHE_DIR=os.path.join(CACHE, 'pip'))
        proc = subprocess.run(
            [sys.executable, '-m', 'pip', 'wheel', '--wheel-dir', tmp,
             '-c', cfile, '-r', os.path.join(REPO, 'requirements.txt')] +
            build,
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
        if proc.returncode:
            raise RuntimeError('pip wheel failed:\n%s' % proc.stdout[-5000:])
        os.rename(tmp, path)
        open(done, 'w').close()
    return path


def _nova_source():
    """An unpacked sdist of this environment's nova, downloaded once.

    It plays DevStack's nova checkout ($DEST/nova), from which the plugin
    installs nova into the vroot.
    """
    from importlib import metadata
    version = metadata.version('nova')
    path = os.path.join(CACHE, 'nova-%s' % version)
    if os.path.exists(os.path.join(path, '.complete')):
        return path
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, 'nova-source.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(path, '.complete')):
            return path
        tmp = path + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        env = dict(os.environ, PIP_CACHE_DIR=os.path.join(CACHE, 'pip'))
        proc = subprocess.run(
            [sys.executable, '-m', 'pip', 'download', '--no-deps',
             '--no-binary', ':all:', '--dest', tmp, 'nova==%s' % version],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
        if proc.returncode:
            raise RuntimeError('pip download failed:\n%s' %
                               proc.stdout[-5000:])
        archive = os.path.join(tmp, 'nova-%s.tar.gz' % version)
        shutil.unpack_archive(archive, tmp)
        os.unlink(archive)
        shutil.rmtree(path, ignore_errors=True)
        os.rename(os.path.join(tmp, 'nova-%s' % version), path)
        shutil.rmtree(tmp)
        open(os.path.join(path, '.complete'), 'w').close()
    return path


def _git(args, **kwargs):
    return subprocess.run(['git', '-C', REPO] + args, check=True,
                          stdout=subprocess.PIPE, **kwargs).stdout


#: What tools, tox, stestr and pbr leave in a source tree (``.gitignore``).
_NOT_SOURCE = ('.git', '.venv', '.cache', '.tox', '.stestr', '.eggs',
               'build', 'dist', '__pycache__', '*.egg-info', '*.py[cod]',
               'AUTHORS', 'ChangeLog')


def _checkout(target):
    """This tree, as a git checkout in ``target``, uncommitted changes too.

    A tree that is not a git checkout itself (an unpacked tarball) is
    copied and committed in a new repository: the plugin is installed
    from a checkout, as DevStack's ``enable_plugin`` makes one.
    """
    # A linked worktree has a .git file, and is a checkout all the same.
    if not os.path.exists(os.path.join(REPO, '.git')):
        shutil.copytree(REPO, target, symlinks=True,
                        ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        for args in (['init', '--quiet'], ['add', '--all'],
                     ['-c', 'user.name=nova-pyvirt tests',
                      '-c', 'user.email=tests@nova-pyvirt.invalid',
                      'commit', '--quiet', '-m', 'Source tree under test']):
            subprocess.run(['git', '-C', target] + args, check=True)
        return
    subprocess.run(['git', 'clone', '--quiet', '--shared', REPO, target],
                   check=True)
    changed = _git(['ls-files', '-z', '-m', '-o', '--exclude-standard'])
    for rel in filter(None, changed.decode().split('\0')):
        src = os.path.join(REPO, rel)
        dst = os.path.join(target, rel)
        if os.path.lexists(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
        elif os.path.lexists(dst):
            os.unlink(dst)


def _manifest(root, skip=()):
    """Path -> identity of every entry under ``root``.

    Files and links are identified by inode, size and modification time
    (the same file, untouched), directories by their mode only (creating
    and removing a temporary file changes a directory's time stamps).
    """
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if rel in skip:
                if name in dirnames:
                    dirnames.remove(name)
                continue
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                result[rel] = ('dir', st.st_mode)
            else:
                result[rel] = (stat.S_IFMT(st.st_mode), st.st_mode,
                               st.st_size, st.st_ino, st.st_mtime_ns)
    return result


def _allowed_outside_dest(stack_output):
    """The documented writes outside $DEST, and those this run may make.

    ``doc/source/devstack.rst`` tags each pattern with the stack step that
    writes it (clean undoes the same files); a step whose progress note in
    ``stack_output`` says it had nothing to do, or that did not run, writes
    nothing. Returns ``(all entries, allowed patterns)``.
    """
    with open(DOC) as f:
        text = f.read()
    block = text.split('.. BEGIN outside-dest')[1]
    block = block.split('.. END outside-dest')[0]
    entries = re.findall(r'^    (\d/8)\s+(/\S+)', block, re.M)
    busy = set()
    for step in set(step for step, _ in entries):
        note = _note_of(stack_output, step)
        if note is not None and not any(
                m in note for m in IDLE_NOTES.get(step, ())):
            busy.add(step)
    return entries, [pattern for step, pattern in entries if step in busy]


def _differences(old, new):
    """``(path, old, new)`` for each entry of two manifests that differs."""
    return [(rel, old.get(rel), new.get(rel))
            for rel in sorted(set(old) | set(new))
            if old.get(rel) != new.get(rel)]


def _alive(pid):
    """Whether the process runs (a zombie does not)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _kill_group(pgid):
    """Stop a service the harness started, if a test left it running."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _note_of(output, step):
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if re.match(r'nova-pyvirt (\w+ )?\[%s\]' % step, line):
            if i + 1 < len(lines) and lines[i + 1].startswith('    '):
                return lines[i + 1]
            return ''
    return None


class TestDevStackPlugin(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        if not fsaudit.can_audit():
            self.skipTest('the audit needs root (mount namespaces)')
        if shutil.which('git') is None:
            self.skipTest('git is not installed (Debian package git); the '
                          'plugin is installed from a git checkout')
        self.tmp = tempfile.mkdtemp(prefix='nova-pyvirt-devstack-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.dest = os.path.join(self.tmp, 'dest')
        self.vroot = os.path.join(self.dest, 'vroot')
        self.log = os.path.join(self.dest, 'logs', 'nova-pyvirt.log')
        self.nova_conf = os.path.join(self.dest, 'etc', 'nova', 'nova.conf')
        self.nova_cpu_conf = os.path.join(self.dest, 'etc', 'nova',
                                          'nova-cpu.conf')
        self.tempest_conf = os.path.join(self.dest, 'tempest', 'etc',
                                         'tempest.conf')
        self._pidfile = os.path.join(self.dest, 'status', 'stack',
                                     'n-cpu.pid')
        self.upper = os.path.join(self.tmp, 'audit')
        self.audited, self.unaudited = fsaudit.audited_dirs(
            self.dest, extra=[HOME, REPO])
        self.user = 'root'
        self.outputs = []
        self.addCleanup(self._attach_outputs)

    def _attach_outputs(self):
        for name, text in self.outputs:
            self.addDetail(name, content.text_content(text))
        if os.path.exists(self.log):
            with open(self.log, errors='replace') as f:
                self.addDetail('nova-pyvirt.log',
                               content.text_content(f.read()))

    def _prepare(self, upper_constraints, services='', nova=False):
        os.makedirs(os.path.join(self.dest, 'devstack'))
        open(os.path.join(self.dest, 'devstack', GLOB_BAIT), 'w').close()
        if nova:
            # DevStack's nova checkout: the plugin installs nova from it.
            shutil.copytree(_nova_source(), os.path.join(self.dest, 'nova'),
                            ignore=shutil.ignore_patterns('.complete'))
        if 'tempest' in services.split(','):
            os.makedirs(os.path.dirname(self.tempest_conf))
            with open(self.tempest_conf, 'w') as f:
                f.write(TEMPEST_CONF)
        os.makedirs(os.path.dirname(self.nova_conf))
        os.makedirs(os.path.join(self.dest, 'requirements'))
        with open(os.path.join(self.dest, 'requirements',
                               'upper-constraints.txt'), 'w') as f:
            f.write(upper_constraints)
        with open(self.nova_conf, 'w') as f:
            f.write(NOVA_CONF.format(dest=self.dest))
        with open(os.path.join(self.dest, 'devstack', 'local.conf'),
                  'w') as f:
            f.write(LOCAL_CONF.format(dest=self.dest, user=self.user,
                                      python=_base_python(), repo=REPO,
                                      services=services))
        # As in the gate, the plugin's checkout is there before stack.sh.
        _checkout(os.path.join(self.dest, 'nova-pyvirt'))

    def _env(self, **pip):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('PIP_') and
               k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
        env.update(PATH=HOST_PATH, HOME=HOME,
                   TOP_DIR=os.path.join(self.dest, 'devstack'))
        # Only what the test chooses: no pip configuration of the machine.
        env['PIP_CONFIG_FILE'] = os.devnull
        env.update(pip)
        return env

    def _harness(self, script, env, expect_rc=0):
        proc = fsaudit.run(
            [os.path.join(HARNESS, script)], self.upper, self.audited,
            cwd=os.path.join(self.dest, 'devstack'), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
        self.outputs.append(('%s #%d' % (script, len(self.outputs) + 1),
                             proc.stdout))
        if expect_rc == 0:
            self.assertEqual(0, proc.returncode, proc.stdout[-6000:])
        else:
            self.assertNotEqual(0, proc.returncode, proc.stdout[-6000:])
        return proc.stdout

    def _progress(self, output):
        return [line for line in output.splitlines()
                if re.match(r'nova-pyvirt (\w+ )?\[\d+/\d+\] ', line)]

    def _assert_stack_progress(self, output):
        expected = ['nova-pyvirt ' + s.format(vroot=self.vroot,
                                              user=self.user)
                    for s in STACK_STEPS]
        self.assertEqual(expected, self._progress(output))
        # Each step has its note, indented under it (through DevStack's
        # unquoted echo_summary).
        for step in STACK_STEPS:
            note = _note_of(output, step[1:4])
            self.assertRegex(note, r'^    \S', step)

    def _assert_quiet_trace(self, output):
        traced = [m.group(0) for m in map(_TRACE.match, output.splitlines())
                  if m and not _TRACE_ALLOWED.match(m.group(2))]
        self.assertEqual([], traced, 'the plugin narrates its commands')

    def _in_vroot(self, code):
        return subprocess.run(
            [os.path.join(self.vroot, 'bin', 'python'), '-c', code],
            cwd=self.tmp, env=self._env(), check=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True).stdout

    def _read(self, path, mode='r'):
        with open(path, mode) as f:
            return f.read()

    def _assert_audit(self, output):
        entries, allowed = _allowed_outside_dest(output)
        self.assertTrue(entries, 'no list of files outside $DEST in %s' % DOC)
        written = fsaudit.changes(self.upper, self.audited)
        report = ['audited: %s' % ' '.join(self.audited),
                  'not audited (they contain $DEST): %s' %
                  (' '.join(self.unaudited) or '-'),
                  'allowed for the steps that did work: %s' %
                  (' '.join(allowed) or '-'),
                  'written outside $DEST:'] + [
            '    %s %s' % (kind, path) for path, kind in written]
        self.outputs.append(('audit', '\n'.join(report) + '\n'))
        unexpected = [(path, kind) for path, kind in written
                      if not any(fnmatch.fnmatch(path, p) for p in allowed)]
        self.assertEqual([], unexpected, '\n'.join(report))

    def _assert_compute_running(self):
        """The n-cpu service runs nova-compute of the vroot, on nova-cpu.conf.

        Returns its pid. There is no nova-conductor here, and nova-compute
        waits for one before it loads the driver: step [6/7] has loaded it
        already, with nova's own loader and the same configuration.
        """
        with open(self._pidfile) as f:
            pid = int(f.read())
        self.addCleanup(_kill_group, pid)
        log = os.path.join(self.dest, 'logs', 'n-cpu.log')
        # nova-compute's main() has parsed the configuration and set up
        # logging, plugins and RPC (the log keeps earlier runs' lines).
        started = re.compile(r'^\S+ \S+ %d INFO os_vif .*Loaded VIF plugins'
                             % pid, re.M)
        deadline = time.monotonic() + COMPUTE_TIMEOUT
        text = ''
        while time.monotonic() < deadline and _alive(pid):
            text = self._read(log) if os.path.exists(log) else ''
            if started.search(text):
                break
            time.sleep(0.5)
        self.outputs.append(('n-cpu.log (pid %d)' % pid, text))
        self.assertRegex(text, started)
        self.assertTrue(_alive(pid), 'nova-compute exited')
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            argv = f.read().decode().split('\0')
        self.assertEqual(os.path.join(self.vroot, 'bin', 'nova-compute'),
                         argv[1], argv)
        self.assertEqual(['--config-file', self.nova_cpu_conf], argv[2:4])
        return pid

    def test_stack_twice_unstack_clean(self):
        constraints = _constraints()
        wheels = _wheelhouse(constraints)
        # n-cpu: DevStack runs nova-compute on this host, from its nova
        # checkout; tempest: DevStack configures it.
        self._prepare(constraints, services='n-cpu,tempest', nova=True)
        checkout = os.path.join(self.dest, 'nova-pyvirt')
        nova_checkout = os.path.join(self.dest, 'nova')
        # tempest.conf is DevStack's, rewritten on each stack.sh; the
        # build of nova refreshes the egg-info of DevStack's checkout.
        clean_skip = {'nova-pyvirt/.git', 'etc/nova/nova.conf',
                      'tempest/etc/tempest.conf', 'nova/nova.egg-info'}
        clean_skip.update(HARNESS_FILES)
        before = _manifest(self.dest, skip=clean_skip)
        nova_conf_before = self._read(self.nova_conf, 'rb')
        env = self._env(PIP_NO_INDEX='1', PIP_FIND_LINKS=wheels)

        # stack.sh: every step, a log with the commands' output.
        out = stack_out = self._harness('stack.sh', env)
        self._assert_stack_progress(out)
        self._assert_quiet_trace(out)
        # DevStack sets up no compute driver of its own.
        self.assertIn('nova-pyvirt has overridden the following defaults\n',
                      out)
        self.assertIn('\n    VIRT_DRIVER=pyvirt\n', out)
        self.assertIn('\n    nova_pyvirt.driver.PyVirtDriver loaded from %s,'
                      ' virt_type = qemu,' % self.vroot, out)
        # nova comes from DevStack's checkout.
        self.assertRegex(_note_of(out, '3/8'),
                         r'^    nova \S+ from %s, nova-pyvirt \S+ from %s$'
                         % (re.escape(nova_checkout), re.escape(checkout)))
        # tempest skips what the driver lacks: the flags the driver class
        # gives (tests/unit/test_tempest_features.py checks those).
        flags = tempest_features.features()
        self.assertEqual(
            '    %s [compute-feature-enabled]: on: %s; off: %s' % (
                self.tempest_conf,
                ', '.join(name for name, on in flags if on),
                ', '.join(name for name, on in flags if not on)),
            _note_of(out, '8/8'))
        tempest = configparser.ConfigParser(interpolation=None)
        tempest.read(self.tempest_conf)
        features = tempest['compute-feature-enabled']
        self.assertEqual('True', features['pause'])
        self.assertEqual('True', features['resize'])
        self.assertEqual('False', features['rescue'])
        self.assertEqual('False', features['attach_encrypted_volume'])
        # Implemented, and whether it runs is the deployment's (two
        # hosts): the plugin leaves what DevStack wrote for one node.
        self.assertEqual('False', features['live_migration'])
        self.assertNotIn('vnc_console', features)
        self.assertEqual('00000000-0000-0000-0000-000000000000',
                         tempest['compute']['image_ref'])
        log = self._read(self.log)
        for step in STACK_STEPS:
            self.assertIn('nova-pyvirt ' + step.format(
                vroot=self.vroot, user=self.user), log)
        self.assertIn('+ pip_install %s %s\n' % (nova_checkout, checkout),
                      log)
        self.assertIn('Successfully installed', log)
        self.assertRegex(log, r'\+ \S+/oslo-config-generator --namespace')

        # The driver and nova's shim import from the vroot's Python.
        files = self._in_vroot(
            'import nova_pyvirt.driver, nova.virt.pyvirt\n'
            'print(nova_pyvirt.driver.__file__)\n'
            'print(nova.virt.pyvirt.__file__)\n').split()
        for path in files:
            self.assertTrue(path.startswith(self.vroot + '/lib/'), path)
        self.assertTrue(files[1].endswith('/nova/virt/pyvirt/__init__.py'))

        # nova.conf names the driver; local.conf's post-config wins.
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(self.nova_conf)
        self.assertEqual('pyvirt.PyVirtDriver',
                         conf['DEFAULT']['compute_driver'])
        self.assertEqual('qemu', conf['pyvirt']['virt_type'])
        self.assertEqual('qcow2', conf['pyvirt']['images_type'])
        # Instances go where nova's own option says (DevStack's
        # NOVA_INSTANCES_PATH); [pyvirt] has no instances path.
        instances = os.path.join(self.dest, 'data', 'nova', 'instances')
        self.assertEqual(instances, conf['DEFAULT']['instances_path'])
        # Without configparser's inheritance of [DEFAULT]'s values.
        own = configparser.ConfigParser(interpolation=None,
                                        default_section='none')
        own.read(self.nova_conf)
        self.assertNotIn('instances_path', own['pyvirt'])
        self.assertTrue(os.path.isdir(instances))
        for rel in ('bin/nova-pyvirt', 'bin/nova-pyvirt-compute',
                    'bin/nova-compute'):
            self.assertTrue(os.access(os.path.join(self.vroot, rel),
                                      os.X_OK), rel)
        self.assertIn('[pyvirt]', self._read(os.path.join(
            self.vroot, 'etc', 'nova-pyvirt', 'nova-pyvirt.conf.sample')))
        # nova-compute runs from the vroot and loads the driver.
        self._assert_compute_running()
        self._assert_audit(out)

        # A second stack.sh succeeds and changes nothing: no file in $DEST
        # is rewritten (except the log, which grows, and the files the
        # harness writes on each run), nova.conf ends up the same.
        nova_conf_first = self._read(self.nova_conf, 'rb')
        log_size = os.path.getsize(self.log)
        skip = {'nova-pyvirt/.git', 'etc/nova/nova.conf'}
        skip.update(HARNESS_FILES)
        first = _manifest(self.dest, skip=skip)
        out = self._harness('stack.sh', env)
        self._assert_stack_progress(out)
        self.assertEqual('    up to date', _note_of(out, '3/8'))
        # (nova-compute is restarted: DevStack restarts every service.)
        pid = self._assert_compute_running()
        self.assertEqual([], _differences(first,
                                          _manifest(self.dest, skip=skip)))
        self.assertEqual(nova_conf_first, self._read(self.nova_conf, 'rb'))
        self.assertGreater(os.path.getsize(self.log), log_size)
        self._assert_audit(stack_out)

        # unstack.sh, then clean.sh: no trace of the plugin is left.
        out = self._harness('unstack.sh', env)
        self.assertEqual(
            ['nova-pyvirt unstack [1/1] stopping nova-compute started '
             'from %s' % self.vroot], self._progress(out))
        self.assertEqual('    stopped n-cpu', _note_of(out, '1/1'))
        self.assertFalse(os.path.exists(self._pidfile))
        self.assertFalse(_alive(pid), 'nova-compute still runs')
        out = self._harness('clean.sh', env)
        self.assertEqual([
            'nova-pyvirt unstack [1/1] stopping nova-compute started '
            'from %s' % self.vroot,
            'nova-pyvirt clean [1/4] stopping nova-compute started '
            'from %s' % self.vroot,
            'nova-pyvirt clean [2/4] removing pyvirt settings from %s' %
            self.nova_conf,
            'nova-pyvirt clean [3/4] undoing libvirt access for root',
            'nova-pyvirt clean [4/4] removing %s' % self.vroot,
        ], self._progress(out))
        self.assertFalse(os.path.lexists(self.vroot))
        self.assertEqual(nova_conf_before, self._read(self.nova_conf, 'rb'))
        # DevStack's copy for nova-compute is cleaned too.
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(self.nova_cpu_conf)
        self.assertFalse(conf.has_section('pyvirt'))
        self.assertEqual('libvirt.LibvirtDriver',
                         conf['DEFAULT']['compute_driver'])
        # Everything else in $DEST (the plugin's checkout included) is as
        # before: no file left, none changed.
        self.assertEqual([], _differences(
            before, _manifest(self.dest, skip=clean_skip)))
        self._assert_audit(stack_out)

    def test_failing_step_stops_with_its_name_and_log_tail(self):
        constraints = _constraints()
        wheels = _wheelhouse(constraints)
        # DevStack's constraints ask for a nova that does not exist.
        self._prepare(re.sub(r'(?im)^nova==.*$', 'nova===0.0.0',
                             constraints))
        env = self._env(PIP_NO_INDEX='1', PIP_FIND_LINKS=wheels)
        out = self._harness('stack.sh', env, expect_rc=1)
        step = 'installing python packages into %s' % self.vroot
        self.assertEqual([
            'nova-pyvirt ' + STACK_STEPS[0],
            'nova-pyvirt ' + STACK_STEPS[1].format(user=self.user),
            'nova-pyvirt [3/8] %s' % step,
            'nova-pyvirt [3/8] %s: FAILED' % step,
        ], self._progress(out))
        self.assertIn("nova-pyvirt: step [3/8] '%s' failed: 'pip_install "
                      % step, out)
        tail = out.split('nova-pyvirt: last 25 lines of %s:\n' % self.log)[1]
        tail = tail.split('\n[')[0].splitlines()
        self.assertEqual(25, len(tail), tail)
        self.assertTrue(all(line.startswith('    ') for line in tail), tail)
        self.assertIn('nova===0.0.0', '\n'.join(tail))
        self.assertIn('[ERROR] ', out)
        self.assertIn('(full log: %s)' % self.log, out)
        # The log holds the same lines, and everything before them.
        log = self._read(self.log).splitlines()
        self.assertEqual([line[4:] for line in tail], log[-25:])
        self._assert_audit(out)

    def _layered(self, path, base):
        """``path`` as the audited commands see it after they ran."""
        for layer in (self.upper, base):
            candidate = os.path.join(layer, 'layers' + path)
            if os.path.lexists(candidate):
                return candidate
        return path

    def test_libvirt_group_of_an_unprivileged_stack_user(self):
        if subprocess.run(['getent', 'group', 'libvirt'],
                          stdout=subprocess.DEVNULL).returncode:
            self.skipTest('no libvirt group (libvirt is not installed)')
        self.user = 'pyvirt-stack-test'
        wheels = _wheelhouse(_constraints())
        self._prepare('')
        # The stack user exists only in the audit's overlays: its own
        # layer, under the one that records the plugin's writes.
        base = os.path.join(self.tmp, 'setup')
        fsaudit.run(['useradd', '--no-create-home', self.user], base,
                    self.audited, check=True, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        before = {path: self._read(self._layered(path, base), 'rb')
                  for path in ('/etc/group', '/etc/gshadow')}
        # DevStack's pre-install phase, then its clean phase.
        script = (
            'source "$1/common"\n'
            'extract_localrc_section "$TOP_DIR/local.conf"'
            ' "$TOP_DIR/localrc" "$TOP_DIR/.localrc.auto"\n'
            'source "$HARNESS_DIR/stackrc"\n'
            'set -o errexit\n'
            'fetch_plugins\n'
            'run_phase source\n'
            'harness_install_bindep\n'
            'run_phase stack pre-install\n'
            'echo "groups: $(id -nG "$STACK_USER")"\n'
            'run_phase clean\n'
            'echo "groups: $(id -nG "$STACK_USER")"\n')
        proc = fsaudit.run(
            ['bash', '-c', script, 'phases', HARNESS], self.upper,
            self.audited, base=base, cwd=os.path.join(self.dest, 'devstack'),
            env=self._env(PIP_NO_INDEX='1', PIP_FIND_LINKS=wheels),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
        out = proc.stdout
        self.outputs.append(('pre-install and clean', out))
        self.assertEqual(0, proc.returncode, out)
        self.assertEqual(
            '    added %s to group libvirt' % self.user, _note_of(out, '2/8'))
        groups = re.findall(r'^groups: (.*)$', out, re.M)
        self.assertEqual(2, len(groups), out)
        self.assertIn('libvirt', groups[0].split())
        self.assertNotIn('libvirt', groups[1].split())
        self.assertIn('    removed %s from group libvirt' % self.user, out)

        entries, allowed = _allowed_outside_dest(out)
        written = fsaudit.changes(self.upper, self.audited, base=base)
        self.outputs.append(('audit', '\n'.join(
            '%s %s' % (kind, path) for path, kind in written) + '\n'))
        self.assertIn('/etc/group', [path for path, kind in written])
        self.assertEqual(
            [], [(path, kind) for path, kind in written
                 if not any(fnmatch.fnmatch(path, p) for p in allowed)])
        # clean took the user out of the group again: as before.
        for path, data in before.items():
            self.assertEqual(data, self._read(self._layered(path, base),
                                              'rb'), path)
