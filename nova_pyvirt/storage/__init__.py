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

"""Instance-local storage: the image cache and the disk backends.

:mod:`~nova_pyvirt.storage.imagecache` downloads each glance image once per
host into ``<instances_path>/<subdirectory_name>`` (nova's ``[DEFAULT]``
and ``[image_cache]`` options) and refuses
images that are unsafe or not what glance says they are.
:mod:`~nova_pyvirt.storage.backends` turns a cached image into an
instance's root disk and creates its ephemeral and swap disks, returning
:class:`nova_pyvirt.design.request.LocalDisk` values for guest design.
:mod:`~nova_pyvirt.storage.fileops` runs the host commands both need.
"""
