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
