"""The running fake serves its own OpenAPI documents, `smmkit openapi` writes them, and
Schemathesis, driven by the served document, finds no server error and no answer outside the
documented status codes and content types."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests
from click.testing import CliRunner
from openapi_spec_validator import validate
from smmkit.mock_server.core.config import Config
from smmkit.mock_server.serving.server import start_background

from smmkit import schemas
from smmkit.cli import main


@pytest.fixture(scope="module")
def fake():
    running = start_background(Config(port=0, clock="manual", admin_token="t"))
    yield running
    running.stop()


def test_serve_answers_openapi_json_naming_itself_as_the_server(fake):
    response = requests.get(f"{fake.url}/openapi.json", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    doc = response.json()
    validate(doc)
    assert doc["servers"][0]["url"] == fake.url
    assert set(doc["paths"]) == {"/api/v2"}


def test_the_control_document_needs_the_token(fake):
    assert requests.get(f"{fake.url}/_control/openapi.json", timeout=10).status_code == 401
    doc = requests.get(f"{fake.url}/_control/openapi.json", timeout=10,
                       headers={"Authorization": "Bearer t"}).json()
    validate(doc)
    assert "/_control/clock" in doc["paths"] and "/api/v2" not in doc["paths"]


def test_seed_and_robust_servers_describe_what_they_send():
    for config, title in ((Config(port=0, dialect="seed"), "(seed, strict)"),
                          (Config(port=0, robust=True), "(perfectpanel, tolerant)")):
        with start_background(config) as running:
            doc = requests.get(f"{running.url}/openapi.json", timeout=10).json()
            assert title in doc["info"]["title"]


def test_openapi_command_writes_a_file_with_the_server_url(tmp_path):
    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(main, ["openapi", "--out", str(out), "--server-url",
                                       "https://panel.example/"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote the OpenAPI document (21 paths) to {out}\n"
    doc = json.loads(out.read_text())
    validate(doc)
    assert doc["servers"][0]["url"] == "https://panel.example"
    assert doc == json.loads(json.dumps(schemas.openapi_document(
        part="all", server_url="https://panel.example")))


@pytest.mark.skipif(shutil.which("schemathesis") is None, reason="schemathesis CLI missing")
def test_schemathesis_finds_no_server_error_against_the_served_document(fake, tmp_path):
    # Every check, the answers' schemas included: multi-form answers echo the ids asked for, so
    # `refills=0` answered with {"refill": 0, "status": {"error": ...}} conforms (echoed_id).
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_schema_conformance")
    result = subprocess.run(
        ["schemathesis", "run", f"{fake.url}/openapi.json", "--checks", checks,
         "--max-examples", "15", "--seed", "7", "--generation-deterministic"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "2 passed" in result.stdout or "Tested: 2" in result.stdout, result.stdout[-2000:]
