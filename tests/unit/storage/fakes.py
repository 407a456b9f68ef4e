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

"""Test doubles and real image files for the storage tests.

:class:`FakeImageAPI` stands in for nova's glance image API and serves
images from local files; the images themselves are real, made with
``qemu-img``.
"""

import os
import time

from nova import exception
from oslo_concurrency import processutils

CHUNK = 64 * 1024


def qemu_img(*args):
    """Run ``qemu-img ARGS``; return its standard output."""
    return processutils.execute('qemu-img', *args)[0]


def qemu_io(path, fmt, command, read_only=False):
    """Run one ``qemu-io`` command on ``path``; return its output."""
    args = ['qemu-io', '-f', fmt]
    if read_only:
        args.append('-r')
    return processutils.execute(*(args + ['-c', command, path]))[0]


def make_raw(path, size, data=b'', offset=0):
    """A sparse raw file of ``size`` bytes, with ``data`` at ``offset``."""
    with open(path, 'wb') as f:
        f.truncate(size)
        if data:
            f.seek(offset)
            f.write(data)
    return path


def make_qcow2(path, size, *options):
    qemu_img('create', '-q', '-f', 'qcow2', *(list(options) + [path,
                                                               str(size)]))
    return path


def make_mbr_disk(path, size):
    """A raw whole-disk image with an MBR holding one Linux partition."""
    make_raw(path, size)
    entry = bytes([0x00, 0x00, 0x02, 0x00, 0x83, 0x00, 0x00, 0x00])
    entry += (2048).to_bytes(4, 'little')
    entry += (size // 512 - 2048).to_bytes(4, 'little')
    with open(path, 'r+b') as f:
        f.seek(446)
        f.write(entry)
        f.seek(510)
        f.write(b'\x55\xaa')
    return path


class DownloadInterrupted(IOError):
    pass


class FakeImageAPI(object):
    """nova.image.glance.API's get() and download(), over local files.

    :param images: ``{image_id: (path, disk_format)}``.
    :param count_file: if set, each download appends a ``start`` line
        when it begins and an ``end`` line when it completes, with the
        time, so downloads are counted and timed across processes.
    :param fail_after: raise DownloadInterrupted after writing this many
        bytes (a connection lost mid-way).
    :param delay: seconds to sleep after the first chunk, so concurrent
        fetches overlap with the download.
    :param size: the ``size`` get() announces; default: the file's size.
    """

    def __init__(self, images, count_file=None, fail_after=None, delay=0,
                 size=None):
        self.images = images
        self.count_file = count_file
        self.fail_after = fail_after
        self.delay = delay
        self.size = size
        self.downloads = []

    def get(self, context, image_id):
        try:
            path, disk_format = self.images[image_id]
        except KeyError:
            raise exception.ImageNotFound(image_id=image_id)
        size = self.size if self.size is not None else os.path.getsize(path)
        return {'id': image_id, 'status': 'active',
                'disk_format': disk_format, 'container_format': 'bare',
                'size': size}

    def download(self, context, image_id, data=None, dest_path=None,
                 trusted_certs=None):
        path, _fmt = self.images[image_id]
        self.downloads.append(image_id)
        self._log('start', image_id)
        written = 0
        with open(path, 'rb') as src, open(dest_path, 'wb') as dest:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                if (self.fail_after is not None and
                        written + len(chunk) > self.fail_after):
                    dest.write(chunk[:self.fail_after - written])
                    dest.flush()
                    raise DownloadInterrupted('connection reset by peer')
                dest.write(chunk)
                written += len(chunk)
                if self.delay and written == len(chunk):
                    dest.flush()
                    time.sleep(self.delay)
        self._log('end', image_id)

    def _log(self, event, image_id):
        if self.count_file:
            with open(self.count_file, 'a') as f:
                f.write('%s %s %d %f\n' % (
                    event, image_id, os.getpid(), time.time()))


def download_events(count_file):
    """``[(event, image_id, pid, time)]`` logged in ``count_file``."""
    if not os.path.exists(count_file):
        return []
    events = []
    with open(count_file) as f:
        for line in f:
            event, image_id, pid, when = line.split()
            events.append((event, image_id, int(pid), float(when)))
    return events


def count_downloads(count_file):
    return sum(1 for e in download_events(count_file) if e[0] == 'start')
