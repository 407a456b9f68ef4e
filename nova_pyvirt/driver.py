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

"""The nova compute driver class, ``PyVirtDriver``.

The driver is deliberately thin: one method per ``ComputeDriver`` call that
delegates to the guest-design, storage, host and migration modules.
"""

from nova.virt import driver

# Importing the options module registers the [pyvirt] group on nova's CONF,
# so it exists whenever nova loads this driver.
import nova_pyvirt.conf  # noqa: F401


class PyVirtDriver(driver.ComputeDriver):
    """Compute driver for libvirt/QEMU (KVM or TCG).

    Only construction exists so far. The lifecycle methods (``init_host``,
    ``spawn``, ``destroy``, ``reboot``, migration, volume attach and so on)
    are added by the driver work; until then the ``ComputeDriver`` base
    implementations apply, most of which raise ``NotImplementedError``.
    """

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
