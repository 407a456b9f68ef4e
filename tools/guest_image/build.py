#!/usr/bin/env python3
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

"""Build the tiny nova_pyvirt test guest from Debian packages.

Outputs (in --output DIR, default <repo>/.cache/guest-image):

  vmlinuz            the kernel that linux-image-cloud-amd64 depends on
  initrd.img         gzip'd newc cpio: static busybox, virtio/SCSI/ACPI-button,
                     IDE CD-ROM and iso9660/vfat modules, dropbear (SSH
                     server) with its shared libraries and the dynamic
                     loader, and the /init from init.sh next to this file
  disk-marker.raw    1 MiB raw disk whose first line is MARKER
  disk-marker.qcow2  the same data as qcow2 (only if qemu-img is installed)
  manifest.json      kernel version, package versions, sha256 of the files

Standard library only; needs apt-get, apt-cache and dpkg-deb (Debian/Ubuntu).
Re-running is cheap: when the outputs exist and the stamp written by the
previous build matches the current inputs (package versions, module list,
this script and init.sh), nothing is done.  --force rebuilds.

See README.md for the console protocol spoken by the guest.
"""

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUTPUT = os.path.join(REPO, '.cache', 'guest-image')
INIT_SCRIPT = os.path.join(HERE, 'init.sh')

KERNEL_META_PACKAGE = 'linux-image-cloud-amd64'
BUSYBOX_PACKAGE = 'busybox-static'
# The SSH server and the packages holding the shared libraries it needs
# (dropbear-bin's Depends, and libtomcrypt1's libgmp10).  The build reads
# the ELF NEEDED entries of SSH_BINARIES and fails if one of them is found
# in none of these packages.
SSH_PACKAGES = ('dropbear-bin', 'libc6', 'libcrypt1', 'libgmp10',
                'libtomcrypt1', 'libtommath1', 'zlib1g')
SSH_BINARIES = ('usr/sbin/dropbear', 'usr/bin/dropbearkey')
# Where the libraries go in the initramfs: a directory the Debian loader
# searches by default (no ld.so.cache is needed).
LIB_DIR = 'lib/x86_64-linux-gnu'
LIB_SEARCH = ('lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64',
              'lib', 'usr/lib')

# Loaded by /init in dependency order (missing dependencies are pulled in
# automatically from the modules' own "depends=" field).
MODULES = (
    'virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev',
    'virtio_pci', 'virtio_blk', 'scsi_common', 'scsi_mod', 'sd_mod',
    'virtio_scsi', 'failover', 'net_failover', 'virtio_net', 'virtio_console',
    # ACPI power button -> /dev/input/eventN for busybox acpid.
    'button', 'evdev',
    # The config drive: an IDE CD-ROM (ata_piix pulls in libata; sr_mod
    # cdrom) with iso9660, or a disk with vfat (fat) and the code pages FAT
    # names are read with.  The cloud kernel has no AHCI driver at all, so
    # a SATA CD-ROM (q35's default) stays invisible to this guest.
    'ata_piix', 'sr_mod', 'isofs', 'vfat', 'nls_cp437', 'nls_ascii',
    'nls_utf8', 'nls_iso8859-1',
)

# insmod parameters.  Synchronous SCSI scanning: virtio-scsi disks exist by
# the time insmod virtio_scsi returns, so the first report lists them.
MODULE_PARAMS = {
    'scsi_mod': 'scan=sync',
    # The guest computes its own checksums and segments (no offload to the
    # host): Open vSwitch's userspace datapath reads tap devices with a
    # packet socket and would forward packets whose checksum was left to
    # the "hardware", which every receiver drops.
    'virtio_net': 'csum=0 gso=0',
}

MARKER = 'PYVIRT-DISK-MARKER root'
MARKER_DISK_SIZE = 1024 * 1024

# Bump when the layout of the outputs changes in a way the stamp would miss.
BUILD_FORMAT = 2

STAMP = '.build-stamp.json'
OUTPUT_FILES = ('vmlinuz', 'initrd.img', 'disk-marker.raw', 'manifest.json')


def log(msg):
    print('guest-image: %s' % msg, flush=True)


class BuildError(Exception):
    pass


def run(argv, **kwargs):
    """subprocess.run(argv, check=True) with the output shown on failure."""
    kwargs.setdefault('stdout', subprocess.PIPE)
    kwargs.setdefault('stderr', subprocess.STDOUT)
    try:
        return subprocess.run(argv, check=True, **kwargs)
    except subprocess.CalledProcessError as e:
        # Prefer stderr when it was captured separately (stdout may be
        # binary data, e.g. a cpio archive).
        out = e.stderr if e.stderr is not None else e.stdout
        if isinstance(out, bytes):
            out = out.decode('utf-8', 'replace')
        raise BuildError('command failed (exit %s): %s\n%s'
                         % (e.returncode, ' '.join(argv), out or ''))


class Apt(object):
    """apt-cache queries and apt-get download.

    A failing query or download runs 'apt-get update' once and is retried
    (typically the package lists were missing).
    """

    def __init__(self):
        self.updated = False

    def _run(self, argv, cwd=None):
        try:
            return run(argv, cwd=cwd, universal_newlines=True)
        except BuildError as first:
            if self.updated:
                raise
            log('%s failed; running apt-get update once and retrying'
                % ' '.join(argv[:2]))
            self.updated = True
            try:
                run(['apt-get', 'update'], universal_newlines=True)
            except BuildError as e:
                raise BuildError('%s\n(after: %s)' % (e, first))
            return run(argv, cwd=cwd, universal_newlines=True)

    def kernel_package(self):
        """The versioned kernel package the cloud meta-package depends on."""
        out = self._run(['apt-cache', 'depends', KERNEL_META_PACKAGE]).stdout
        for line in out.splitlines():
            line = line.strip().lstrip('|')
            if not line.startswith('Depends:'):
                continue
            name = line.split(':', 1)[1].strip()
            if name.startswith('linux-image-') and name[12:13].isdigit():
                return name
        raise BuildError('no linux-image-<version> dependency found in '
                         '"apt-cache depends %s":\n%s'
                         % (KERNEL_META_PACKAGE, out))

    def candidate_versions(self, packages):
        """{package: candidate version}, one apt-cache call."""
        out = self._run(['apt-cache', 'show', '--no-all-versions']
                        + list(packages)).stdout
        versions = {}
        package = None
        for line in out.splitlines():
            if line.startswith('Package:'):
                package = line.split(':', 1)[1].strip()
            elif line.startswith('Version:') and package in packages:
                versions.setdefault(package, line.split(':', 1)[1].strip())
        missing = set(packages) - set(versions)
        if missing:
            raise BuildError('no candidate version for %s'
                             % ', '.join(sorted(missing)))
        return versions

    def download(self, package, version, dest):
        """apt-get download PACKAGE=VERSION into dest; returns the .deb."""
        for name in os.listdir(dest):
            if name.startswith(package + '_') and name.endswith('.deb'):
                os.unlink(os.path.join(dest, name))
        self._run(['apt-get', 'download', '%s=%s' % (package, version)],
                  cwd=dest)
        debs = [n for n in os.listdir(dest)
                if n.startswith(package + '_') and n.endswith('.deb')]
        if len(debs) != 1:
            raise BuildError('expected one %s .deb in %s, found %s'
                             % (package, dest, debs))
        return os.path.join(dest, debs[0])


# --- kernel modules ----------------------------------------------------------

MODULE_SUFFIXES = ('.ko', '.ko.xz', '.ko.gz', '.ko.zst')


def module_name(filename):
    for suffix in MODULE_SUFFIXES:
        if filename.endswith(suffix):
            return filename[:-len(suffix)].replace('-', '_')
    return None


def read_module(path):
    """The uncompressed bytes of a .ko / .ko.xz / .ko.gz file."""
    if path.endswith('.ko.xz'):
        with lzma.open(path) as f:
            return f.read()
    if path.endswith('.ko.gz'):
        with gzip.open(path) as f:
            return f.read()
    if path.endswith('.ko.zst'):
        raise BuildError('%s is zstd-compressed; the standard library '
                         'cannot decompress it' % path)
    with open(path, 'rb') as f:
        return f.read()


def modinfo(data):
    """key -> value from the .modinfo section of an ELF64 little-endian .ko."""
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        raise BuildError('not an ELF64 little-endian module')
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3A)

    def section(i):
        base = shoff + i * shentsize
        name, = struct.unpack_from('<I', data, base)
        offset, size = struct.unpack_from('<QQ', data, base + 0x18)
        return name, offset, size

    _, stroff, _ = section(shstrndx)
    info = {}
    for i in range(shnum):
        name, offset, size = section(i)
        end = data.index(b'\0', stroff + name)
        if data[stroff + name:end] != b'.modinfo':
            continue
        for entry in data[offset:offset + size].split(b'\0'):
            if b'=' in entry:
                key, value = entry.decode('utf-8', 'replace').split('=', 1)
                info.setdefault(key, value)
    return info


def elf_dynamic(data):
    """(interpreter or None, [NEEDED sonames]) of an ELF64 LE executable."""
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        raise BuildError('not an ELF64 little-endian file')
    phoff, = struct.unpack_from('<Q', data, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', data, 0x36)
    interp = None
    dynamic = None
    loads = []
    for i in range(phnum):
        base = phoff + i * phentsize
        p_type, = struct.unpack_from('<I', data, base)
        offset, vaddr, _paddr, filesz = struct.unpack_from('<QQQQ', data,
                                                           base + 8)
        if p_type == 3:     # PT_INTERP
            interp = data[offset:offset + filesz].rstrip(b'\0').decode()
        elif p_type == 2:   # PT_DYNAMIC
            dynamic = (offset, filesz)
        elif p_type == 1:   # PT_LOAD
            loads.append((vaddr, offset, filesz))
    if dynamic is None:
        return interp, []

    def file_offset(addr):
        for vaddr, offset, filesz in loads:
            if vaddr <= addr < vaddr + filesz:
                return addr - vaddr + offset
        raise BuildError('address %#x is in no loaded segment' % addr)

    needed = []
    strtab = None
    offset, size = dynamic
    for pos in range(offset, offset + size, 16):
        tag, value = struct.unpack_from('<qQ', data, pos)
        if tag == 0:        # DT_NULL
            break
        if tag == 1:        # DT_NEEDED
            needed.append(value)
        elif tag == 5:      # DT_STRTAB
            strtab = file_offset(value)
    if needed and strtab is None:
        raise BuildError('NEEDED entries without a string table')
    names = []
    for index in needed:
        end = data.index(b'\0', strtab + index)
        names.append(data[strtab + index:end].decode())
    return interp, names


def resolve_in_tree(tree, path):
    """``path`` (absolute within ``tree``) with its symlinks followed."""
    for _ in range(40):
        full = os.path.join(tree, path.lstrip('/'))
        if not os.path.islink(full):
            return full if os.path.exists(full) else None
        target = os.readlink(full)
        if not target.startswith('/'):
            target = os.path.join(os.path.dirname('/' + path.lstrip('/')),
                                  target)
        path = os.path.normpath(target)
    raise BuildError('too many symlinks: %s' % path)


def resolve_libraries(tree, binaries):
    """What the dynamically linked ``binaries`` need to run, from ``tree``.

    Returns (interpreter path, {soname: file in tree}) for the binaries
    and, recursively, the libraries they need.
    """
    interpreters = set()
    found = {}
    todo = []
    for binary in binaries:
        path = resolve_in_tree(tree, binary)
        if path is None:
            raise BuildError('%s is missing from %s'
                             % (binary, ' '.join(SSH_PACKAGES)))
        todo.append((binary, path))
    while todo:
        who, path = todo.pop()
        with open(path, 'rb') as f:
            interp, needed = elf_dynamic(f.read())
        if interp:
            interpreters.add(interp)
        for soname in needed:
            if soname in found:
                continue
            for directory in LIB_SEARCH:
                lib = resolve_in_tree(tree, os.path.join(directory, soname))
                if lib:
                    break
            else:
                raise BuildError('%s needs %s, which none of the packages %s '
                                 'has: add its package to SSH_PACKAGES'
                                 % (who, soname, ' '.join(SSH_PACKAGES)))
            found[soname] = lib
            todo.append((soname, lib))
    if len(interpreters) != 1:
        raise BuildError('expected one program interpreter, found %s'
                         % sorted(interpreters))
    return interpreters.pop(), found


def resolve_modules(modules_dir, wanted):
    """[(name, bytes)] for wanted modules plus dependencies, load order."""
    index = {}
    for root, _dirs, files in os.walk(modules_dir):
        for filename in files:
            name = module_name(filename)
            if name:
                index.setdefault(name, os.path.join(root, filename))
    builtin = set()
    builtin_list = os.path.join(modules_dir, 'modules.builtin')
    if os.path.exists(builtin_list):
        with open(builtin_list) as f:
            for line in f:
                name = module_name(os.path.basename(line.strip()))
                if name:
                    builtin.add(name)

    ordered = []
    seen = {}

    def visit(name, chain):
        if name in seen:
            if seen[name] == 'visiting':
                raise BuildError('module dependency cycle: %s'
                                 % ' -> '.join(chain + [name]))
            return
        if name not in index:
            if name in builtin:
                seen[name] = 'done'
                return
            raise BuildError('module %s not found under %s'
                             % (name, modules_dir))
        seen[name] = 'visiting'
        data = read_module(index[name])
        deps = [d.replace('-', '_')
                for d in modinfo(data).get('depends', '').split(',') if d]
        for dep in deps:
            visit(dep, chain + [name])
        seen[name] = 'done'
        ordered.append((name, data))

    for name in wanted:
        visit(name.replace('-', '_'), [])
    return ordered


# --- helpers ----------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def make_marker_disk(path, text, size=MARKER_DISK_SIZE, fmt='raw'):
    """Create a disk image whose first line is TEXT (then zeros).

    fmt 'raw' needs nothing; 'qcow2' needs qemu-img.  Tests use this to give
    each disk its own marker; the guest prints it as marker=TEXT.
    """
    line = (text + '\n').encode('ascii')
    if len(line) > 512:
        raise ValueError('marker must fit in the first 512 bytes')
    if fmt == 'raw':
        with open(path + '.tmp', 'wb') as f:
            f.write(line)
            f.truncate(size)
        os.replace(path + '.tmp', path)
        return path
    if fmt != 'qcow2':
        raise ValueError('fmt must be raw or qcow2')
    with tempfile.TemporaryDirectory() as tmp:
        raw = make_marker_disk(os.path.join(tmp, 'disk.raw'), text, size)
        run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw,
             path + '.tmp'])
    os.replace(path + '.tmp', path)
    return path


@contextlib.contextmanager
def locked(output):
    """Serialise concurrent builds into the same output directory."""
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, '.lock'), 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- the build --------------------------------------------------------------

def build_inputs(apt, modules):
    kernel_pkg = apt.kernel_package()
    with open(__file__, 'rb') as f:
        builder = hashlib.sha256(f.read()).hexdigest()
    with open(INIT_SCRIPT, 'rb') as f:
        init = hashlib.sha256(f.read()).hexdigest()
    return {
        'format': BUILD_FORMAT,
        'packages': apt.candidate_versions(
            [kernel_pkg, BUSYBOX_PACKAGE] + list(SSH_PACKAGES)),
        'kernel_package': kernel_pkg,
        'modules': list(modules),
        'marker': MARKER,
        'build.py': builder,
        'init.sh': init,
    }


def up_to_date(output, inputs):
    if not all(os.path.exists(os.path.join(output, n)) for n in OUTPUT_FILES):
        return False
    try:
        with open(os.path.join(output, STAMP)) as f:
            return json.load(f) == inputs
    except (OSError, ValueError):
        return False


def busybox_applets(busybox):
    """Applet paths ('bin/sh', 'sbin/insmod', ...) of the busybox binary.

    [] if the extracted busybox cannot run on this host; /init then runs
    'busybox --install -s' at boot.
    """
    try:
        out = subprocess.run([busybox, '--list-full'], check=True,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL,
                             universal_newlines=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line.strip().lstrip('/') for line in out.splitlines()
            if line.strip()]


# The only account: root, with a shell and a home but no password (the
# SSH server accepts public keys only).
ACCOUNT_FILES = {
    'etc/passwd': ('root:x:0:0:root:/root:/bin/sh\n', 0o644),
    'etc/shadow': ('root:*:1:0:99999:7:::\n', 0o600),
    'etc/group': ('root:x:0:\n', 0o644),
    'etc/shells': ('/bin/sh\n', 0o644),
    'etc/nsswitch.conf': ('passwd: files\ngroup: files\nshadow: files\n'
                          'hosts: files\n', 0o644),
}


def add_ssh_server(rootfs, tree):
    """dropbear, the libraries it needs and the loader, from ``tree``.

    Returns {soname: size} of the libraries copied.
    """
    interp, libs = resolve_libraries(tree, SSH_BINARIES)
    lib_dir = os.path.join(rootfs, LIB_DIR)
    os.makedirs(lib_dir, exist_ok=True)
    copied = {}
    for soname, path in sorted(libs.items()):
        dest = os.path.join(lib_dir, soname)
        shutil.copyfile(path, dest)
        os.chmod(dest, 0o755)
        copied[soname] = os.path.getsize(dest)
    # The loader at the path the binaries name (/lib64/ld-linux...).
    interp_dest = os.path.join(rootfs, interp.lstrip('/'))
    os.makedirs(os.path.dirname(interp_dest), exist_ok=True)
    if os.path.basename(interp) in libs:
        os.symlink('/%s/%s' % (LIB_DIR, os.path.basename(interp)),
                   interp_dest)
    else:
        source = resolve_in_tree(tree, interp)
        if source is None:
            raise BuildError('the loader %s is in none of %s'
                             % (interp, ' '.join(SSH_PACKAGES)))
        shutil.copyfile(source, interp_dest)
        os.chmod(interp_dest, 0o755)
    for binary in SSH_BINARIES:
        dest = os.path.join(rootfs, binary)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.lexists(dest):   # a busybox applet of the same name
            os.unlink(dest)
        shutil.copyfile(resolve_in_tree(tree, binary), dest)
        os.chmod(dest, 0o755)
    for name, (text, mode) in ACCOUNT_FILES.items():
        path = os.path.join(rootfs, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
    for d in ('etc/dropbear', 'var/log'):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.symlink('/run', os.path.join(rootfs, 'var/run'))
    return copied


def make_rootfs(rootfs, busybox, modules):
    for d in ('bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/pyvirt',
              'lib/modules/pyvirt', 'proc', 'sys', 'dev', 'run', 'tmp',
              'mnt', 'var'):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.makedirs(os.path.join(rootfs, 'root'), mode=0o700, exist_ok=True)
    shutil.copy2(busybox, os.path.join(rootfs, 'bin', 'busybox'))
    os.chmod(os.path.join(rootfs, 'bin', 'busybox'), 0o755)
    for applet in busybox_applets(busybox):
        link = os.path.join(rootfs, applet)
        if applet == 'bin/busybox' or os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink('/bin/busybox', link)
    shutil.copy2(INIT_SCRIPT, os.path.join(rootfs, 'init'))
    os.chmod(os.path.join(rootfs, 'init'), 0o755)
    for name, data in modules:
        with open(os.path.join(rootfs, 'lib/modules/pyvirt', name + '.ko'),
                  'wb') as f:
            f.write(data)
    with open(os.path.join(rootfs, 'etc/pyvirt/modules'), 'w') as f:
        for name, _ in modules:
            params = MODULE_PARAMS.get(name)
            f.write('%s %s\n' % (name, params) if params else name + '\n')


def make_initrd(rootfs, busybox, dest):
    names = []
    for root, dirs, files in os.walk(rootfs):
        dirs.sort()
        rel = os.path.relpath(root, rootfs)
        for name in sorted(dirs + files):
            names.append(name if rel == '.' else os.path.join(rel, name))
    listing = ''.join(n + '\n' for n in names).encode()
    archive = run([busybox, 'cpio', '-o', '-H', 'newc'], cwd=rootfs,
                  input=listing, stderr=subprocess.PIPE).stdout
    # mtime=0: the gzip header does not change from build to build.
    write_atomic(dest, gzip.compress(archive, compresslevel=9, mtime=0))


def find_kernel(root):
    for modules_base in ('lib/modules', 'usr/lib/modules'):
        base = os.path.join(root, modules_base)
        if os.path.isdir(base):
            versions = sorted(os.listdir(base))
            if len(versions) == 1:
                kver = versions[0]
                return kver, os.path.join(base, kver)
    raise BuildError('cannot find lib/modules/<version> in %s' % root)


def build(output, force=False, modules=MODULES):
    apt = Apt()
    inputs = build_inputs(apt, modules)
    if not force and up_to_date(output, inputs):
        log('up to date: %s' % output)
        return False

    started = time.monotonic()
    kernel_pkg = inputs['kernel_package']
    work = os.path.join(output, 'work')
    debs = os.path.join(work, 'debs')
    os.makedirs(debs, exist_ok=True)
    stamp = os.path.join(output, STAMP)
    if os.path.exists(stamp):
        os.unlink(stamp)

    extracted = {}
    # The SSH server's packages go into one tree, as on a Debian system.
    ssh_tree = os.path.join(work, 'ssh-packages')
    shutil.rmtree(ssh_tree, ignore_errors=True)
    for pkg in (kernel_pkg, BUSYBOX_PACKAGE) + SSH_PACKAGES:
        version = inputs['packages'][pkg]
        log('downloading %s %s' % (pkg, version))
        deb = apt.download(pkg, version, debs)
        dest = ssh_tree if pkg in SSH_PACKAGES else os.path.join(work, pkg)
        if pkg not in SSH_PACKAGES:
            shutil.rmtree(dest, ignore_errors=True)
        log('extracting %s' % os.path.basename(deb))
        run(['dpkg-deb', '-x', deb, dest])
        extracted[pkg] = dest

    kver, modules_dir = find_kernel(extracted[kernel_pkg])
    vmlinuz = os.path.join(extracted[kernel_pkg], 'boot', 'vmlinuz-' + kver)
    busybox = os.path.join(extracted[BUSYBOX_PACKAGE], 'bin', 'busybox')
    if not os.path.exists(busybox):
        raise BuildError('no bin/busybox in %s' % BUSYBOX_PACKAGE)

    loaded = resolve_modules(modules_dir, modules)
    log('kernel %s; modules: %s' % (kver, ' '.join(n for n, _ in loaded)))

    rootfs = os.path.join(work, 'rootfs')
    shutil.rmtree(rootfs, ignore_errors=True)
    make_rootfs(rootfs, busybox, loaded)
    ssh_libs = add_ssh_server(rootfs, ssh_tree)
    log('ssh server: %s; libraries: %s'
        % (' '.join(SSH_BINARIES), ' '.join(sorted(ssh_libs))))
    log('writing initrd.img')
    make_initrd(rootfs, busybox, os.path.join(output, 'initrd.img'))
    shutil.copyfile(vmlinuz, os.path.join(output, 'vmlinuz.tmp'))
    os.replace(os.path.join(output, 'vmlinuz.tmp'),
               os.path.join(output, 'vmlinuz'))

    log('writing marker disks')
    disks = {}
    make_marker_disk(os.path.join(output, 'disk-marker.raw'), MARKER)
    disks['disk-marker.raw'] = 'raw'
    if shutil.which('qemu-img'):
        make_marker_disk(os.path.join(output, 'disk-marker.qcow2'), MARKER,
                         fmt='qcow2')
        disks['disk-marker.qcow2'] = 'qcow2'
    else:
        log('qemu-img not found: skipping disk-marker.qcow2')
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(output, 'disk-marker.qcow2'))

    files = {}
    for name in ('vmlinuz', 'initrd.img') + tuple(sorted(disks)):
        path = os.path.join(output, name)
        files[name] = {'sha256': sha256_file(path),
                       'size': os.path.getsize(path)}
    manifest = {
        'kernel_version': kver,
        'kernel_package': kernel_pkg,
        'packages': inputs['packages'],
        'modules': [n for n, _ in loaded],
        'ssh_server': {'binaries': list(SSH_BINARIES),
                       'libraries': ssh_libs},
        'files': files,
        'disks': {name: {'format': fmt, 'marker': MARKER}
                  for name, fmt in disks.items()},
        'kernel': 'vmlinuz',
        'initrd': 'initrd.img',
        'cmdline': 'console=ttyS0',
    }
    write_atomic(os.path.join(output, 'manifest.json'),
                 (json.dumps(manifest, indent=2, sort_keys=True) + '\n')
                 .encode())
    write_atomic(stamp, (json.dumps(inputs, indent=2, sort_keys=True) + '\n')
                 .encode())
    # Keep the .debs (cheap re-extract), drop the extracted trees.
    for tree in set(extracted.values()):
        shutil.rmtree(tree, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    log('built %s in %.1f s (kernel %s, initrd %d KiB)'
        % (output, time.monotonic() - started, kver,
           files['initrd.img']['size'] // 1024))
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--output', default=DEFAULT_OUTPUT,
                        help='output directory (default: %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='rebuild even if the outputs are up to date')
    parser.add_argument('--extra-module', action='append', default=[],
                        metavar='NAME',
                        help='also load this kernel module (repeatable), '
                             'e.g. ata_piix and sr_mod for IDE CD-ROMs')
    args = parser.parse_args(argv)
    output = os.path.abspath(args.output)
    modules = tuple(MODULES) + tuple(m for m in args.extra_module
                                     if m not in MODULES)
    try:
        with locked(output):
            build(output, force=args.force, modules=modules)
    except BuildError as e:
        print('guest-image: error: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
