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

"""Errors the driver raises, built on nova's so nova reports them as such."""

from nova import exception
from nova.i18n import _


#: Longest value an error message shows in full; longer ones are clipped
#: (a 100,000-character extra spec should not become a 100 kB fault).
SHOWN_VALUE_CHARS = 80


class _Shown(str):
    """A string value as an error shows it: escaped, and clipped if long.

    ``%r`` gives its quoted form, ``%s`` the bare text when it is
    printable; a clipped value ends in ``...`` and its full length.
    """

    def __new__(cls, value):
        clipped = value[:SHOWN_VALUE_CHARS]
        quoted = repr(clipped)
        bare = clipped if clipped.isprintable() else quoted
        if len(value) > SHOWN_VALUE_CHARS:
            tail = '... (%d characters)' % len(value)
            quoted, bare = quoted + tail, bare + tail
        self = super().__new__(cls, quoted)
        self.bare = bare
        return self

    def __str__(self):
        return self.bare

    def __repr__(self):
        return str.__str__(self)


def shown(value):
    """``value`` made safe for a one-line message (strings only)."""
    if isinstance(value, str) and not isinstance(value, _Shown) and (
            len(value) > SHOWN_VALUE_CHARS or not value.isprintable()):
        return _Shown(value)
    return value


class InvalidGuestInput(exception.Invalid):
    """An input of guest design that the host cannot turn into a guest.

    The driver's validation error: every refusal of guest design derives
    from it, names where the input came from (flavor, extra spec, image
    property, option, instance, device), its key and value, and says what
    would be accepted. It is raised before anything is created.
    """

    msg_fmt = _("%(source)s %(name)s=%(value)r is invalid: %(reason)s")

    def __init__(self, message=None, **kwargs):
        # Every input a message quotes, escaped and clipped; the reason is
        # the driver's own words.
        kwargs = {key: value if key == 'reason' else shown(value)
                  for key, value in kwargs.items()}
        super().__init__(message, **kwargs)


class InvalidFlavor(InvalidGuestInput):
    """A flavor field (vCPUs, memory, disk sizes, name)."""

    msg_fmt = _("Flavor %(name)s=%(value)r is invalid: %(reason)s")


class InvalidImageProperty(InvalidGuestInput):
    msg_fmt = _("Image property %(name)s=%(value)r is invalid: %(reason)s")


class InvalidFlavorExtraSpec(InvalidGuestInput):
    msg_fmt = _("Flavor extra spec %(name)s=%(value)r is invalid: "
                "%(reason)s")


class LibvirtConnectionFailed(exception.HypervisorUnavailable):
    """The libvirt connection cannot be opened (at start or reconnecting).

    Names the URI (any password in it replaced), the scheme that
    authenticates it (``tls``, ``sasl``, ``ssh``, ...) and libvirt's error
    with what was missing, so that a wrong password or a missing
    certificate reads as such at ``init_host``.
    """

    msg_fmt = _("Cannot connect to libvirt at %(uri)s (auth scheme "
                "%(scheme)s): %(error)s")


class InvalidInstanceAttribute(InvalidGuestInput):
    """A field of the instance that the domain carries (name, owner...)."""

    msg_fmt = _("Instance %(name)s=%(value)r is invalid: %(reason)s")


class InvalidGuestDevice(InvalidGuestInput):
    """A field of one of the guest's volumes, local disks or ports."""

    msg_fmt = _("%(device)s: %(name)s=%(value)r is invalid: %(reason)s")


class InvalidHostConfiguration(InvalidGuestInput,
                               exception.InvalidConfiguration):
    """An option the host cannot honour; raised at startup or by design.

    ``group`` is the option's group (``pyvirt`` unless given).
    """

    msg_fmt = _("[%(group)s] %(option)s = %(value)s: %(reason)s")

    def __init__(self, message=None, group='pyvirt', **kwargs):
        super().__init__(message, group=group, **kwargs)


class UnsupportedVifType(InvalidGuestInput,
                         exception.VirtualInterfacePlugException):
    """A port bound with a ``vif_type`` this driver cannot plug.

    Raised before anything is plugged or written, by guest design and by
    the network package alike, so the fault names the port and its type.
    A plug exception for nova: at startup nova-compute puts an instance
    whose port is refused (``binding_failed`` in its cache) in ERROR
    instead of giving up on the host's other instances.
    """

    msg_fmt = _("Port %(port_id)s has vif_type %(vif_type)s, which this "
                "driver cannot plug (supported: %(supported)s)")


class VifPlugTimeout(exception.BuildAbortException,
                     exception.VirtualInterfaceCreateException):
    """Neutron did not report the ports plugged in time.

    Spawn, or a revert of a migration, fails.

    Also a :class:`~nova.exception.BuildAbortException`: nova's compute
    manager records that one's own message as the server's fault (and does
    not reschedule), where a bare ``VirtualInterfaceCreateException``
    becomes "Failed to allocate the network(s), not rescheduling.", which
    names no port.
    """

    msg_fmt = _("Neutron did not report port(s) %(ports)s of instance "
                "%(instance_uuid)s plugged within %(timeout)d s "
                "([DEFAULT] vif_plugging_timeout)")


class VifPlugFailed(exception.BuildAbortException,
                    exception.VirtualInterfaceCreateException):
    """Neutron reported a port's plugging failed.

    Spawn, or a revert of a migration, fails.

    A :class:`~nova.exception.BuildAbortException` for the same reason as
    :class:`VifPlugTimeout`: the fault then names the port.
    """

    msg_fmt = _("Neutron reported %(event)s failed for instance "
                "%(instance_uuid)s")


class ConfigDriveBuildFailed(exception.NovaException):
    """nova's config drive builder failed (the spawn fails).

    Names the command and the option that chooses it, with the command's
    own error, so an operator sees at once which tool is missing or
    broken on the host. Not a build abort: another host may have it.
    """

    msg_fmt = _("Could not build the config drive of instance "
                "%(instance_uuid)s (%(format)s, with %(command)s from "
                "%(option)s): %(reason)s")


class FileInjectionNotSupported(exception.BuildAbortException):
    """Files to inject, but no config drive to carry them.

    This driver never writes into an instance's disk image (nor does
    nova's libvirt driver by default): the files would be silently lost.
    """

    msg_fmt = _("Build of instance %(instance_uuid)s aborted: "
                "%(reason)s")
