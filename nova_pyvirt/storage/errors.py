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

"""Errors of the image cache and disk backends.

Refusals of an image use nova's own :class:`nova.exception.ImageUnacceptable`
and an undersized flavor disk nova's
:class:`nova.exception.FlavorDiskSmallerThanImage`, which nova-compute
already handles; these classes cover the rest.
"""

from nova import exception
from nova.i18n import _


class ImageDownloadFailed(exception.NovaException):
    msg_fmt = _("Image %(image_id)s could not be downloaded into the image "
                "cache: %(reason)s")


class DiskCreationFailed(exception.NovaException):
    msg_fmt = _("Could not create the %(kind)s disk %(path)s: %(reason)s")


class DiskExists(DiskCreationFailed):
    msg_fmt = _("Could not create the %(kind)s disk %(path)s: the file "
                "already exists and is left untouched")
