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

"""nova's own storage options decide where the driver stores, and what stays.

The driver has no instances path or image cache options of its own: nova's
``[DEFAULT] instances_path`` and ``[image_cache]`` options apply to it and
to nova-compute's image cache periodic task alike. A server is booted
through nova's API onto a compute host whose instances path and cache
directory are not the defaults, and nova-compute's own periodic task,
``ComputeManager._run_image_cache_manager_pass``, runs the driver's
``manage_image_cache`` over a base image no instance uses any more.
"""

import os
import time

from nova import context as nova_context
from nova.virt import storage_users

from nova_pyvirt.storage import cache_manager
from nova_pyvirt.storage import imagecache
from tests.functional.nova import base

CACHE_DIR_NAME = '_cache here'


class NovaStorageOptionsTest(base.PyVirtTestBase):

    def _setup_services(self):
        # Before the base class sets [DEFAULT] instances_path from it and
        # starts nova-compute: a path and a cache directory of nova's
        # options, not the defaults, with a blank in each.
        self.instances_path = os.path.join(self.tmp, 'moved instances')
        self.flags(subdirectory_name=CACHE_DIR_NAME, group='image_cache')
        super()._setup_services()

    def setUp(self):
        super().setUp()
        self.flavor_id = self._create_guest_flavor()
        self.cache_dir = os.path.join(self.instances_path, CACHE_DIR_NAME)
        self.root_base = os.path.join(
            self.cache_dir, imagecache.cache_filename(self.images['root']))

    def _image_cache_pass(self):
        """nova-compute's periodic image cache task, run once now."""
        manager = self.computes[self.COMPUTE_HOST].manager
        manager._run_image_cache_manager_pass(
            nova_context.get_admin_context())

    def _age(self, path, seconds):
        when = time.time() - seconds
        os.utime(path, (when, when))

    def test_instances_path_holds_instances_and_image_cache(self):
        server = self._boot_guest(self.flavor_id)
        instance_dir = os.path.join(self.instances_path, server['id'])

        # The instance's files are in nova's instances path, its root disk
        # an overlay of the image cached in nova's cache directory there.
        self.assertTrue(os.path.isdir(instance_dir))
        doc = self._domain_xml(server)
        sources = [disk.get('file') for disk in doc.iterfind(
            'devices/disk/source')]
        self.assertIn(os.path.join(instance_dir, 'disk'), sources)
        self.assertEqual(os.path.join(instance_dir, 'kernel'),
                         doc.findtext('os/kernel'))
        self.assertEqual(self.root_base, cache_manager.qcow2_backing_file(
            os.path.join(instance_dir, 'disk')))
        self.assertTrue(os.path.isfile(self.root_base))
        self._wait_for_console(server, base.GUEST_READY)

        # nova's image cache task registers this host as a user of the
        # same instances path, and the pass keeps the base in use.
        self._age(self.root_base, 30 * 86400)
        self._image_cache_pass()
        self.assertEqual([self.COMPUTE_HOST], storage_users.get_storage_users(
            self.instances_path))
        self.assertTrue(os.path.isfile(self.root_base))
        self.assertLess(time.time() - os.stat(self.root_base).st_mtime, 600)

        self._delete_server(server)
        self.assertFalse(os.path.exists(instance_dir))

    def test_remove_unused_base_images_false_keeps_unused_bases(self):
        server = self._boot_guest(self.flavor_id)
        self._delete_server(server)
        # The server is gone; its base image is unused and older than
        # nova's minimum age.
        cached = sorted(os.listdir(self.cache_dir))
        self.assertIn(os.path.basename(self.root_base), cached)
        old = 2 * self.driver._image_cache_manager.max_age
        for name in cached:
            self._age(os.path.join(self.cache_dir, name), old)

        self.flags(remove_unused_base_images=False, group='image_cache')
        self._image_cache_pass()
        self.assertEqual(cached, sorted(os.listdir(self.cache_dir)))

        # Removal enabled again (nova's default): the same pass removes the
        # unused base and what was kept beside it.
        self.flags(remove_unused_base_images=True, group='image_cache')
        self._image_cache_pass()
        left = os.listdir(self.cache_dir)
        self.assertFalse(os.path.exists(self.root_base))
        self.assertEqual([], [n for n in left if n.startswith(
            os.path.basename(self.root_base))])
