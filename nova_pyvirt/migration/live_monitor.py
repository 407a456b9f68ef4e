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

"""Watching a running live migration: progress, downtime, timeouts.

:class:`LiveMigrationJob` is one migration in flight on the source: the
libvirt call runs in a thread of its own and the caller's thread polls the
job statistics until that call returns. While it polls it

* records progress: the migration's ``memory_*``/``disk_*`` counters and
  the instance's ``progress``, saved at most once per
  ``live_migration_progress_interval`` (the statistics are read more often);
* raises the allowed pause step by step (:func:`downtime_steps`), as nova's
  libvirt driver does, so a guest that dirties memory quickly still gets
  across;
* takes the timeout action (abort, or force completion) once the migration
  ran longer than its completion timeout;
* acts on requests from other threads: force completion (switch to
  post-copy, or pause the guest when post-copy is not permitted).

Abort is not queued here: ``abortJob`` is safe from any thread and is
called directly.
"""

import threading
import time

import libvirt
from oslo_log import log as logging
from oslo_utils import units
from oslo_versionedobjects import exception as ovo_exception

LOG = logging.getLogger(__name__)

#: Seconds between two reads of the job statistics.
POLL_INTERVAL = 0.5

POST_COPY_STATUS = 'running (post-copy)'


def downtime_steps(max_downtime, steps, delay_per_gib, data_gib):
    """``[(after_seconds, downtime_ms), ...]``: the allowed pause over time.

    The first step allows ``max_downtime / steps`` at once, the last the
    full ``max_downtime``; the steps are ``delay_per_gib`` seconds per GiB
    of data apart (at least one second).
    """
    delay = max(1, int(delay_per_gib * max(data_gib, 1)))
    base = max_downtime / steps
    offset = (max_downtime - base) / steps
    return [(delay * i, int(base + offset * i)) for i in range(steps + 1)]


def data_gib(memory_bytes, disk_bytes):
    return max(1.0, float(memory_bytes + disk_bytes) / units.Gi)


def remaining_percent(stats):
    """Per cent of the data still to copy (100 when nothing is known)."""
    total = stats.get('data_total') or (
        stats.get('memory_total', 0) + stats.get('disk_total', 0))
    remaining = stats.get('data_remaining')
    if remaining is None:
        remaining = (stats.get('memory_remaining', 0) +
                     stats.get('disk_remaining', 0))
    if not total:
        return 100
    return max(0, min(100, int(remaining * 100 / total)))


class LiveMigrationJob(object):
    """One migration in flight; see the module docstring.

    :param guest: :class:`nova_pyvirt.hypervisor.guest.Guest` on the source.
    :param start: called with no arguments in the migration thread; it runs
        the migration and returns when it ended (raises when it failed).
    :param settings: the ``[pyvirt]`` group (read at each poll: the timeout
        options are mutable).
    :param completed_stats: returns the statistics libvirt sent when the
        job completed (``{}`` if none): the final record's counters when
        the migration ended before any poll saw them.
    """

    def __init__(self, guest, instance, migration, settings, data_bytes,
                 clock=time.monotonic, sleep=time.sleep,
                 completed_stats=dict):
        self.guest = guest
        self.completed_stats = completed_stats
        self.instance = instance
        self.migration = migration
        self.settings = settings
        self.data_bytes = data_bytes
        self.clock = clock
        self.sleep = sleep
        self.error = None
        self.aborted = False
        self.paused_guest = False
        self.post_copy = False
        self.timed_out = False
        self._force = threading.Event()
        self._done = threading.Event()
        self._last_save = None
        self._latest = {}

    # -- requests from other threads ---------------------------------------

    def request_force_complete(self):
        self._force.set()

    def abort(self):
        """Cancel the migration (the guest stays on the source)."""
        if self.post_copy:
            # The guest already runs on the destination: cancelling now
            # would lose it.
            raise libvirt.libvirtError(
                'a migration in post-copy cannot be aborted')
        self.aborted = True
        self.guest.abort_job()

    # -- running ----------------------------------------------------------

    def run(self, start):
        """Run ``start`` in a thread and monitor until it returns.

        Returns normally when the migration completed; re-raises the
        migration's error otherwise.
        """
        thread = threading.Thread(target=self._migrate, args=(start,),
                                  name='live-migration-%s' %
                                  self.instance.uuid, daemon=True)
        started = self.clock()
        thread.start()
        downtime = None
        steps = self._downtime_steps()
        while not self._done.wait(0):
            elapsed = self.clock() - started
            try:
                stats = self.guest.job_stats()
            except libvirt.libvirtError as exc:
                LOG.debug('job statistics of %s unavailable: %s',
                          self.instance.uuid, exc)
                stats = {}
            if stats.get('type', libvirt.VIR_DOMAIN_JOB_NONE) != \
                    libvirt.VIR_DOMAIN_JOB_NONE:
                self._record(stats)
            downtime = self._update_downtime(downtime, steps, elapsed)
            if self._force.is_set():
                self._force.clear()
                self._force_complete()
            elif self._timeout_passed(elapsed):
                self._timeout_action()
            self._done.wait(POLL_INTERVAL)
        thread.join()
        if self.error is not None:
            raise self.error
        # Done: nothing remains, whatever the last poll saw. A migration
        # that ended between two polls (or before the first) left its
        # counters only in libvirt's job-completed event.
        final = dict(self._latest) or self.completed_stats()
        for kind in ('memory', 'disk', 'data'):
            if kind + '_total' in final:
                final[kind + '_processed'] = final[kind + '_total']
            final[kind + '_remaining'] = 0
        final.setdefault('data_total', 1)
        self._record(final, force=True)

    def _migrate(self, start):
        try:
            start()
        except Exception as exc:
            self.error = exc
        finally:
            self._done.set()

    # -- progress ----------------------------------------------------------

    def _record(self, stats, force=False):
        # The newest counters are kept even when not saved: the final
        # save after completion reports the totals libvirt last gave.
        if stats.get('memory_total') or stats.get('disk_total'):
            self._latest = dict(stats)
        now = self.clock()
        interval = self.settings.live_migration_progress_interval
        if not force and self._last_save is not None and \
                now - self._last_save < interval:
            return
        self._last_save = now
        migration = self.migration
        for field in ('memory_total', 'memory_processed', 'memory_remaining',
                      'disk_total', 'disk_processed', 'disk_remaining'):
            if field in stats:
                value = stats[field]
                if not value and not force:
                    # nova 34's API schema of a running migration
                    # (GET /servers/{id}/migrations/{id}) allows null or a
                    # count of at least 1, and fails the request on a 0
                    # (a block migration's disks are often done before its
                    # memory): "nothing" is shown as unknown until the end.
                    value = None
                setattr(migration, field, value)
        self.instance.progress = 100 - remaining_percent(stats)
        for obj in (migration, self.instance):
            try:
                obj.save()
            except ovo_exception.OrphanedObjectError:
                pass   # objects outside nova (tools, tests): nothing to save
            except Exception as exc:
                # Progress is for people; a database hiccup must not stop
                # a migration that is going fine.
                LOG.warning('could not record migration progress of %s: '
                            '%s', self.instance.uuid, exc)

    # -- downtime ----------------------------------------------------------

    def _downtime_steps(self):
        s = self.settings
        gib = float(self.data_bytes) / units.Gi
        return downtime_steps(s.live_migration_downtime,
                              s.live_migration_downtime_steps,
                              s.live_migration_downtime_delay, gib)

    def _update_downtime(self, current, steps, elapsed):
        wanted = None
        for after, downtime in steps:
            if elapsed >= after:
                wanted = downtime
        if wanted is None or wanted == current:
            return current
        try:
            self.guest.migrate_set_max_downtime(wanted)
        except libvirt.libvirtError as exc:
            # The job may just have ended; the next poll sees it.
            LOG.debug('cannot set the downtime of %s to %d ms: %s',
                      self.instance.uuid, wanted, exc)
            return current
        LOG.debug('allowed downtime of %s is now %d ms', self.instance.uuid,
                  wanted)
        return wanted

    # -- timeout and force complete ----------------------------------------

    def _timeout_passed(self, elapsed):
        if self.post_copy or self.paused_guest or self.timed_out:
            return False
        per_gib = self.settings.live_migration_completion_timeout
        if not per_gib:
            return False
        limit = per_gib * data_gib(0, self.data_bytes)
        return elapsed > limit

    def _timeout_action(self):
        self.timed_out = True
        action = self.settings.live_migration_timeout_action
        LOG.warning('live migration of %s did not complete in time; '
                    'taking the action %s', self.instance.uuid, action)
        if action == 'force_complete':
            self._force_complete()
        else:
            try:
                self.abort()
            except libvirt.libvirtError as exc:
                LOG.error('could not abort the live migration of %s: %s',
                          self.instance.uuid, exc)

    def _force_complete(self):
        if self.post_copy or self.paused_guest:
            return
        if self.settings.live_migration_permit_post_copy:
            try:
                self.guest.migrate_start_post_copy()
            except libvirt.libvirtError as exc:
                LOG.warning('could not switch the migration of %s to '
                            'post-copy: %s; pausing the guest instead',
                            self.instance.uuid, exc)
            else:
                LOG.info('live migration of %s switched to post-copy',
                         self.instance.uuid)
                self.post_copy = True
                self._set_status(POST_COPY_STATUS)
                return
        try:
            # A paused guest dirties no memory: what is left is copied and
            # the migration completes. The pause is undone on the
            # destination (libvirt resumes the guest there) or, if the
            # migration fails, by the rollback on the source.
            self.guest.pause()
        except libvirt.libvirtError as exc:
            LOG.warning('could not pause %s to complete its migration: %s',
                        self.instance.uuid, exc)
            return
        self.paused_guest = True
        LOG.info('paused %s so that its live migration completes',
                 self.instance.uuid)

    def _set_status(self, status):
        self.migration.status = status
        try:
            self.migration.save()
        except ovo_exception.OrphanedObjectError:
            pass
        except Exception as exc:
            LOG.warning('could not save the status of the migration of %s: '
                        '%s', self.instance.uuid, exc)
