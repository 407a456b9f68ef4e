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

"""A fixture the machine cannot run skips its test, with the reason."""

import testtools

from tests.fixtures import machine


class _Needs(machine.MachineFixture):

    def __init__(self, reason):
        super().__init__()
        self.reason = reason
        self.set_up = False

    def missing_capability(self):
        return self.reason

    def _setUp(self):
        self.set_up = True


class MachineFixtureTest(testtools.TestCase):

    def run_with(self, fixture):
        class Case(testtools.TestCase):
            def test(inner):
                inner.useFixture(fixture)
        result = testtools.TestResult()
        Case('test').run(result)
        return result

    def test_missing_capability_skips_with_its_reason(self):
        fixture = _Needs('no /dev/net/tun: tap devices cannot be created')
        result = self.run_with(fixture)
        self.assertEqual([], result.errors)
        self.assertEqual(['no /dev/net/tun: tap devices cannot be created'],
                         list(result.skip_reasons))
        self.assertFalse(fixture.set_up)

    def test_capable_machine_sets_up(self):
        fixture = _Needs(None)
        result = self.run_with(fixture)
        self.assertTrue(result.wasSuccessful())
        self.assertEqual({}, result.skip_reasons)
        self.assertTrue(fixture.set_up)
