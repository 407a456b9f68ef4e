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

"""Instance ports on this host: Neutron's bindings plugged and unplugged.

nova hands the driver ``network_info`` (``nova.network.model`` VIFs, each
one Neutron port as bound to this host). This package plugs and unplugs
them on the host, through os-vif, the library nova and Neutron share for
that; it writes no XML (guest design turns the same VIFs into
``<interface>`` elements) and never talks to libvirt.
"""
