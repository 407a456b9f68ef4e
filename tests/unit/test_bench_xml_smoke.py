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

"""bench/xml_bench.py still imports and its two builders still agree.

No timing here: the bench itself compares speed.
"""

import importlib.util
import os

from lxml import etree
from oslotest import base

_BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                      'bench', 'xml_bench.py')


def _load_bench():
    spec = importlib.util.spec_from_file_location('xml_bench', _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class XMLBenchSmokeTest(base.BaseTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bench = _load_bench()

    def test_both_builders_produce_the_twelve_device_guest(self):
        ours = etree.fromstring(self.bench.build_serialize_ours().encode())
        nova = etree.fromstring(self.bench.build_serialize_nova().encode())
        for root in (ours, nova):
            self.assertEqual('domain', root.tag)
            self.assertEqual(12, len(root.find('devices')))
        self.assertEqual([d.tag for d in ours.find('devices')],
                         [d.tag for d in nova.find('devices')])
        self.assertEqual(12, len(self.bench.build_ours().devices))
        self.assertEqual(12, len(self.bench.build_nova().devices))

    def test_both_readers_return_the_same_values(self):
        text = self.bench.build_serialize_ours()
        normalize = self.bench._normalize
        self.assertEqual(normalize(self.bench.parse_read_nova(text)),
                         normalize(self.bench.parse_read_ours(text)))
        self.assertEqual(normalize(self.bench.parse_core_nova(text)),
                         normalize(self.bench.parse_core_ours(text)))

    def test_model_gap_list_resolves(self):
        gaps = self.bench.model_gaps()
        self.assertLessEqual(len(gaps), len(self.bench.MODEL_GAPS))

    def test_timing_helper_runs(self):
        timings = self.bench.interleaved(
            [('a', len, ('x',)), ('b', len, ('yy',))], rounds=2,
            batch_seconds=0.001)
        self.assertEqual(['a', 'b'], [t.label for t in timings])
        self.assertTrue(all(len(t.samples) == 2 for t in timings))
