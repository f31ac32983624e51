"""`smmkit schemas --out DIR` and `smmkit openapi` through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner
from openapi_spec_validator import validate

from smmkit import schemas
from smmkit.cli import main


def test_schemas_command_writes_every_schema(tmp_path):
    result = CliRunner().invoke(main, ["schemas", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name in schemas.names():
        written = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        assert written == schemas.load(name)
    assert (tmp_path / "out" / "README.md").exists()
    assert result.stdout == (f"wrote {len(schemas.names()) + 1} schema files and README.md to "
                             f"{tmp_path / 'out'}\n")  # + index.json


def test_openapi_command_prints_a_valid_document():
    result = CliRunner().invoke(main, ["openapi"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    validate(document)
    assert document == json.loads(json.dumps(schemas.openapi_document(part="all")))
