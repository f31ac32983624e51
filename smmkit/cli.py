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
    "check": ("smmkit.contract_tests.cli:check",
              "Check the SMM panel API v2 at URL against the contract."),
    "reset": ("smmkit.mock_server.serving.reset_cli:reset",
              "Delete a stopped fake's store (every file it uses) to start over."),
    "proxy": ("smmkit.contract_tests.bridge.cli:proxy", "Proxy a panel, judging each exchange."),
    "catalog": ("smmkit.contract_tests.bridge.cli:catalog", "Pull a live panel's catalogue."),
    "diff": ("smmkit.contract_tests.bridge.cli:diff", "Score the fake's fidelity to a live panel."),
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
              help="Directory to write the JSON Schema files (and a README) into.")
@click.option("--bundle", is_flag=True,
              help="Self-contained files: references embedded, for plain jsonschema.validate.")
def schemas_command(out_dir: str, bundle: bool) -> None:
    """Write the contract's JSON Schema files and a README to a directory."""
    from smmkit import schemas

    written = schemas.export(Path(out_dir), bundle=bundle, readme=True)
    kind = "bundled (self-contained) " if bundle else ""
    click.echo(f"wrote {len(written) - 1} {kind}schema files and README.md to {out_dir}")


@main.command()
@click.option("--server-url", default="http://127.0.0.1:8080", show_default=True,
              help="The `servers` entry: where Swagger UI's Try-it-out and Schemathesis call.")
@click.option("--part", default="all", show_default=True,
              type=click.Choice(["all", "api", "control"]),
              help="/api/v2, the fake's /_control/ (bearer token), or both.")
@click.option("--dialect", default="perfectpanel", show_default=True,
              type=click.Choice(["perfectpanel", "seed"]))
@click.option("--profile", default="strict", show_default=True,
              type=click.Choice(["strict", "tolerant"]),
              help="strict: what the canonical fake sends; tolerant: what real panels send.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False),
              help="Write the document to FILE instead of printing it.")
def openapi(server_url: str, part: str, dialect: str, profile: str,
            out_file: str | None) -> None:
    """The OpenAPI 3.1 document for /api/v2 and the control API (generated from the JSON
    Schemas). A running `smmkit serve` also serves it at /openapi.json and
    /_control/openapi.json."""
    from smmkit import schemas

    document = schemas.openapi_document(dialect=dialect, profile=profile, server_url=server_url,
                                        part=part)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out_file is None:
        click.echo(text)
        return
    Path(out_file).write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote the OpenAPI document ({len(document['paths'])} paths) to {out_file}")
