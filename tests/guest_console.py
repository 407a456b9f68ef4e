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

"""Reading the test guest's console lines (tools/guest_image/README.md)."""

import re

DISK_LINE = re.compile(r'^PYVIRT-DISK name=(\S+) serial=(\S+) size=(\d+)'
                       r'(?: event=(\S+))? marker=(.*)$')
REMOVED_LINE = re.compile(r'^PYVIRT-DISK name=(\S+) event=removed')
NIC_LINE = re.compile(r'^PYVIRT-NET name=(\S+) mac=(\S+)(?: event=(\S+))? '
                      r'addr=(\S+)$')
NIC_REMOVED_LINE = re.compile(r'^PYVIRT-NET name=(\S+) event=removed')
# QEMU cuts virtio-blk serials to 20 bytes.
SERIAL_LEN = 20


def disk_reports(console):
    """``[(name, serial, size, event, marker)]`` in console order."""
    found = []
    for line in console.splitlines():
        match = DISK_LINE.match(line.strip())
        if match:
            name, serial, size, event, marker = match.groups()
            found.append((name, serial, int(size), event, marker))
    return found


def removed_reports(console):
    return [m.group(1) for m in
            (REMOVED_LINE.match(line.strip()) for line in
             console.splitlines()) if m]


def nic_reports(console):
    """``[(name, mac, event, addr)]`` in console order; addr ``-``: none."""
    return [m.groups() for m in
            (NIC_LINE.match(line.strip()) for line in console.splitlines())
            if m]


def nic_removed_reports(console):
    return [m.group(1) for m in
            (NIC_REMOVED_LINE.match(line.strip()) for line in
             console.splitlines()) if m]


# The config drive steps (tools/guest_image/README.md, "Config drive").
CONFIG_STEP_LINE = re.compile(r'^PYVIRT-(CONFIG-DRIVE|HOSTNAME|KEYS|'
                              r'NETWORK-DATA|SSH|USERDATA)(?: (.*))?$')


def config_reports(console):
    """``{step: rest of its line}``, e.g. ``{'SSH': 'port=22 started'}``.

    Steps: ``CONFIG-DRIVE``, ``HOSTNAME``, ``KEYS``, ``NETWORK-DATA``,
    ``SSH``, ``USERDATA``; each is printed once a boot.
    """
    found = {}
    for line in console.splitlines():
        match = CONFIG_STEP_LINE.match(line.strip())
        if match:
            found[match.group(1)] = match.group(2) or ''
    return found


def fields(text):
    """``{key: value}`` of the ``key=value`` words of a report."""
    return dict(word.split('=', 1) for word in text.split() if '=' in word)
