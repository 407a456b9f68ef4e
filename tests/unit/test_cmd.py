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

"""The ``nova-pyvirt`` subcommand dispatcher."""

import contextlib
import io

import fixtures
from oslotest import base

from nova_pyvirt.cmd import main


class TestMain(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        # Commands registered by a test stay in that test.
        self.useFixture(fixtures.MockPatchObject(
            main, '_COMMANDS', dict(main._COMMANDS)))
        self.useFixture(fixtures.MockPatchObject(
            main, 'COMMAND_MODULES', list(main.COMMAND_MODULES)))

    def _run(self, argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main.main(argv)
        return status, out.getvalue()

    def test_version(self):
        status, out = self._run(['version'])
        self.assertEqual(0, status)
        self.assertEqual('nova-pyvirt %s\n' % main.version_string(), out)
        self.assertNotEqual('', main.version_string())

    def test_command_is_required(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            exc = self.assertRaises(SystemExit, main.main, [])
        self.assertEqual(2, exc.code)
        self.assertIn('COMMAND', err.getvalue())

    def test_unknown_command(self):
        with contextlib.redirect_stderr(io.StringIO()):
            exc = self.assertRaises(SystemExit, main.main, ['no-such'])
        self.assertEqual(2, exc.code)

    def test_registered_command_with_arguments(self):
        seen = []

        def configure(parser):
            parser.add_argument('--count', type=int, default=1)

        @main.command('echo-count', help='Echo a number.',
                      configure=configure)
        def echo_count(args):
            seen.append(args.count)
            print(args.count)
            return 3

        status, out = self._run(['echo-count', '--count', '7'])
        self.assertEqual(3, status)
        self.assertEqual('7\n', out)
        self.assertEqual([7], seen)
        self.assertIn('echo-count', [c.name for c in main.commands()])

    def test_none_status_is_success(self):
        main.register('quiet', lambda args: None, help='Do nothing.')
        self.assertEqual((0, ''), self._run(['quiet']))

    def test_duplicate_name_rejected(self):
        def first(args):
            return 0

        def second(args):
            return 0

        main.register('dup', first, help='First.')
        main.register('dup', first, help='First again.')  # same function
        self.assertRaises(ValueError, main.register, 'dup', second,
                          help='Second.')

    def test_command_modules_are_imported(self):
        # A module listed in COMMAND_MODULES is imported by the parser
        # builder; this one registers nothing but must import.
        main.COMMAND_MODULES.append('nova_pyvirt.conf')
        names = [c.name for c in main.commands()]
        self.assertIn('version', names)
        self.assertEqual(sorted(names), names)
