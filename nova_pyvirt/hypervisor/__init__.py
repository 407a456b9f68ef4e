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

"""Everything that talks to libvirt.

:mod:`~nova_pyvirt.hypervisor.connection` opens connections with libvirt's
own credential lookup (``openAuth``) and shares embedded QEMU roots;
:mod:`~nova_pyvirt.hypervisor.host` owns a compute host's one connection,
reopens it when it is lost and answers questions about domains and the
host, with :mod:`~nova_pyvirt.hypervisor.lifecycle_events` translating
libvirt's events for nova and :mod:`~nova_pyvirt.hypervisor.concurrency`
supplying threads for nova's concurrency mode;
:mod:`~nova_pyvirt.hypervisor.host_facts` reads the capability documents
guest design is checked against; :mod:`~nova_pyvirt.hypervisor.guest`
acts on one domain (launch, power, devices, diagnostics).
"""
