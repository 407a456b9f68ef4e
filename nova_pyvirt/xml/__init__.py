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

"""A lossless, declarative object model of libvirt's XML documents.

``parse(text)`` returns the typed object for a document's root element
(domain, capabilities, domainCapabilities, cpu, secret, pool, volume, or a
single device such as ``<disk>``); every object has ``to_xml()``.  See
:mod:`nova_pyvirt.xml.fields` for how fields are declared.
"""

from nova_pyvirt.xml._tree import parse_element
from nova_pyvirt.xml.capabilities import Capabilities  # noqa: F401
from nova_pyvirt.xml.capabilities import DomainCapabilities  # noqa: F401
from nova_pyvirt.xml.cpudef import CPU  # noqa: F401
from nova_pyvirt.xml import devices
from nova_pyvirt.xml.domain import Domain  # noqa: F401
from nova_pyvirt.xml.fields import canonical  # noqa: F401
from nova_pyvirt.xml.fields import XMLDocumentError
from nova_pyvirt.xml.fields import XMLError  # noqa: F401
from nova_pyvirt.xml.fields import XMLObject  # noqa: F401
from nova_pyvirt.xml.fields import XMLValueError  # noqa: F401
from nova_pyvirt.xml.secret import Secret  # noqa: F401
from nova_pyvirt.xml.storage_pool import StoragePool  # noqa: F401
from nova_pyvirt.xml.storage_pool import StorageVolume  # noqa: F401

# Each root element's class: the documents, and the devices on their own.
DOCUMENT_CLASSES = dict(devices.DEVICE_CLASSES, **{cls.TAG: cls for cls in (
    Domain, Capabilities, DomainCapabilities, CPU, Secret, StoragePool,
    StorageVolume)})


def parse(text):
    """Parse a libvirt XML document into its typed object.

    :raises XMLDocumentError: for malformed XML or an unknown root element.
    """
    element = parse_element(text)
    if element.tag not in DOCUMENT_CLASSES:
        raise XMLDocumentError('unsupported document root <%s>; expected one '
                               'of %s' % (element.tag,
                                          ', '.join(sorted(DOCUMENT_CLASSES))))
    return DOCUMENT_CLASSES[element.tag].wrap_document(element)
