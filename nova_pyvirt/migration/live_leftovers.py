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

"""Destination files of failed live migrations, kept until libvirt answers.

nova asks the destination to roll back a failed live migration once, and
that may be while the destination's libvirtd is down (its death may be
why the migration failed). The instance directory that
``pre_live_migration`` made must not be removed blind: only libvirt can
tell that no guest on this host uses its disks. So the rollback leaves a
marker file in the directory, and the directory goes when libvirt answers
again (the driver's connection comes back, or nova-compute starts).

The marker lives in the directory it is about, so it goes with it; an
instances path shared with the source is never marked (the rollback
removes no files there).
"""

import os
import time

from oslo_serialization import jsonutils

#: The marker's name in the instance directory.
MARKER = 'live-migration-rollback.json'


def mark(files, reason):
    """Note that ``files`` (an InstanceFiles) await a rollback."""
    with open(files.file(MARKER), 'w') as handle:
        handle.write(jsonutils.dumps({'since': time.time(),
                                      'reason': reason}))


def marked(instances_path):
    """Instance UUIDs whose directory under ``instances_path`` is marked."""
    try:
        entries = list(os.scandir(instances_path))
    except FileNotFoundError:
        return []
    return sorted(entry.name for entry in entries
                  if entry.is_dir(follow_symlinks=False) and
                  os.path.exists(os.path.join(entry.path, MARKER)))


def unmark(files):
    try:
        os.unlink(files.file(MARKER))
    except FileNotFoundError:
        pass
