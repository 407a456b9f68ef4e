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

"""The machine's processes, read from ``/proc``, for leftover checks."""

import os


def processes():
    """``{pid: cmdline}`` of every process; arguments joined by spaces.

    The command lines are bytes, as the kernel keeps them.
    """
    found = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/cmdline' % name, 'rb') as handle:
                    found[int(name)] = handle.read().replace(b'\0', b' ')
            except OSError:
                continue
    return found
