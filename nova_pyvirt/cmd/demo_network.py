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

"""The demo's private network: what Neutron would provide, in miniature.

The demo process moves itself into network and mount namespaces of its
own before it starts any thread (:func:`enter_private_namespace`), so
everything the demo makes on the network (the bridge, the instance's tap,
dnsmasq, the guest's traffic, the SSH session) stays in it and the host's
own network is never touched; the namespaces end with the demo's last
process.

:class:`PrivateNetwork` stands in for Neutron: a Linux bridge with the
gateway address, ``dnsmasq`` serving the port's fixed IP to the port's
MAC only, a ``vif_type=tap`` port as nova would hand it to the driver,
and an agent step that puts the port's tap on the bridge once the driver
has plugged it (as Neutron's Linux bridge agent does) before the driver's
wait for ``network-vif-plugged`` ends (:class:`AgentVirtAPI`).
"""

import contextlib
import ctypes
import io
import os
import signal
import subprocess
import tempfile
import time

from oslo_concurrency import processutils
import paramiko

from nova.network import model as network_model
from nova.virt import virtapi

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
BRIDGE = 'br-demo'
CIDR = '10.254.0.0/24'
GATEWAY = '10.254.0.1'
FIXED_IP = '10.254.0.10'
PREFIX = 24
DNSMASQ = 'dnsmasq'


class NetworkSetupError(Exception):
    pass


def enter_private_namespace():
    """Move this process into new, empty network and mount namespaces.

    Must run before any thread starts: a namespace change applies to the
    calling thread only, and the threads and processes started later
    (libvirt's event loop, QEMU, privsep daemons) inherit it from there.
    The mount namespace carries a sysfs of the new network namespace on
    ``/sys`` (nova's device checks read ``/sys/class/net``), with the
    host's cgroup hierarchy moved back under it for QEMU's cgroups.
    """
    if os.geteuid() != 0:
        raise NetworkSetupError(
            'the demo needs root to make its private network namespace '
            '(run it as root, as tools/demo.sh does in CI)')
    threads = os.listdir('/proc/self/task')
    if len(threads) != 1:
        raise NetworkSetupError('cannot enter a network namespace with %d '
                                'threads running' % len(threads))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
        errno = ctypes.get_errno()
        raise NetworkSetupError('unshare(CLONE_NEWNET | CLONE_NEWNS) '
                                'failed: %s' % os.strerror(errno))
    # Nothing mounted from here on reaches the host's mount table.
    processutils.execute('mount', '--make-rprivate', '/')
    cgroups = tempfile.mkdtemp(prefix='demo-cgroup-')
    try:
        processutils.execute('mount', '--rbind', '/sys/fs/cgroup', cgroups)
        processutils.execute('mount', '-t', 'sysfs', 'sysfs', '/sys')
        processutils.execute('mount', '--move', cgroups, '/sys/fs/cgroup')
    finally:
        os.rmdir(cgroups)
    _ip('link', 'set', 'lo', 'up')


def namespace_id(pid='self'):
    return os.readlink('/proc/%s/ns/net' % pid)


def _ip(*args):
    processutils.execute('ip', *args)


def device_exists(name):
    return os.path.exists('/sys/class/net/%s' % name)


def port(port_id, mac):
    """A port as nova hands it over, bound with ``vif_type=tap``."""
    subnet = network_model.Subnet(
        cidr=CIDR, gateway=network_model.IP(GATEWAY),
        dns=[], ips=[network_model.FixedIP(address=FIXED_IP)],
        routes=[])
    network = network_model.Network(
        id='1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b', label='demo',
        subnets=[subnet], meta={'mtu': 1500})
    return network_model.VIF(
        id=port_id, address=mac, type=network_model.VIF_TYPE_TAP,
        network=network, details={},
        devname=('tap' + port_id)[:network_model.NIC_NAME_LEN],
        active=False)


class PrivateNetwork(object):
    """The bridge and dnsmasq, in the demo's namespace, until ``stop``."""

    def __init__(self, state_dir, mac):
        self.dir = os.path.join(state_dir, 'network')
        self.mac = mac
        self.dnsmasq = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        _ip('link', 'add', BRIDGE, 'type', 'bridge')
        _ip('addr', 'add', '%s/%d' % (GATEWAY, PREFIX), 'dev', BRIDGE)
        _ip('link', 'set', BRIDGE, 'up')
        leases = os.path.join(self.dir, 'leases')
        if os.path.exists(leases):
            os.unlink(leases)
        argv = [DNSMASQ, '--keep-in-foreground', '--conf-file=/dev/null',
                '--no-hosts', '--no-resolv', '--port=0',
                '--bind-interfaces', '--interface=' + BRIDGE,
                '--except-interface=lo', '--user=root', '--group=root',
                '--dhcp-leasefile=' + leases,
                '--log-facility=' + os.path.join(self.dir, 'dnsmasq.log'),
                '--log-dhcp', '--dhcp-authoritative',
                '--dhcp-range=%s,static,255.255.255.0,600s' % FIXED_IP,
                '--dhcp-option=option:router,%s' % GATEWAY,
                '--dhcp-host=%s,%s' % (self.mac, FIXED_IP)]
        # A server that runs until the demo ends: started here (argv, no
        # shell) and stopped by its PID in stop().
        self.dnsmasq = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        time.sleep(0.2)
        if self.dnsmasq.poll() is not None:
            error = self.dnsmasq.stderr.read().decode(errors='replace')
            self.dnsmasq = None
            raise NetworkSetupError('dnsmasq exited: %s' % error.strip())

    def wire(self, tap):
        """Put the driver's tap on the bridge (Neutron's agent's job)."""
        _ip('link', 'set', tap, 'master', BRIDGE)
        _ip('link', 'set', tap, 'up')

    def stop(self):
        """Stop dnsmasq by PID and delete the bridge; what is left."""
        left = []
        if self.dnsmasq is not None:
            self.dnsmasq.send_signal(signal.SIGTERM)
            try:
                self.dnsmasq.wait(10)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait()
            self.dnsmasq.stderr.close()
            self.dnsmasq = None
        if device_exists(BRIDGE):
            _ip('link', 'del', BRIDGE)
        if device_exists(BRIDGE):
            left.append('bridge ' + BRIDGE)
        return left


class AgentVirtAPI(virtapi.VirtAPI):
    """nova-compute's event wait, with the demo's network as Neutron.

    When the driver's body (plug the tap, define, start paused) is done,
    the agent wires every awaited port's tap onto the bridge, and the
    events are there: the driver resumes the guest.
    """

    def __init__(self, network, ports):
        super(AgentVirtAPI, self).__init__()
        self.network = network
        self.ports = {vif['id']: vif for vif in ports}
        self.delivered = []

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        yield
        for name, tag in event_names:
            vif = self.ports.get(tag)
            if name != 'network-vif-plugged' or vif is None:
                raise NetworkSetupError('no agent for event %s-%s' % (
                    name, tag))
            self.network.wire(vif['devname'])
            self.delivered.append('%s-%s' % (name, tag))


def login(address, private_key, commands, timeout):
    """Run ``commands`` over SSH as root with the key; their outputs.

    Retries the connection until ``timeout`` (the guest's SSH server starts
    a moment after its network is up).
    """
    key = paramiko.RSAKey.from_private_key(io.StringIO(private_key))
    deadline = time.monotonic() + timeout
    while True:
        client = paramiko.SSHClient()
        # A new guest's host key is unknown by definition; the demo trusts
        # it on first use, as a user's first login does.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(address, username='root', pkey=key,
                           allow_agent=False, look_for_keys=False,
                           timeout=5, banner_timeout=5, auth_timeout=5)
            break
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            if time.monotonic() > deadline:
                raise NetworkSetupError('no SSH login to %s within %d s: '
                                        '%s' % (address, timeout, exc))
            time.sleep(1)
    try:
        outputs = []
        for command in commands:
            _stdin, stdout, stderr = client.exec_command(command,
                                                         timeout=30)
            status = stdout.channel.recv_exit_status()
            text = stdout.read().decode(errors='replace').strip()
            if status:
                raise NetworkSetupError('%r exited with %d in the guest: %s'
                                        % (command, status, stderr.read()))
            outputs.append(text)
        return outputs
    finally:
        client.close()
