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

"""nova's view of libvirt's domain lifecycle events.

:func:`lifecycle_transition` maps libvirt's ``(event, detail)`` pairs to
nova's transitions, and :class:`StoppedEventDelay` holds STOPPED events
back so that a guest that reboots (STOPPED, then STARTED) is not powered
off by nova's power-state sync.
"""

import libvirt
from nova.virt import event as virtevent
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# A reboot of a guest by stopping and starting it, by nova or by libvirt,
# shows as STOPPED then STARTED.  Holding STOPPED back this long (as nova's
# libvirt driver does) keeps nova from powering off a rebooting guest.
STOPPED_EVENT_DELAY = 15.0

_TRANSITION_NAMES = {
    virtevent.EVENT_LIFECYCLE_STARTED: 'STARTED',
    virtevent.EVENT_LIFECYCLE_STOPPED: 'STOPPED',
    virtevent.EVENT_LIFECYCLE_PAUSED: 'PAUSED',
    virtevent.EVENT_LIFECYCLE_RESUMED: 'RESUMED',
    virtevent.EVENT_LIFECYCLE_SUSPENDED: 'SUSPENDED',
    virtevent.EVENT_LIFECYCLE_POSTCOPY_STARTED: 'POSTCOPY_STARTED',
    virtevent.EVENT_LIFECYCLE_MIGRATION_COMPLETED: 'MIGRATION_COMPLETED',
}


def lifecycle_transition(event, detail):
    """nova's transition for a libvirt lifecycle ``(event, detail)``.

    ``None`` for events nova does not track: DEFINED, UNDEFINED, CRASHED
    (a crashed guest is reported again as STOPPED or PAUSED by the action
    ``<on_crash>`` takes) and SHUTDOWN (the guest finished shutting down;
    the STOPPED that follows when QEMU exits is the one that counts).
    """
    if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
        if detail == libvirt.VIR_DOMAIN_EVENT_STARTED_WAKEUP:
            # Woken up from a power-management suspend.
            return virtevent.EVENT_LIFECYCLE_RESUMED
        return virtevent.EVENT_LIFECYCLE_STARTED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        return virtevent.EVENT_LIFECYCLE_STOPPED
    if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
        # Paused: CPUs stopped, QEMU still running.  Live migration, where
        # nova's driver tells a finished migration from a failed one, is
        # not supported by this driver, so a migration pause is a pause.
        if detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY:
            return virtevent.EVENT_LIFECYCLE_POSTCOPY_STARTED
        return virtevent.EVENT_LIFECYCLE_PAUSED
    if event == libvirt.VIR_DOMAIN_EVENT_RESUMED:
        return virtevent.EVENT_LIFECYCLE_RESUMED
    if event == libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED:
        # Suspended by the guest to memory (S3) or disk (S4).
        return virtevent.EVENT_LIFECYCLE_SUSPENDED
    return None


def transition_name(transition):
    return _TRANSITION_NAMES.get(transition, str(transition))


class StoppedEventDelay(object):
    """Holds STOPPED events back; a later event for the guest cancels them.

    Plain bookkeeping with no clock and no threads of its own: the caller
    passes the current time, which keeps it testable with a fake clock.
    Used by one thread only (the dispatcher).
    """

    def __init__(self, delay):
        self.delay = delay
        # uuid -> (deadline, event)
        self._pending = {}

    def add(self, event, now):
        """Take a new event; return the events to emit right away."""
        if self._pending.pop(event.uuid, None) is not None:
            LOG.debug('Dropped the pending STOPPED event of %s: %s '
                      'followed it', event.uuid,
                      transition_name(event.transition))
        if (event.transition == virtevent.EVENT_LIFECYCLE_STOPPED and
                self.delay > 0):
            self._pending[event.uuid] = (now + self.delay, event)
            return []
        return [event]

    def due(self, now):
        """Remove and return the held events whose delay has passed."""
        ready = [(deadline, uuid) for uuid, (deadline, _event)
                 in self._pending.items() if deadline <= now]
        return [self._pending.pop(uuid)[1] for _deadline, uuid
                in sorted(ready)]

    def next_deadline(self):
        """When the next held event becomes due (``None``: none held)."""
        if not self._pending:
            return None
        return min(deadline for deadline, _event in self._pending.values())

    def pending(self):
        return sorted(self._pending)

    def clear(self):
        self._pending.clear()
