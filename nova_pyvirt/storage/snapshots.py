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

"""Instance snapshots: a flattened copy of the root disk, uploaded as an image.

A running guest is paused while its root disk is copied so the copy is
crash-consistent, then resumed whether or not the copy worked.
"""

import contextlib
import dataclasses
import os

from oslo_concurrency import processutils
from oslo_log import log as logging

from nova.compute import power_state

LOG = logging.getLogger(__name__)

SNAPSHOT_DIR = 'snapshots'


@dataclasses.dataclass
class SnapshotFile:
    path: str
    disk_format: str


@contextlib.contextmanager
def root_disk_snapshot(guest, root, files):
    """Yield a :class:`SnapshotFile` of ``root``; removes it afterwards."""
    disk_format = 'qcow2' if root.format == 'qcow2' else 'raw'
    directory = files.file(SNAPSHOT_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, 'root.%s' % disk_format)
    paused = guest.power_state() == power_state.RUNNING
    active = guest.is_active()
    if paused:
        guest.pause()
    # QEMU holds a write lock on a running guest's disk; reading it while the
    # vCPUs are paused is safe, so share the lock rather than wait for it.
    share = ['--force-share'] if active else []
    try:
        processutils.execute('qemu-img', 'convert', *share, '-f', root.format,
                             '-O', disk_format, root.path, path)
    except Exception:
        if os.path.exists(path):
            os.unlink(path)
        raise
    finally:
        if paused:
            guest.unpause()
    try:
        yield SnapshotFile(path, disk_format)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        if not os.listdir(directory):
            os.rmdir(directory)


def upload(context, image_api, image_id, instance, snapshot):
    metadata = {
        'disk_format': snapshot.disk_format,
        'container_format': 'bare',
        'status': 'active',
        'properties': {'image_location': 'snapshot',
                       'image_state': 'available',
                       'owner_id': instance.project_id,
                       'instance_uuid': instance.uuid},
    }
    with open(snapshot.path, 'rb') as data:
        image_api.update(context, image_id, metadata, data)
    LOG.info('snapshot of %s uploaded as image %s', instance.uuid, image_id)
