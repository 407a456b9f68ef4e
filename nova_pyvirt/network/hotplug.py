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

"""Adding a port to an existing guest, and taking one away.

Attach plugs the port on the host first, then adds its ``<interface>``
(designed by the same code as a new guest's, so both look alike) to the
guest: to the running guest and its definition when it runs, to the
definition only when it is stopped. A failure unplugs the port again and
is reported as nova's ``InterfaceAttachFailed`` naming the port.

Detach finds the guest's NIC by the port's MAC, asks the running guest to
let go of it and waits for libvirt's device-removed event (or the NIC
gone from the live definition), as volume detach does, removes it from
the persistent definition, and unplugs the port last (libvirt must have
let go of the tap before os-vif removes it, as in nova's libvirt driver).
A port the guest does not have is logged and unplugged, as nova's libvirt
driver does, so that nova can release it.

The guest is the hypervisor package's ``Guest``, handed in by the driver.
"""

import time

from oslo_log import log as logging
from oslo_utils import excutils

from nova import exception

from nova_pyvirt.design import peripherals
from nova_pyvirt.network import vifs as network_vifs

LOG = logging.getLogger(__name__)


class Hotplug(object):
    """Attaches and detaches ports of guests on this host."""

    def __init__(self, conf, host, vifs):
        self.conf = conf
        self.host = host
        self.vifs = vifs

    def attach(self, guest, instance, image_meta, vif, domain_caps=None):
        """Plug ``vif`` and add its NIC to ``guest``; returns the NIC.

        :raises nova.exception.InterfaceAttachFailed: naming the port;
            the port is unplugged again (nothing is left of the attempt).
        """
        pid = network_vifs.port_id(vif)
        try:
            nic = peripherals.interfaces(self.conf, instance.flavor,
                                         image_meta, [vif], domain_caps)[0]
            live = guest.is_active()
        except Exception as exc:
            raise self._attach_failed(instance, pid, exc)
        try:
            self.vifs.plug(instance, vif, image_meta)
        except Exception as exc:
            # A port half plugged (an OVS port without its bridge) is
            # taken away again; unplugging what is not there is harmless.
            self._unplug_quietly(instance, vif)
            raise self._attach_failed(instance, pid, exc)
        try:
            guest.attach_device(nic.to_xml(), live=live)
        except Exception as exc:
            LOG.error('adding port %s to %s failed; unplugging it', pid,
                      instance.uuid)
            self._unplug_quietly(instance, vif)
            raise self._attach_failed(instance, pid, exc)
        LOG.info('port %s attached to %s (%s)', pid, instance.uuid,
                 'live and persistent' if live else 'persistent')
        return nic

    @staticmethod
    def _attach_failed(instance, pid, exc):
        reason = getattr(exc, 'get_error_message', lambda: None)() or \
            str(exc)
        return exception.InterfaceAttachFailed(
            message='Failed to attach port %s to instance %s: %s' % (
                pid, instance.uuid, reason),
            instance_uuid=instance.uuid)

    def _unplug_quietly(self, instance, vif):
        try:
            self.vifs.unplug(instance, vif)
        except Exception:
            LOG.exception('could not unplug port %s of %s',
                          network_vifs.port_id(vif), instance.uuid)

    @staticmethod
    def find(guest, mac, live=True):
        """The guest's NIC with MAC ``mac`` (None if it has none)."""
        definition = guest.definition() if live else guest.inactive()
        mac = (mac or '').lower()
        return next((nic for nic in definition.interfaces
                     if (nic.mac_address or '').lower() == mac), None)

    def detach(self, guest, instance, vif, timeout):
        """Remove the port's NIC from ``guest``, then unplug the port.

        :raises nova.exception.DeviceDetachFailed: the running guest did
            not let go of the NIC within ``timeout`` seconds (the port is
            unplugged all the same, as nova's libvirt driver does).
        """
        mac = vif.get('address')
        pid = network_vifs.port_id(vif)
        try:
            found = False
            if guest.is_active():
                nic = self.find(guest, mac)
                if nic is not None:
                    found = True
                    guest.detach_device(nic.to_xml(), live=True)
                    self._wait_removed(guest, nic, pid, timeout)
            nic = self.find(guest, mac, live=False)
            if nic is not None:
                found = True
                guest.detach_device(nic.to_xml(), live=False)
            if not found:
                LOG.warning('port %s (MAC %s) is not on instance %s: '
                            'nothing to detach, unplugging it', pid, mac,
                            instance.uuid)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._unplug_quietly(instance, vif)
        self.vifs.unplug(instance, vif)
        LOG.info('port %s detached from %s', pid, instance.uuid)

    def _wait_removed(self, guest, nic, pid, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if nic.alias and self.host.device_removed(guest.uuid,
                                                      nic.alias):
                return
            if self.find(guest, nic.mac_address) is None:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        raise exception.DeviceDetachFailed(
            device=nic.target_dev or nic.mac_address,
            reason='the guest did not release the NIC of port %s within %d '
                   's ([pyvirt] live_device_detach_timeout); it is still '
                   'attached' % (pid, timeout))
