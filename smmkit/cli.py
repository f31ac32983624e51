"""`smmkit` — the one command. A lazy group: each subcommand's module is imported only when
that subcommand runs, so `smmkit serve` loads the fake and none of the kit, and `smmkit check`
loads the kit and none of the fake's server.

Configuration enters in the subcommands (options and SMMKIT_* environment variables) and
nowhere else.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

import click

from smmkit import __version__

# name -> ("module:attribute", one-line help shown by `smmkit --help` without importing it)
LAZY_COMMANDS = {
    "serve": ("smmkit.mock_server.serving.cli:serve",
              "Start the fake panel (default http://127.0.0.1:8080/api/v2)."),
    "ctl": ("smmkit.mock_server.client.ctl:ctl", "Drive a running fake through its control API."),
    "db": ("smmkit.mock_server.serving.db_cli:db", "Inspect or upgrade the store's schema."),
    "check": ("smmkit.contract_tests.cli:check",
              "Check the SMM panel API v2 at URL against the contract."),
}


class LazyGroup(click.Group):
    """A click group whose lazily named commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name][0].split(":")
            command: click.Command = getattr(import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, LAZY_COMMANDS[name][1] if name in LAZY_COMMANDS
                 else (self.commands[name].get_short_help_str(limit=60)))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"auto_envvar_prefix": "SMMKIT",
                                              "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smmkit")
def main() -> None:
    """smmkit: a stateful fake SMM panel (API v2) and a contract-test kit for it."""


@main.command("schemas")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write the JSON Schema files into.")
def schemas_command(out_dir: str) -> None:
    """Write the contract's JSON Schema files to a directory."""
    from smmkit import schemas

    written = schemas.export(Path(out_dir))
    click.echo(f"wrote {len(written)} schema files to {out_dir}")


@main.command()
def openapi() -> None:
    """Print the OpenAPI 3.1 document for /api/v2 (generated from the JSON Schemas)."""
    from smmkit import schemas

    click.echo(json.dumps(schemas.openapi_document(), indent=2))
