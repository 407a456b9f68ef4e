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

"""Waiting for Neutron to report an instance's ports wired up.

A port is usable once its backend (the OVS agent, OVN) has configured the
switch for it; Neutron then sends nova ``network-vif-plugged`` for it. As
nova's libvirt driver does, spawn (and a revert of a migration, on the
source) registers for those events *before* it plugs the ports (an event
that came first would be dropped), starts the guest paused, and lets it
run only once every event came (or
``[DEFAULT] vif_plugging_timeout`` passed): a guest that runs before its
port is wired sends its DHCP requests into the void.

The waiting itself is nova's (``virtapi.wait_for_instance_event``); this
module decides which events to wait for and what a timeout or a failed
event means, from nova's ``[DEFAULT] vif_plugging_timeout`` and
``vif_plugging_is_fatal``.
"""

import contextlib

from oslo_log import log as logging

from nova import exception as nova_exception
from nova.network import model as network_model

from nova_pyvirt import exception

LOG = logging.getLogger(__name__)

VIF_PLUGGED = 'network-vif-plugged'


def expected_events(conf, network_info, can_pause):
    """``(name, port id)`` of each event to wait for ([]: do not wait).

    Only ports Neutron reports down (``active`` is False) will go up and
    send the event; a port already up, or whose state the cache does not
    know, will not, so it is not waited for. No waiting either when the
    guest cannot be started paused (``can_pause``: a QEMU guest that is
    to run now) or the timeout is 0 (the operator turned waiting off).
    """
    if not can_pause or not conf.vif_plugging_timeout:
        return []
    return [(VIF_PLUGGED, vif['id']) for vif in network_info or []
            if vif.get('active', True) is False and
            vif.get('vnic_type') != network_model.VNIC_TYPE_REMOTE_MANAGED]


@contextlib.contextmanager
def wait_for_plugged(virtapi, conf, instance, events):
    """Register for ``events``, run the body, then wait for them.

    With ``[DEFAULT] vif_plugging_is_fatal`` a timeout raises
    :class:`~nova_pyvirt.exception.VifPlugTimeout` and an event Neutron
    reports failed raises :class:`~nova_pyvirt.exception.VifPlugFailed`,
    each naming the ports; without it both are logged and the guest goes
    on (the operator chose a guest without network over no guest).
    """
    if not events:
        yield
        return

    def failed(event_name, instance_):
        LOG.error('Neutron reported failure on event %s for instance %s',
                  event_name, instance_.uuid)
        if conf.vif_plugging_is_fatal:
            raise exception.VifPlugFailed(event=event_name,
                                          instance_uuid=instance_.uuid)
        return True   # go on waiting for the other events

    ports = ', '.join(tag for _name, tag in events)
    try:
        with virtapi.wait_for_instance_event(
                instance, events, timeout=conf.vif_plugging_timeout,
                error_callback=failed):
            yield
    except nova_exception.InstanceEventTimeout:
        if conf.vif_plugging_is_fatal:
            raise exception.VifPlugTimeout(
                ports=ports, timeout=conf.vif_plugging_timeout,
                instance_uuid=instance.uuid)
        LOG.warning('Neutron did not report ports %s of %s plugged within '
                    '%d s; starting the guest anyway as '
                    '[DEFAULT] vif_plugging_is_fatal is False', ports,
                    instance.uuid, conf.vif_plugging_timeout)
