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

"""Plugging an instance's ports: os-vif for Open vSwitch, a tap otherwise.

:class:`Vifs` owns the host side of every port of an instance:

* ``vif_type=ovs``: nova's own converter (``nova.network.os_vif_util``)
  turns the VIF into an os-vif object and os-vif's ``ovs`` plugin plugs
  it. With ``details['ovs_hybrid_plug']`` that is a ``VIFBridge`` (a Linux
  bridge ``qbr`` joined to the integration bridge by the ``qvb``/``qvo``
  veth pair, where iptables security groups apply); without it a
  ``VIFOpenVSwitch`` (the tap goes straight onto the integration bridge:
  libvirt adds it there when the guest starts, as the ``<virtualport>``
  says, and os-vif creates the port beforehand when Neutron delegated
  that to nova with ``delegate_create``, as nova's Neutron API does).
* ``vif_type=tap``: nova's converter has no os-vif object for it (nova's
  libvirt driver plugs it itself): the tap device is created here, before
  the guest starts, since its ``<interface>`` tells libvirt to use an
  existing device (``managed='no'``); the port's backend finds it by name.

Every root operation goes through a privsep daemon (os-vif's for OVS,
nova's for the tap device, as in nova's libvirt driver), never a shell.
"""

import threading

import os_vif
from oslo_log import log as logging
from oslo_utils import excutils

from nova.network import model as network_model
from nova.network import os_vif_util
import nova.privsep.linux_net
from nova.virt import hardware

from nova_pyvirt import exception

LOG = logging.getLogger(__name__)

SUPPORTED_VIF_TYPES = (network_model.VIF_TYPE_OVS, network_model.VIF_TYPE_TAP)

_init_lock = threading.Lock()
_initialized = False


def initialize_os_vif():
    """Load os-vif's plugins, once per process.

    os-vif keeps its plugins in a module global: initializing it again
    would reload every plugin (and its OVSDB connection) for nothing.
    """
    global _initialized
    with _init_lock:
        if not _initialized:
            os_vif.initialize()
            _initialized = True


def port_id(vif):
    return vif.get('id')


def check_supported(network_info):
    """Refuse the first port this driver cannot plug, naming it.

    Called before anything is plugged or defined, so a refused port
    leaves nothing behind.
    """
    for vif in network_info or []:
        if vif.get('type') not in SUPPORTED_VIF_TYPES:
            raise exception.UnsupportedVifType(
                port_id=port_id(vif), vif_type=vif.get('type'),
                supported=', '.join(SUPPORTED_VIF_TYPES))


class Vifs(object):
    """Plugs and unplugs the ports of instances on this host."""

    def plug_all(self, instance, network_info, image_meta=None,
                 rollback=True):
        """Plug every port; on a failure unplug those plugged, re-raise.

        Returns the VIFs plugged, in order. Without ``rollback`` a failure
        leaves the ports plugged before it (re-plugging an existing
        instance's ports must not take away those it still has).
        """
        network_info = list(network_info or [])
        check_supported(network_info)
        plugged = []
        try:
            for vif in network_info:
                self.plug(instance, vif, image_meta)
                plugged.append(vif)
        except Exception:
            with excutils.save_and_reraise_exception():
                if rollback:
                    LOG.error('plugging the ports of %s failed; unplugging '
                              'the %d already plugged', instance.uuid,
                              len(plugged))
                    self.unplug_all(instance, reversed(plugged))
        return plugged

    def unplug_all(self, instance, network_info):
        """Unplug every port, going on past failures (logged).

        Unplugging serves cleanup paths (delete, a failed spawn) that must
        remove as much as they can: one port that will not go must not
        keep the others plugged.
        """
        for vif in network_info or []:
            try:
                self.unplug(instance, vif)
            except Exception:
                LOG.exception('could not unplug port %s of %s',
                              port_id(vif), instance.uuid)

    def plug(self, instance, vif, image_meta=None):
        check_supported([vif])
        LOG.debug('plugging port %s (%s) of %s', port_id(vif), vif['type'],
                  instance.uuid)
        if vif['type'] == network_model.VIF_TYPE_TAP:
            multiqueue = False
            if image_meta is not None:
                multiqueue = hardware.get_vif_multiqueue_constraint(
                    instance.flavor, image_meta)
            nova.privsep.linux_net.create_tap_dev(
                vif['devname'], vif['address'], multiqueue=multiqueue)
            return
        initialize_os_vif()
        os_vif.plug(os_vif_util.nova_to_osvif_vif(vif),
                    os_vif_util.nova_to_osvif_instance(instance))

    def unplug(self, instance, vif):
        if vif.get('type') not in SUPPORTED_VIF_TYPES:
            # Never plugged by this driver (spawn refused it): nothing to
            # remove, and cleanup must not fail on it.
            LOG.debug('port %s has vif_type %s: nothing to unplug',
                      port_id(vif), vif.get('type'))
            return
        LOG.debug('unplugging port %s (%s) of %s', port_id(vif),
                  vif['type'], instance.uuid)
        if vif['type'] == network_model.VIF_TYPE_TAP:
            nova.privsep.linux_net.delete_net_dev(vif['devname'])
            return
        initialize_os_vif()
        os_vif.unplug(os_vif_util.nova_to_osvif_vif(vif),
                      os_vif_util.nova_to_osvif_instance(instance))
