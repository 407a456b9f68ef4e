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

"""A file sent through a real libvirtd's storage streams.

:meth:`nova_pyvirt.hypervisor.peer.PeerHost.upload` writes over the empty
file a live migration's destination made (as for an iso9660 config
drive), through a private ``libvirtd``: the bytes arrive as they are, the
other files of the directory are not touched, and the transient pool it
used is gone afterwards, also when the upload fails.
"""

import os

import fixtures
import libvirt
from oslotest import base

from nova_pyvirt.hypervisor import peer
from tests.fixtures import libvirtd

SIZE = 3 * 2048 * 117   # not a power of two, as an iso9660 image


class PeerUploadTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.daemon = self.useFixture(libvirtd.LibvirtdFixture())
        self.conn = libvirt.open(self.daemon.uri)
        self.addCleanup(self.conn.close)
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.source = os.path.join(self.tmp, 'source', 'disk.config')
        self.dest_dir = os.path.join(self.tmp, 'dest')
        os.makedirs(os.path.dirname(self.source))
        os.makedirs(self.dest_dir)
        self.data = os.urandom(SIZE)
        with open(self.source, 'wb') as handle:
            handle.write(self.data)
        self.pools = self.pool_names()

    def pool_names(self):
        return sorted(p.name() for p in self.conn.listAllStoragePools())

    def dest(self, name):
        return os.path.join(self.dest_dir, name)

    def test_upload_writes_the_bytes_over_the_prepared_file(self):
        with open(self.dest('disk.config'), 'wb') as handle:
            handle.truncate(SIZE)
        with open(self.dest('disk'), 'wb') as handle:
            handle.write(b'other disk')
        peer.PeerHost(self.conn, self.daemon.uri).upload(self.source,
                                                         self.dest_dir)
        with open(self.dest('disk.config'), 'rb') as handle:
            self.assertEqual(self.data, handle.read())
        with open(self.dest('disk'), 'rb') as handle:
            self.assertEqual(b'other disk', handle.read())
        self.assertEqual(self.pools, self.pool_names())

    def test_upload_without_the_prepared_file_fails_and_leaves_no_pool(self):
        exc = self.assertRaises(
            libvirt.libvirtError,
            peer.PeerHost(self.conn, self.daemon.uri).upload, self.source,
            self.dest_dir)
        self.assertIn('disk.config', str(exc))
        self.assertEqual([], os.listdir(self.dest_dir))
        self.assertEqual(self.pools, self.pool_names())
