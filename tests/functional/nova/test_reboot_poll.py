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

"""nova-compute's rebooting-instances poll, with ``reboot_timeout`` set.

nova's periodic task ``_poll_rebooting_instances`` runs only when
``[DEFAULT] reboot_timeout`` is set; it hands the driver the instances of
the host that have been rebooting for longer. A driver without the method
makes every run log "Error during ComputeManager._poll_rebooting_instances".
The task runs here through oslo.service's periodic-task runner, as
nova-compute runs it, on an instance of this host that nova's database says
has been rebooting for twice the timeout.
"""

import datetime

from oslo_utils import fixture as utils_fixture
from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova.compute import task_states
from nova.compute import vm_states
from nova import context as nova_context
from nova import objects

from tests.functional.nova import base

REBOOT_TIMEOUT = 120
TASK = '_poll_rebooting_instances'


class RebootPollTest(base.PyVirtTestBase):

    def setUp(self):
        super().setUp()
        self.flags(reboot_timeout=REBOOT_TIMEOUT)
        self.manager = self.computes[self.COMPUTE_HOST].manager
        self.ctx = nova_context.get_admin_context()

    def _rebooting_instance(self):
        node = objects.ComputeNode.get_by_nodename(self.ctx, self.nodename)
        instance = objects.Instance(
            context=self.ctx, uuid=uuidutils.generate_uuid(),
            project_id='project', user_id='user',
            host=self.COMPUTE_HOST, node=self.nodename, compute_id=node.id,
            vm_state=vm_states.ACTIVE)
        instance.create()
        instance.task_state = task_states.REBOOTING
        instance.save()   # sets updated_at: the reboot's start
        return instance

    def _run_task_as_nova_compute_does(self):
        """The poll alone, through the periodic-task runner, due now."""
        tasks = [(name, task) for name, task in self.manager._periodic_tasks
                 if name == TASK]
        self.assertEqual(1, len(tasks))
        self.manager._periodic_tasks = tasks
        self.manager._periodic_last_run[TASK] = None
        self.manager.periodic_tasks(self.ctx, raise_on_error=False)

    def test_poll_logs_no_error_and_reaches_the_driver(self):
        instance = self._rebooting_instance()
        polled = []
        original = self.driver.poll_rebooting_instances

        def spy(timeout, instances):
            polled.append((timeout, [i.uuid for i in instances]))
            return original(timeout, instances)
        self.driver.poll_rebooting_instances = spy
        later = timeutils.utcnow() + datetime.timedelta(
            seconds=2 * REBOOT_TIMEOUT)
        self.useFixture(utils_fixture.TimeFixture(later))

        self._run_task_as_nova_compute_does()

        self.assertEqual([(REBOOT_TIMEOUT, [instance.uuid])], polled)
        log = self.stdlog.logger.output.splitlines()
        self.assertEqual([], [line for line in log
                              if TASK in line or 'NotImplemented' in line])
        # The instance is left as it was: the reboot is nova's to settle.
        instance.refresh()
        self.assertEqual(task_states.REBOOTING, instance.task_state)
