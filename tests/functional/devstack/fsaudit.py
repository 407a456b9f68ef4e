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

"""Record every file a command tree writes outside a destination directory.

The command runs in a private mount namespace (``unshare --mount``) where
each audited directory is covered by an overlay file system: reads see the
real directory, every write lands in the overlay's upper layer, which this
module reads afterwards. The machine's real directories are never changed.

Why an overlay rather than comparing listings of the file system before
and after: the functional tests run in parallel, and other tests, libvirt
and the machine itself write under ``/var``, ``/root`` and ``/tmp`` at the
same time. Listings cannot tell who wrote what, while an overlay mounted in
the command's own namespace sees only the writes of that command and of
its children (not of daemons it may ask to do something: the harness and
the plugin start none in these tests).

Audited: ``/etc``, ``/usr`` (also ``/bin``, ``/sbin`` and ``/lib``, which
are links into it on Debian), ``/var``, ``/opt``, ``/srv``, ``/home``,
``/boot``, ``$HOME`` and the source tree the test runs from. Not audited,
and why:

* ``/proc``, ``/sys``, ``/dev``, ``/run``: kernel and run-time file
  systems, not persistent and not overlay-able;
* ``/tmp``: scratch space; the test's ``$DEST`` lives there (an overlay on
  ``/tmp`` would hide ``$DEST`` itself) and tools create and remove their
  temporary files there (pip's build directories);
* ``/mnt``, ``/media`` and the workplace's other top-level directories:
  mount points and machinery that are no part of the system under test;
* any audited directory that contains ``$DEST`` (dropped, and said so in
  the report), since its writes must stay real.
"""

import os
import stat
import subprocess

#: System directories audited when they exist.
SYSTEM_DIRS = ('/etc', '/usr', '/var', '/opt', '/srv', '/home', '/boot')

_MOUNT_AND_RUN = r'''
set -o errexit -o nounset
upper=$1 base=$2
shift 2
while [[ $1 != -- ]]; do
    dir=$1
    shift
    lower=$dir
    if [[ -n $base && -d $base/layers$dir ]]; then
        lower=$base/layers$dir:$dir
    fi
    mkdir -p "$upper/layers$dir" "$upper/work$dir"
    options="lowerdir=$lower,upperdir=$upper/layers$dir"
    mount -t overlay overlay -o "$options,workdir=$upper/work$dir" "$dir"
done
shift
exec "$@"
'''


def audited_dirs(dest, extra=()):
    """:data:`SYSTEM_DIRS` and ``extra``, parents first, none with ``dest``.

    Returns ``(dirs, dropped)``.
    """
    dest = os.path.realpath(dest)
    candidates = list(SYSTEM_DIRS) + list(extra)
    dirs, dropped = [], []
    for path in candidates:
        if not path or not os.path.isdir(path) or os.path.islink(path):
            continue
        path = os.path.realpath(path)
        if path in dirs:
            continue
        if dest == path or dest.startswith(path + os.sep):
            dropped.append(path)
            continue
        dirs.append(path)
    dirs.sort(key=lambda p: p.count(os.sep))
    return dirs, dropped


def can_audit():
    """Whether mount namespaces and overlays are usable (root needed)."""
    return os.geteuid() == 0 and _which('unshare') is not None


def _which(name):
    for d in os.environ.get('PATH', '').split(os.pathsep):
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    return None


def audited_argv(argv, upper, dirs, base=''):
    """``argv`` wrapped to run in a namespace with ``dirs`` overlaid.

    ``upper`` is where the upper layers are kept (outside every audited
    directory). Calling this again with the same ``upper`` accumulates the
    writes of several commands. The layers of an earlier ``base`` upper
    (a test's own preparations, say) are seen by the command, but its
    writes go to ``upper`` only.
    """
    return (['unshare', '--mount', '--propagation', 'private', '--',
             'bash', '-c', _MOUNT_AND_RUN, 'audit', upper, base] +
            list(dirs) + ['--'] + list(argv))


def changes(upper, dirs, base=''):
    """Paths written under the audited ``dirs``, from the upper layers.

    Returns a sorted list of ``(path, kind)`` with kind ``created``,
    ``modified`` (the file existed before), ``rewritten`` (it existed with
    the same contents: opened for writing, or written back unchanged),
    ``deleted`` or ``dir`` (a directory created, or replaced: overlay marks
    it opaque). Directories that only hold a written file are not listed
    themselves.
    """
    found = []
    for top in dirs:
        layer = os.path.join(upper, 'layers' + top)
        for root, subdirs, files in os.walk(layer):
            for name in subdirs + files:
                upper_path = os.path.join(root, name)
                path = os.path.join(top, os.path.relpath(upper_path, layer))
                lower = path
                if base and os.path.lexists(os.path.join(
                        base, 'layers' + top, os.path.relpath(upper_path,
                                                              layer))):
                    lower = os.path.join(base, 'layers' + path)
                kind = _kind(upper_path, lower)
                if kind:
                    found.append((path, kind))
    return sorted(found)


def _kind(upper_path, real_path):
    st = os.lstat(upper_path)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return 'deleted'
    exists = os.path.lexists(real_path)
    if stat.S_ISDIR(st.st_mode):
        if not exists or not os.path.isdir(real_path):
            return 'dir'
        try:
            opaque = os.getxattr(upper_path, 'trusted.overlay.opaque',
                                 follow_symlinks=False)
        except OSError:
            opaque = b''
        return 'dir' if opaque == b'y' else None
    if not exists:
        return 'created'
    if (stat.S_ISREG(st.st_mode) and os.path.isfile(real_path) and
            not os.path.islink(real_path) and
            _same_bytes(upper_path, real_path)):
        return 'rewritten'
    return 'modified'


def _same_bytes(a, b):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def run(argv, upper, dirs, base='', **kwargs):
    """Run ``argv`` audited; a :class:`subprocess.CompletedProcess`."""
    return subprocess.run(audited_argv(argv, upper, dirs, base), **kwargs)
