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

"""The test guest's config drive readers, run by the host's busybox.

``init.sh`` reads nova's JSON documents with busybox awk (there is no JSON
parser in the guest). These tests take its shell functions out of
``tools/guest_image/init.sh`` and run them with the busybox of the
``busybox-static`` package, the same build as the guest's, on documents
made by nova's own code, without booting anything.
"""

import os
import re
import subprocess

import fixtures
from oslo_serialization import jsonutils
import testtools

from nova.network import model as network_model
from nova.virt import netutils

from tests import design_support as support

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
INIT_SH = os.path.join(REPO, 'tools', 'guest_image', 'init.sh')
BUSYBOX = '/bin/busybox'
STATIC_MAC = 'fa:16:3e:00:00:01'
STATIC_CIDR = '10.0.0.0/24'
STATIC_IP = '10.0.0.7'
STATIC_GATEWAY = '10.0.0.1'
# A string with every kind of JSON escape json.dumps writes.
AWKWARD = 'a "quoted" \\ back/slash\ttab caf\u00e9 \u20ac {x: [1, 2]}'


def shell_function(name):
    """The text of the function ``name() { ... }`` of init.sh."""
    with open(INIT_SH) as handle:
        text = handle.read()
    match = re.search(r'^%s\(\) \{\n.*?^\}\n' % re.escape(name), text,
                      re.MULTILINE | re.DOTALL)
    if not match:
        raise AssertionError('no function %s in %s' % (name, INIT_SH))
    return match.group(0)


def flatten(value, path=()):
    """What json_flatten prints for ``value``, computed in Python."""
    if isinstance(value, dict):
        return [line for key, item in value.items()
                for line in flatten(item, path + (key,))]
    if isinstance(value, list):
        return [line for index, item in enumerate(value)
                for line in flatten(item, path + (str(index),))]
    key = '.'.join(path)
    if not isinstance(value, str):
        return ['%s\t%s' % (key, jsonutils.dumps(value))]
    lines = value.split('\n')
    return ['%s\t%s' % (key, line) for line in lines
            if line or len(lines) == 1]


class InitConfigTest(testtools.TestCase):

    def setUp(self):
        super(InitConfigTest, self).setUp()
        if not os.access(BUSYBOX, os.X_OK):
            self.skipTest('%s is missing (busybox-static)' % BUSYBOX)
        self.tmp = self.useFixture(fixtures.TempDir()).path
        # The guest's PATH: every command is a busybox applet.
        self.bin = os.path.join(self.tmp, 'bin')
        os.mkdir(self.bin)
        subprocess.run([BUSYBOX, '--install', '-s', self.bin], check=True)

    def run_functions(self, names, script, **env):
        functions = ''.join(shell_function(name) for name in names)
        return subprocess.run(
            [BUSYBOX, 'sh', '-c', functions + script], cwd=self.tmp,
            env=dict(env, PATH=self.bin), capture_output=True, text=True,
            check=True, timeout=60).stdout

    def json_flatten(self, document, **dumps_args):
        path = os.path.join(self.tmp, 'doc.json')
        with open(path, 'w') as handle:
            jsonutils.dump(document, handle, **dumps_args)
        return self.run_functions(['json_flatten'],
                                  'json_flatten %s\n' % path)

    def test_nova_meta_data(self):
        key = 'ssh-ed25519 AAAAC3Nza test@host\n'
        meta_data = {
            'uuid': '8d5ee3c0-6a4e-4f1e-9d0b-3f2a1c4b5e6f',
            'public_keys': {'k.1': key},
            'keys': [{'name': 'k.1', 'type': 'ssh', 'data': key}],
            'hostname': 'vm1.novalocal', 'name': AWKWARD,
            'launch_index': 0, 'availability_zone': None,
            'meta': {'empty': '', 'nested': {'list': [], 'obj': {}},
                     'flag': True},
            'devices': [], 'project_id': 'p'}
        # nova's json.dumps (one line), and the same document indented.
        for dumps_args in ({}, {'indent': 2}):
            self.assertEqual(flatten(meta_data),
                             self.json_flatten(meta_data,
                                               **dumps_args).splitlines())

    def test_json_get_and_keys(self):
        document = {'hostname': 'vm1.novalocal',
                    'public_keys': {'a': 'ssh-rsa AAA a\n',
                                    'b': 'ssh-ed25519 BBB b\nssh-rsa CCC c'}}
        path = os.path.join(self.tmp, 'doc.json')
        with open(path, 'w') as handle:
            jsonutils.dump(document, handle)
        out = self.run_functions(
            ['json_flatten', 'json_get'],
            'json_flatten %s > flat\njson_get flat hostname\n' % path)
        self.assertEqual('vm1.novalocal\n', out)
        # Every line of every key: what goes to authorized_keys.
        flat = self.run_functions(['json_flatten'],
                                  'json_flatten %s\n' % path)
        self.assertEqual(['ssh-rsa AAA a', 'ssh-ed25519 BBB b',
                          'ssh-rsa CCC c'],
                         [line.split('\t', 1)[1] for line in
                          flat.splitlines()
                          if line.startswith('public_keys.')])

    def test_static_address_from_nova_network_data(self):
        # A port on a subnet without DHCP, and one with it (its MAC in
        # capitals: the guest compares MACs in lower case).
        static = support.vif('ovs', id='port-static', devname='tap-static',
                             address=STATIC_MAC)
        static['network']['subnets'] = [network_model.Subnet(
            cidr=STATIC_CIDR, ips=[network_model.FixedIP(address=STATIC_IP)],
            gateway=network_model.IP(address=STATIC_GATEWAY,
                                     type='gateway'))]
        dhcp = support.vif('ovs', id='port-dhcp', devname='tap-dhcp',
                           address='FA:16:3E:00:00:02')
        dhcp['network']['subnets'] = [network_model.Subnet(
            cidr='10.1.0.0/24',
            ips=[network_model.FixedIP(address='10.1.0.5')],
            dhcp_server=network_model.IP(address='10.1.0.2'))]
        network_data = netutils.get_network_metadata(
            network_model.NetworkInfo([static, dhcp]))
        mnt = os.path.join(self.tmp, 'mnt')
        os.makedirs(os.path.join(mnt, 'openstack', 'latest'))
        with open(os.path.join(mnt, 'openstack', 'latest',
                               'network_data.json'), 'w') as handle:
            jsonutils.dump(network_data, handle)
        run = os.path.join(self.tmp, 'run')
        net = os.path.join(self.tmp, 'net')
        os.mkdir(run)
        os.mkdir(net)

        out = self.run_functions(
            ['json_flatten', 'config_network'], 'config_network\n',
            CONFIG_MNT=mnt, CONFIG_RUN=run, NET_RUN=net)

        self.assertEqual('PYVIRT-NETWORK-DATA links=2 dhcp=1 static=1\n',
                         out)
        # Only the static port's MAC, with its address and default route.
        self.assertEqual(['static.' + STATIC_MAC], os.listdir(net))
        with open(os.path.join(net, 'static.' + STATIC_MAC)) as handle:
            self.assertEqual('%s/%s %s\n' % (STATIC_IP,
                                             STATIC_CIDR.split('/')[1],
                                             STATIC_GATEWAY), handle.read())
