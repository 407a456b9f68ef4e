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

"""Locate libvirt's own test XML, shipped beside the checkout."""

import glob
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(_HERE, '..', '..', 'shared', 'corpus', 'libvirt-9.0.0')
ROOT = os.path.abspath(os.environ.get('NOVA_PYVIRT_CORPUS', DEFAULT))

FOLDERS = ('domain-canonical', 'domain-input', 'domain-qemu-rejected',
           'capabilities', 'domaincaps', 'cpu')
DOMAIN_FOLDERS = FOLDERS[:3]


def files(*folders):
    """Sorted corpus files of the given folders; fails if there are none."""
    found = []
    for folder in folders:
        found += sorted(glob.glob(os.path.join(ROOT, folder, '*.xml')))
    if not found:
        raise RuntimeError(
            'libvirt XML corpus not found under %s (set NOVA_PYVIRT_CORPUS)'
            % ROOT)
    return found


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()
