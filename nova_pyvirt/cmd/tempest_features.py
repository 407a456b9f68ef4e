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

"""``nova-pyvirt tempest-features``: tempest's view of the driver.

Prints one ``option value`` line per option of tempest's
``[compute-feature-enabled]`` section that depends on the compute driver,
with ``True`` or ``False`` as :class:`~nova_pyvirt.driver.PyVirtDriver`
supports the feature. The DevStack plugin writes them into tempest.conf in
its ``test-config`` phase, so that tempest skips what the driver lacks.

Support is read from the driver class, not listed by hand: a feature is
supported when the driver overrides every :class:`nova.virt.driver.
ComputeDriver` method nova calls for it (the base class raises
``NotImplementedError``) and claims every capability nova checks first.
Options whose value depends on the deployment as well (a console proxy
service, a second compute host) are printed only when the driver lacks the
feature; otherwise DevStack's value stands.
"""

import collections

from nova_pyvirt.cmd import main

#: A tempest option: the ComputeDriver methods and the capabilities it
#: needs, and whether it depends on the deployment too (then it is printed
#: only as False).
Feature = collections.namedtuple('Feature',
                                 'methods capabilities deployment')

_MIGRATE = ('migrate_disk_and_power_off', 'finish_migration',
            'confirm_migration', 'finish_revert_migration')
_LIVE = ('live_migration', 'pre_live_migration',
         'post_live_migration_at_destination',
         'rollback_live_migration_at_destination',
         'check_can_live_migrate_destination',
         'check_can_live_migrate_source')

FEATURES = collections.OrderedDict([
    ('console_output', Feature(('get_console_output',), (), False)),
    ('pause', Feature(('pause', 'unpause'), (), False)),
    ('suspend', Feature(('suspend', 'resume'), (), False)),
    ('snapshot', Feature(('snapshot',), (), False)),
    # shelve: a snapshot, then destroy; unshelve: spawn.
    ('shelve', Feature(('snapshot',), (), False)),
    ('resize', Feature(_MIGRATE, (), False)),
    ('cold_migration', Feature(_MIGRATE, (), True)),
    ('interface_attach', Feature(('attach_interface', 'detach_interface'),
                                 ('supports_attach_interface',), False)),
    ('rescue', Feature(('rescue', 'unrescue'), (), False)),
    ('stable_rescue', Feature(('rescue', 'unrescue'),
                              ('supports_bfv_rescue',), False)),
    ('change_password', Feature(('set_admin_password',), (), False)),
    ('swap_volume', Feature(('swap_volume',), (), False)),
    ('volume_multiattach', Feature(('attach_volume',),
                                   ('supports_multiattach',), True)),
    ('live_migration', Feature(_LIVE, (), True)),
    ('block_migration_for_live_migration', Feature(_LIVE, (), True)),
    ('volume_backed_live_migration', Feature(_LIVE, (), True)),
    ('live_migrate_back_and_forth', Feature(_LIVE, (), True)),
    ('vnc_console', Feature(('get_vnc_console',), (), True)),
    ('spice_console', Feature(('get_spice_console',), (), True)),
    ('serial_console', Feature(('get_serial_console',), (), True)),
])

#: Features the driver's methods exist for but refuse: attach_volume
#: raises VolumeEncryptionNotSupported for an encrypted volume.
REFUSED = {'attach_encrypted_volume': 'attach_volume refuses encryption'}


def _overrides(cls, name):
    """Whether ``cls`` implements ``name`` itself (not nova's stub)."""
    from nova.virt import driver
    base = getattr(driver.ComputeDriver, name, None)
    own = getattr(cls, name, None)
    return own is not None and own is not base


def features(cls=None):
    """``[(option, True|False)]`` for tempest, in :data:`FEATURES` order.

    :param cls: the driver class; :class:`nova_pyvirt.driver.PyVirtDriver`
        by default.
    """
    if cls is None:
        from nova_pyvirt import driver
        cls = driver.PyVirtDriver
    result = []
    for option, feature in FEATURES.items():
        supported = (
            all(_overrides(cls, name) for name in feature.methods) and
            all(cls.capabilities.get(name) for name in
                feature.capabilities))
        if supported and feature.deployment:
            continue
        result.append((option, supported))
    result.extend((option, False) for option in sorted(REFUSED))
    return result


@main.command('tempest-features',
              help="Print tempest's [compute-feature-enabled] options "
                   "that this driver decides.")
def tempest_features(args):
    for option, value in features():
        print('%s %s' % (option, value))
    return 0
