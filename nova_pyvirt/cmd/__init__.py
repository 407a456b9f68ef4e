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

"""Command line tools of nova-pyvirt (the ``nova-pyvirt`` console script)."""

import warnings

# nova's libraries import eventlet (futurist does, at nova's import), and
# eventlet's import warns that eventlet is deprecated: a notice for the
# developers of nova, not for someone running a command, and it comes
# before the command's first line. Only that notice is ignored, by its
# text, before any command module imports nova; every other warning shows
# as Python's defaults say. (eventlet's own switch, EVENTLET_TESTS, is
# meant for eventlet's test suite.)
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated\.')
