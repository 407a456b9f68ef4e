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

"""hypothesis settings of the property tests, one profile per kind of run.

``HYPOTHESIS_PROFILE`` selects the profile: ``suite`` (the default, what
the test suite runs), ``nightly`` (``tox -e fuzz``) or ``dev`` (a quick
look while writing a test). Importing this module loads the profile.

No example database: a failure found is pasted into its test as an
explicit ``@example``, which every run then replays, so runs do not depend
on files left by earlier ones.
"""

import os

import hypothesis

PROFILE_ENV = 'HYPOTHESIS_PROFILE'
DEFAULT_PROFILE = 'suite'

_COMMON = dict(
    # Defining a domain takes libvirt some milliseconds, and designing a
    # guest of hundreds of vCPUs with a topology takes nova seconds.
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow,
                           hypothesis.HealthCheck.data_too_large],
)

hypothesis.settings.register_profile('suite', max_examples=500, **_COMMON)
hypothesis.settings.register_profile('nightly', max_examples=20000,
                                     **_COMMON)
hypothesis.settings.register_profile('dev', max_examples=50, **_COMMON)


def active_profile():
    """The name of the profile this process runs with."""
    return os.environ.get(PROFILE_ENV, DEFAULT_PROFILE)


hypothesis.settings.load_profile(active_profile())


def max_examples():
    """The examples each property test runs in the loaded profile."""
    return hypothesis.settings().max_examples
