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

"""An instance's directory: where its disks and console log live.

``<instances_path>/<uuid>/`` holds ``disk``, ``disk.eph0``, ``disk.swap``,
``kernel``, ``ramdisk`` and ``console.log``; the image cache lives beside
the instance directories in ``<instances_path>/<image_cache_subdir>``.
"""

import os
import shutil

from oslo_log import log as logging
from oslo_utils import units

LOG = logging.getLogger(__name__)

MAX_CONSOLE_BYTES = 100 * units.Ki
CONSOLE_LOG = 'console.log'


class InstanceFiles(object):

    def __init__(self, instances_path, uuid):
        self.path = os.path.join(instances_path, uuid)

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def console_log(self):
        return self.file(CONSOLE_LOG)

    def exists(self):
        return os.path.isdir(self.path)

    def create(self):
        """Create the directory; returns False if it already existed."""
        try:
            os.makedirs(self.path)
        except FileExistsError:
            return False
        return True

    def remove(self):
        """Delete the directory and everything in it (idempotent)."""
        if os.path.isdir(self.path):
            LOG.debug('removing instance files %s', self.path)
            shutil.rmtree(self.path)

    def console_tail(self, limit=MAX_CONSOLE_BYTES):
        """The last ``limit`` bytes of the console log (b'' if none)."""
        try:
            with open(self.console_log, 'rb') as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - limit))
                return handle.read()
        except FileNotFoundError:
            return b''
