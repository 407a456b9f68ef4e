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

"""What a compute host advertises to nova's scheduler and to placement.

:mod:`~nova_pyvirt.report.resources` turns the host's capacity and usage
into nova's resource dict, placement inventory and ``supported_instances``;
:mod:`~nova_pyvirt.report.traits` derives the provider's traits from the
host's capability documents; :mod:`~nova_pyvirt.report.host_summary`
gathers both, as nova-compute would send them, for ``nova-pyvirt
host-report``.
"""
