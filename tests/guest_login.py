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

"""Logging into the test guest over SSH, as a user does.

Key pairs are made with ``ssh-keygen`` in the test's directory; the login
is the ``ssh`` client as root with that key, trusting the new guest's host
key on first use, non-interactive. Where it runs from (a namespace on the
guest's network) is the caller's: :func:`ssh_argv` is the command.
The guest's side is in ``tools/guest_image/README.md``.
"""

import base64
import os
import subprocess

#: Seconds for the client to connect.
CONNECT_TIMEOUT = int(os.environ.get('PYVIRT_SSH_TIMEOUT', '20'))
#: Where the test guest mounts its config drive.
CONFIG_DRIVE_MOUNT = '/mnt/config'
META_DATA = CONFIG_DRIVE_MOUNT + '/openstack/latest/meta_data.json'
#: Where :func:`marker_user_data` writes its marker in the guest.
MARKER_FILE = '/root/user-data-marker'
#: What :meth:`login` runs: its output is three parts, one per line.
LOGIN_COMMAND = 'hostname; cat %s; cat %s' % (MARKER_FILE, META_DATA)


def marker_user_data(marker):
    """Base64 user data: a ``#!/bin/sh`` script writing ``marker``."""
    script = '#!/bin/sh\necho %s > %s\n' % (marker, MARKER_FILE)
    return base64.b64encode(script.encode()).decode()


def make_keypair(directory, name):
    """A new ed25519 key pair in ``directory``; the private key's path.

    The public key is beside it, with ``.pub``.
    """
    path = os.path.join(directory, name)
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C',
                    name, '-f', path], check=True, capture_output=True)
    return path


def public_key(private_key):
    with open(private_key + '.pub') as handle:
        return handle.read().strip()


def ssh_argv(key, address, command, timeout=CONNECT_TIMEOUT):
    """``ssh`` as root@``address`` with ``key``, running ``command``."""
    return ['ssh', '-F', '/dev/null', '-i', key,
            '-o', 'StrictHostKeyChecking=no',
            '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
            '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=%d' % timeout,
            'root@%s' % address, command]
