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

"""Cold migration and resize: the instance's files, moved as they are.

Every disk file is copied in its own format: a qcow2 overlay stays a qcow2
overlay, sparse, still naming its base in the image cache, so only what the
guest wrote crosses the network.  The source directory is kept as
``<dir>_resize`` until the migration is confirmed, and nothing on the source
is deleted before then: a copy that breaks leaves the instance where it was,
able to start again.
"""

import os
import shutil

from oslo_log import log as logging
from oslo_serialization import jsonutils
from oslo_utils import units
from oslo_versionedobjects import exception as ovo_exception

from nova import exception

from nova_pyvirt.migration import transport as transport_mod
from nova_pyvirt.storage import fileops
from nova_pyvirt.storage.instance_disks import DISK_INFO

LOG = logging.getLogger(__name__)

RESIZE_SUFFIX = '_resize'


def resize_dir(files):
    return files.path + RESIZE_SUFFIX


def check_flavor(instance, disks, new_flavor):
    """Refuse, before anything is touched, to shrink a local disk."""
    def refuse(what, old, new):
        reason = ('flavor %s would shrink the %s from %d GiB to %d GiB; '
                  'disks cannot be shrunk' % (new_flavor.name, what, old,
                                              new))
        raise exception.InstanceFaultRollback(
            inner_exception=exception.ResizeError(reason=reason))

    old = instance.flavor
    if disks.root is not None and new_flavor.root_gb < old.root_gb:
        refuse('root disk', old.root_gb, new_flavor.root_gb)
    if new_flavor.ephemeral_gb < old.ephemeral_gb:
        refuse('ephemeral disk', old.ephemeral_gb, new_flavor.ephemeral_gb)
    if disks.local_disks and any(
            d.source_type == 'block' for d in disks.local_disks):
        raise exception.InstanceFaultRollback(
            inner_exception=exception.MigrationPreCheckError(
                reason='instances on logical volumes cannot be migrated by '
                'copying files'))


def files_to_copy(disks):
    """Names in the instance directory that make up the instance."""
    names = [os.path.basename(d.path) for d in disks.local_disks]
    names += [os.path.basename(p) for p in (disks.kernel_path,
                                            disks.ramdisk_path) if p]
    names.append(DISK_INFO)
    return names


class Progress(object):
    """Turns bytes copied into ``instance.progress`` percentages."""

    def __init__(self, instance, total):
        self.instance = instance
        self.total = max(total, 1)
        self.done = 0
        self.reported = -1

    def file_done(self, size):
        self.done += size
        self.update(0)

    def callback(self):
        base = self.done

        def on_progress(copied, _total):
            self.update(copied, base)
        return on_progress

    def update(self, copied, base=None):
        done = (self.done if base is None else base) + copied
        percent = min(100, int(done * 100 / self.total))
        if percent <= self.reported:
            return
        self.reported = percent
        self.instance.progress = percent
        try:
            self.instance.save()
        except ovo_exception.OrphanedObjectError:
            pass   # an instance outside nova (tools, tests): nothing to save
        except Exception as exc:
            # Progress is for people; a conductor hiccup must not abort a
            # copy that is going fine.
            LOG.warning('could not record migration progress of %s: %s',
                        self.instance.uuid, exc)


class ColdMigration(object):

    def __init__(self, conf, disks):
        self.conf = conf
        self.disks = disks

    def transport(self):
        return transport_mod.transport_for(self.conf)

    # -- on the source ---------------------------------------------------

    def send(self, instance, dest, files, disks):
        """Move the instance's files to ``dest``; returns the disk info.

        On failure the source directory is restored and whatever was
        created on the destination is removed.
        """
        transport = self.transport()
        shared = transport.is_shared_storage(dest, files.path)
        LOG.info('migrating %s to %s over %s storage', instance.uuid, dest,
                 'shared' if shared else 'separate')
        source = resize_dir(files)
        os.rename(files.path, source)
        created_remote = False
        try:
            if shared:
                os.makedirs(files.path)
            else:
                transport.create_dir(dest, files.path)
                created_remote = True
            names = files_to_copy(disks)
            sizes = {n: os.stat(os.path.join(source, n)).st_blocks * 512
                     for n in names}
            progress = Progress(instance, sum(sizes.values()))
            for name in names:
                src = os.path.join(source, name)
                dst = os.path.join(files.path, name)
                if shared:
                    fileops.execute('cp', '--sparse=always', src, dst)
                else:
                    transport.copy_to(src, dest, dst,
                                      on_progress=progress.callback())
                progress.file_done(sizes[name])
        except Exception:
            LOG.exception('copying %s to %s failed; the instance stays on '
                          'this host', instance.uuid, dest)
            self._undo_send(transport, dest, files, source, shared,
                            created_remote)
            raise
        return jsonutils.dumps({'shared_storage': shared,
                                'files': names})

    def _undo_send(self, transport, dest, files, source, shared,
                   created_remote):
        try:
            if shared and os.path.isdir(files.path):
                shutil.rmtree(files.path)
            elif created_remote:
                transport.remove_dir(dest, files.path)
        except Exception:
            LOG.exception('could not remove the partial copy on %s', dest)
        if not os.path.exists(files.path):
            os.rename(source, files.path)

    def confirm(self, files):
        """Forget the source copy (``<dir>_resize``)."""
        source = resize_dir(files)
        if os.path.isdir(source):
            shutil.rmtree(source)

    def revert(self, files):
        """Put the source copy back as the instance directory."""
        source = resize_dir(files)
        if not os.path.isdir(source):
            return
        if os.path.isdir(files.path):
            # Shared storage: this is the destination's copy.
            shutil.rmtree(files.path)
        os.rename(source, files.path)

    # -- on the destination ----------------------------------------------

    def prepare_disks(self, context, instance, image_api, source_host,
                      disks, resize):
        """Make each overlay's base present here, then grow the root."""
        for disk in disks.local_disks:
            if disk.format != 'qcow2':
                continue
            info = fileops.qemu_img_info(disk.path, 'qcow2')
            if info.backing_file:
                self._ensure_base(context, instance, image_api, source_host,
                                  disk, info)
        root = disks.root
        if resize and root is not None:
            wanted = instance.flavor.root_gb * units.Gi
            current = fileops.qemu_img_info(root.path, root.format)
            if wanted > current.virtual_size:
                fileops.qemu_img_resize(root.path, root.format, wanted)

    def _ensure_base(self, context, instance, image_api, source_host, disk,
                     info):
        backing = info.backing_file
        cache = self.disks.cache
        # Only this host's cache counts: on hosts with the same instances
        # path the overlay already names it, and nothing is rebased.
        if os.path.dirname(backing) == cache.base_dir and \
                os.path.exists(backing):
            return
        local = None
        if instance.image_ref:
            try:
                local = cache.fetch(context, image_api,
                                    instance.image_ref).path
            except (exception.ImageNotFound, exception.ImageNotAuthorized):
                LOG.info('image %s is gone from the image service; '
                         'copying the base from %s', instance.image_ref,
                         source_host)
        if local is None:
            local = os.path.join(cache.base_dir, os.path.basename(backing))
            os.makedirs(cache.base_dir, exist_ok=True)
            with cache.lock(os.path.basename(backing)):
                if not os.path.exists(local):
                    self.transport().copy_from(source_host, backing, local)
        if local != backing:
            fmt = info.backing_file_format or 'raw'
            LOG.info('rebasing %s onto %s', disk.path, local)
            fileops.execute('qemu-img', 'rebase', '-u', '-f', 'qcow2', '-b',
                            local, '-F', fmt, disk.path)
