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

"""Building nova objects and configuration for guest design tests."""

import fixtures
from oslo_config import fixture as config_fixture

from nova.network import model as network_model
from nova import objects

from nova_pyvirt import conf as pyvirt_conf
from nova_pyvirt.design import request

objects.register_all()

UUID = '2e1ea3a6-2bd9-4b7c-9d0b-5d5d1f1f0a01'
VOLUME_ID = '5f4a2b1c-0d3e-4f5a-8b6c-7d8e9f0a1b2c'
PORT_ID = '5e4f6a7b-8c9d-4e0f-a1b2-c3d4e5f60718'
MAC = 'fa:16:3e:12:34:56'
TAP = ('tap' + PORT_ID)[:network_model.NIC_NAME_LEN]


def flavor(vcpus=2, memory_mb=512, root_gb=1, extra_specs=None, **kw):
    values = dict(name='m1.test', vcpus=vcpus, memory_mb=memory_mb,
                  root_gb=root_gb, ephemeral_gb=0, swap=0,
                  extra_specs=extra_specs or {})
    values.update(kw)
    return objects.Flavor(**values)


def instance(**kw):
    values = dict(uuid=UUID, id=7, display_name='vm1', user_id='user-1',
                  project_id='project-1', os_type=None, config_drive='',
                  launched_at=None,
                  info_cache=objects.InstanceInfoCache(
                      network_info=network_model.NetworkInfo()))
    values.update(kw)
    return objects.Instance(**values)


def image_meta(**props):
    return objects.ImageMeta.from_dict({'id': 'c0ffee00-0000-4000-8000-'
                                              '000000000001',
                                        'properties': props})


def vif(vif_type='ovs', hybrid=False, mtu=1450, datapath_type=None, **kw):
    """A Neutron port as nova hands it over, bound as ML2/OVS binds.

    ``datapath_type`` is the OVS agent's (``netdev`` for the userspace
    datapath); nova's Neutron API sets ``delegate_create``.
    """
    network = network_model.Network(
        id='9b0c1d2e-3f40-4152-8637-48596a7b8c9d', bridge='br-int',
        label='private',
        meta={'mtu': mtu} if mtu else {})
    details = {network_model.VIF_DETAILS_PORT_FILTER: True}
    if vif_type == 'ovs':
        details[network_model.VIF_DETAILS_OVS_HYBRID_PLUG] = hybrid
        if datapath_type:
            details[network_model.VIF_DETAILS_OVS_DATAPATH_TYPE] = \
                datapath_type
    values = dict(id=PORT_ID, address=MAC, network=network, type=vif_type,
                  details=details, devname=TAP, ovs_interfaceid=PORT_ID,
                  active=False, delegate_create=True)
    values.update(kw)
    return network_model.VIF(**values)


def guest_request(flavor_=None, image=None, instance_dir='/srv/i/vm1',
                  **kw):
    return request.GuestRequest(
        instance(), flavor_ or flavor(), image or image_meta(), instance_dir,
        local_disks=kw.pop('local_disks', [
            request.LocalDisk('disk', instance_dir + '/disk')]),
        console_log=kw.pop('console_log', instance_dir + '/console.log'),
        **kw)


class ConfFixture(fixtures.Fixture):
    """nova's CONF with the [pyvirt] group, reset after the test."""

    def _setUp(self):
        self.conf = pyvirt_conf.CONF
        self.fixture = self.useFixture(config_fixture.Config(self.conf))
        self.conf([], project='nova', default_config_files=[])
        self.addCleanup(self.conf.reset)

    def set(self, group='pyvirt', **values):
        """Override options of ``group`` (``'DEFAULT'`` for nova's)."""
        self.fixture.config(group=None if group == 'DEFAULT' else group,
                            **values)
