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

"""The driver's root operations, run by its own oslo.privsep daemon.

nova-compute runs as an unprivileged user. What the driver must do as root
is a function of this package decorated with
``@sys_admin_pctxt.entrypoint``; calling it from nova-compute sends the
call to a daemon started as root, the way nova starts its own
(``privsep-helper --privsep_context nova_pyvirt.privsep.sys_admin_pctxt``
through nova's root helper, or ``[pyvirt_sys_admin] helper_command``).

* :mod:`.volume_group`: lvm2 on the instance volume group, and loop devices
  over volumes where device-mapper is missing;
* :mod:`.block_device`: writing an image, a file system, swap or zeros
  onto a volume's block device;
* :mod:`.mounts`: unmounting an NFS export.

The rules every entrypoint follows:

* it builds its command line itself, from arguments it checks first
  (names by lvm2's rules, sizes as integers, device paths by shape and
  type); there is no entrypoint that runs a command it is given;
* commands run as argv lists (``processutils``), never through a shell,
  with ``no_new_privs`` set (:func:`._process.execute`), so that no
  program they start has more capabilities than the daemon kept;
* this package imports nothing else of ``nova_pyvirt``: the daemon imports
  only it, oslo and the standard library.

Mounting NFS exports is os-brick's, through os-brick's own privsep daemon
(``[privsep_osbrick]``); nova's daemon (``[nova_sys_admin]``) makes tap
devices and config drive images. See ``doc/source/privileges.rst``.

Capabilities
------------
The daemon runs as root with only :data:`CAPABILITIES`. A program run as
root normally gets every capability back when it starts; with
``no_new_privs`` it keeps at most the daemon's, so the list bounds the
commands as well:

``CAP_SYS_ADMIN``
    device-mapper's ioctls, through which lvm2 activates, resizes and
    removes volumes (the kernel refuses every one of them without it);
``CAP_IPC_LOCK``
    lvm2 locks its memory while it holds device-mapper devices suspended,
    so that it cannot wait on I/O to a device it suspended itself.

Nothing else is needed: the volume group's devices, lvm2's directories
under ``/etc/lvm`` and ``/run/lock/lvm`` and the loop devices belong to
root, and the cached images are world-readable. Measured on a volume group
on a loop device without device-mapper (where lvm2 only edits metadata),
every command works with no capability at all; the two above are what
device-mapper hosts add. Hosts without udev, where libdevmapper creates
the ``/dev/mapper`` nodes itself, also need ``CAP_MKNOD`` and
``CAP_CHOWN``: add them with ``[pyvirt_sys_admin] capabilities``.
"""

from oslo_privsep import capabilities
from oslo_privsep import priv_context

#: The capabilities the daemon keeps, and the most any command it runs
#: gets (see above).
CAPABILITIES = (capabilities.CAP_SYS_ADMIN, capabilities.CAP_IPC_LOCK)

#: The configuration section of the daemon's privsep options.
CONFIG_SECTION = 'pyvirt_sys_admin'

sys_admin_pctxt = priv_context.PrivContext(
    __name__,
    cfg_section=CONFIG_SECTION,
    pypath=__name__ + '.sys_admin_pctxt',
    capabilities=list(CAPABILITIES),
)
