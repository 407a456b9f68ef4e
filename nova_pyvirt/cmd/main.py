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

"""``nova-pyvirt``: one console script, one subcommand per tool.

A module adds a subcommand by calling :func:`register` (or decorating with
:func:`command`) at import time, and by listing its dotted name in
:data:`COMMAND_MODULES` so that :func:`main` imports it::

    from nova_pyvirt.cmd import main

    def _configure(parser):
        parser.add_argument('--uri', default='test:///default')

    @main.command('render-xml', help='Print the domain XML of a flavor.',
                  configure=_configure)
    def render_xml(args):
        ...
        return 0

A command function takes the parsed :class:`argparse.Namespace` and returns
the process exit status (``None`` means 0).
"""

import argparse
import collections
import importlib
import sys

import pbr.version

PROG = 'nova-pyvirt'

# Dotted names of the modules that register subcommands when imported.
COMMAND_MODULES = ['nova_pyvirt.cmd.demo', 'nova_pyvirt.cmd.host_report',
                   'nova_pyvirt.cmd.render_xml',
                   'nova_pyvirt.cmd.tempest_features']

Command = collections.namedtuple('Command', 'name func help configure')

_COMMANDS = {}


def register(name, func, help, configure=None):
    """Register ``func(args)`` as the subcommand ``name``.

    :param name: the subcommand, as typed on the command line.
    :param func: called with the parsed arguments; returns the exit status.
    :param help: one line shown by ``nova-pyvirt --help``.
    :param configure: optional ``configure(parser)`` adding arguments to the
        subcommand's :class:`argparse.ArgumentParser`.
    :raises ValueError: if another function already owns ``name``.
    """
    existing = _COMMANDS.get(name)
    if existing is not None and existing.func is not func:
        raise ValueError('subcommand %r is already registered by %s.%s' % (
            name, existing.func.__module__, existing.func.__qualname__))
    _COMMANDS[name] = Command(name, func, help, configure)
    return func


def command(name, help, configure=None):
    """Decorator form of :func:`register`."""
    def decorator(func):
        return register(name, func, help, configure)
    return decorator


def commands():
    """Return the registered subcommands, sorted by name."""
    _import_command_modules()
    return [_COMMANDS[name] for name in sorted(_COMMANDS)]


def _import_command_modules():
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        # Registering again is harmless and keeps the command when the
        # registry was replaced after the module's first import.
        for cmd in getattr(module, 'COMMANDS', ()):
            register(*cmd)


def version_string():
    """The nova-pyvirt version, from package metadata or git.

    Returns ``'unknown'`` when neither exists (a source tree that is neither
    installed nor a git checkout): pbr raises a bare ``Exception`` then.
    """
    try:
        return pbr.version.VersionInfo('nova-pyvirt').release_string()
    except Exception:
        return 'unknown'


@command('version', help='Print the nova-pyvirt version and exit.')
def _version(args):
    print('%s %s' % (PROG, version_string()))
    return 0


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error on one line naming the argument.

    ``nova-pyvirt host-report --format xml`` prints ``nova-pyvirt
    host-report: error: argument --format: invalid choice...`` and exits 2,
    without argparse's usage lines (``--help`` shows them). Subcommands'
    parsers are of this class too.
    """

    def error(self, message):
        self.exit(2, '%s: error: %s\n' % (self.prog, ' '.join(
            message.split())))


def build_parser():
    """Build the top-level parser with one subparser per command."""
    parser = ArgumentParser(
        prog=PROG,
        description='Tools of the nova-pyvirt compute driver.')
    subparsers = parser.add_subparsers(
        dest='command', metavar='COMMAND', required=True)
    for cmd in commands():
        sub = subparsers.add_parser(
            cmd.name, help=cmd.help, description=cmd.help)
        if cmd.configure is not None:
            cmd.configure(sub)
        sub.set_defaults(_command=cmd)
    return parser


def main(argv=None):
    """Entry point of the ``nova-pyvirt`` console script."""
    args = build_parser().parse_args(argv)
    status = args._command.func(args)
    return 0 if status is None else int(status)


if __name__ == '__main__':
    sys.exit(main())
