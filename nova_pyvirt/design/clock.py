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

"""Clock, timers and platform features (ACPI, APIC, Hyper-V).

Timer policies keep guest time sane when vCPUs are descheduled: the PIT
delivers late ticks late (``delay``), the RTC catches up, and the HPET is
off unless the image asks for it (``hw_time_hpet``), because guests that
prefer it lose time under load.  Windows keeps its clock in local time and
runs far better with Hyper-V enlightenments.
"""

from nova_pyvirt.xml import domain as dom_xml

X86 = ('i686', 'x86_64')
HYPERV_SPINLOCK_RETRIES = 8191


def is_windows(instance, image_meta):
    return (image_meta.properties.get('os_type') or
            getattr(instance, 'os_type', None)) == 'windows'


def guest_clock(arch, windows, image_meta):
    clock = dom_xml.Clock(offset='localtime' if windows else 'utc')
    if arch in X86:
        hpet = bool(image_meta.properties.get('hw_time_hpet', False))
        clock.timers.extend([
            dom_xml.Timer(name='pit', tickpolicy='delay'),
            dom_xml.Timer(name='rtc', tickpolicy='catchup'),
            dom_xml.Timer(name='hpet', present=hpet)])
    if windows:
        clock.timers.append(dom_xml.Timer(name='hypervclock', present=True))
    return clock


def guest_features(arch, windows):
    features = dom_xml.Features(acpi=True)
    if arch in X86:
        features.apic = True
    if windows:
        features.hyperv = dom_xml.HyperV(
            relaxed=True, vapic=True, spinlocks=True,
            spinlocks_retries=HYPERV_SPINLOCK_RETRIES, vpindex=True,
            runtime=True, synic=True, stimer=True, reset=True,
            frequencies=True, tlbflush=True, ipi=True)
    return features
