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

"""Moving instance files between compute hosts.

:mod:`~nova_pyvirt.migration.transport` reaches another compute host's
filesystem over ssh or rsync (``[libvirt] remote_filesystem_transport``):
directories, existence checks, shared-storage detection, and copies that
keep a disk file exactly as it is, sparse and in its own format.
:mod:`~nova_pyvirt.migration.pipeline` runs the local processes of a copy,
joined by a pipe, and reports how far the copy has got.
"""
