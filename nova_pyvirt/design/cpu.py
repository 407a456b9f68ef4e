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

"""Guest CPU: mode, model, extra flags and topology, checked against the host.

``validate_cpu_options`` runs at startup so a configuration the host cannot
honour fails then, naming the option, rather than at the first boot.
"""

from nova.virt import hardware

from nova_pyvirt import exception
from nova_pyvirt.xml import cpudef as cpu_xml

TOPOLOGY_PROPERTIES = ('hw_cpu_sockets', 'hw_cpu_cores', 'hw_cpu_threads',
                       'hw_cpu_max_sockets', 'hw_cpu_max_cores',
                       'hw_cpu_max_threads')


def effective_mode(conf, virt_type=None):
    """The CPU mode in force: the option, or the virt type's default.

    ``virt_type`` is the host's (``[pyvirt] virt_type`` when not given).
    """
    mode = conf.pyvirt.cpu_mode
    if mode:
        return mode
    virt_type = virt_type or conf.pyvirt.virt_type
    return 'host-model' if virt_type == 'kvm' else 'none'


def parse_extra_flags(flags):
    """``['+pcid', '-vmx', 'ssbd']`` -> ``[('pcid', 'require'), ...]``."""
    parsed = []
    for flag in flags or []:
        flag = flag.strip().lower()
        if flag.startswith('-'):
            parsed.append((flag[1:], 'disable'))
        else:
            parsed.append((flag.lstrip('+'), 'require'))
    return parsed


def validate_cpu_options(conf, domain_caps, known_features=frozenset(),
                         virt_type=None):
    """Fail if the ``[pyvirt]`` CPU options ask what the host can't give."""
    virt_type = virt_type or conf.pyvirt.virt_type
    mode = effective_mode(conf, virt_type)

    def fail(option, value, reason):
        raise exception.InvalidHostConfiguration(
            option=option, value=value, reason=reason)

    if mode in ('host-model', 'host-passthrough'):
        if not domain_caps.cpu_mode_supported(mode):
            fail('cpu_mode', mode,
                 'the host does not support this CPU mode for %s guests; '
                 'accepted: %s' % (virt_type, ', '.join(
                     [m for m in ('host-model', 'host-passthrough')
                      if domain_caps.cpu_mode_supported(m)] +
                     ['custom', 'none'])))
    if mode == 'custom':
        if not conf.pyvirt.cpu_models:
            fail('cpu_models', '', 'cpu_mode = custom needs at least one '
                 'CPU model; accepted: models of virsh cpu-models %s'
                 % (domain_caps.arch or 'x86_64'))
        custom = domain_caps.cpu_mode('custom')
        offered = {m.name.lower(): m for m in
                   (custom.models if custom is not None else [])}
        for name in conf.pyvirt.cpu_models:
            if name.lower() not in offered:
                fail('cpu_models', name, 'the host does not know this CPU '
                     'model; accepted: %s' % ', '.join(sorted(offered)))
        # The list is ordered by preference and guests get the first model
        # the host can run: models it cannot run are fallbacks for other
        # hosts, as long as one can run here.
        usable = [name for name in conf.pyvirt.cpu_models
                  if offered[name.lower()].usable != 'no']
        if not usable:
            fail('cpu_models', ','.join(conf.pyvirt.cpu_models),
                 'the host cannot run any of these CPU models (domain '
                 'capabilities mark them unusable); accepted: %s' %
                 ', '.join(sorted(n for n, m in offered.items()
                                  if m.usable != 'no')))
    flags = parse_extra_flags(conf.pyvirt.cpu_model_extra_flags)
    if flags and mode == 'none':
        fail('cpu_model_extra_flags',
             ','.join(conf.pyvirt.cpu_model_extra_flags),
             'extra CPU flags need a CPU model; accepted: cpu_mode '
             'host-model, host-passthrough or custom with them, or no '
             'flags')
    known = {f.lower() for f in known_features}
    host_model = domain_caps.cpu_mode('host-model')
    if host_model is not None:
        known.update(f.name.lower() for f in host_model.features)
    for name, _policy in flags:
        if name not in known:
            fail('cpu_model_extra_flags', name,
                 'unknown CPU feature flag for this host; accepted: the '
                 'features of libvirt\'s CPU map (virsh cpu-models, '
                 'virsh domcapabilities)')


def _checked_topology_properties(image_meta):
    props = image_meta.properties
    for name in TOPOLOGY_PROPERTIES:
        if props.obj_attr_is_set(name) and getattr(props, name) < 1:
            raise exception.InvalidImageProperty(
                name=name, value=getattr(props, name),
                reason='accepted: a positive integer')


def topology(flavor, image_meta):
    """The guest topology, or None when neither flavor nor image ask."""
    _checked_topology_properties(image_meta)
    specs = flavor.extra_specs or {}
    asked = any('hw_' + key[3:] in TOPOLOGY_PROPERTIES
                for key in specs if key.startswith('hw:')) or any(
        image_meta.properties.obj_attr_is_set(p)
        for p in TOPOLOGY_PROPERTIES)
    if not asked:
        return None
    return hardware.get_best_cpu_topology(flavor, image_meta)


def guest_cpu(conf, domain_caps, flavor, image_meta, virt_type=None):
    """The ``<cpu>`` for a guest, or None (mode ``none``, no topology)."""
    mode = effective_mode(conf, virt_type)
    wanted = topology(flavor, image_meta)
    if mode == 'none':
        if wanted is None:
            return None
        cpu = cpu_xml.CPU()
    elif mode == 'custom':
        custom = domain_caps.cpu_mode('custom')
        usable = {m.name.lower(): m.name for m in custom.models
                  if m.usable != 'no'}
        model = next(usable[n.lower()] for n in conf.pyvirt.cpu_models
                     if n.lower() in usable)
        cpu = cpu_xml.CPU(mode='custom', match='exact', check='partial',
                          model=model, model_fallback='forbid')
    else:
        cpu = cpu_xml.CPU(mode=mode)
        if mode == 'host-model':
            cpu.check = 'partial'
    if wanted is not None:
        cpu.topology_sockets = wanted.sockets
        cpu.topology_dies = 1
        cpu.topology_cores = wanted.cores
        cpu.topology_threads = wanted.threads
    for name, policy in parse_extra_flags(
            conf.pyvirt.cpu_model_extra_flags):
        cpu.add_feature(name, policy)
    return cpu
