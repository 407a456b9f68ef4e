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

"""A directory-backed image service with glance's API, for running without
glance: the demo, benchmarks and tests serve real image bytes through it.

It implements the subset of ``nova.image.glance.API`` the driver uses:
``get``, ``download``, ``create`` and ``update`` (snapshot upload).
"""

import copy
import os
import shutil
import threading

from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from nova import exception


class LocalImageService(object):

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self.downloads = 0

    def _meta_path(self, image_id):
        return os.path.join(self.directory, image_id + '.json')

    def _data_path(self, image_id):
        return os.path.join(self.directory, image_id + '.data')

    def add(self, path, disk_format, name=None, properties=None,
            image_id=None, container_format='bare'):
        """Register a copy of the file at ``path``; returns the image dict."""
        image_id = image_id or uuidutils.generate_uuid()
        shutil.copyfile(path, self._data_path(image_id))
        meta = {'id': image_id, 'name': name or os.path.basename(path),
                'disk_format': disk_format,
                'container_format': container_format, 'status': 'active',
                'size': os.path.getsize(path), 'min_disk': 0, 'min_ram': 0,
                'properties': dict(properties or {})}
        self._write_meta(meta)
        return meta

    def _write_meta(self, meta):
        with open(self._meta_path(meta['id']), 'w') as handle:
            jsonutils.dump(meta, handle)

    def get(self, context, image_id, include_locations=False,
            show_deleted=True):
        try:
            with open(self._meta_path(image_id)) as handle:
                return jsonutils.loads(handle.read())
        except FileNotFoundError:
            raise exception.ImageNotFound(image_id=image_id)

    def download(self, context, image_id, data=None, dest_path=None,
                 trusted_certs=None):
        self.get(context, image_id)
        with self._lock:
            self.downloads += 1
        source = self._data_path(image_id)
        if dest_path:
            shutil.copyfile(source, dest_path)
            return None
        with open(source, 'rb') as handle:
            if data is None:
                return handle.read()
            shutil.copyfileobj(handle, data)

    def create(self, context, image_meta, data=None):
        meta = copy.deepcopy(image_meta)
        meta.setdefault('id', uuidutils.generate_uuid())
        meta.setdefault('status', 'queued')
        self._write_meta(meta)
        if data is not None:
            self.update(context, meta['id'], meta, data)
        return self.get(context, meta['id'])

    def update(self, context, image_id, image_meta, data=None,
               purge_props=True):
        meta = self.get(context, image_id)
        meta.update(copy.deepcopy(image_meta))
        if data is not None:
            with open(self._data_path(image_id), 'wb') as handle:
                shutil.copyfileobj(data, handle)
            meta['size'] = os.path.getsize(self._data_path(image_id))
            meta['status'] = 'active'
        self._write_meta(meta)
        return meta

    def delete(self, context, image_id):
        for path in (self._meta_path(image_id), self._data_path(image_id)):
            if os.path.exists(path):
                os.unlink(path)
