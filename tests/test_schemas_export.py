"""`smmkit schemas --out DIR [--bundle]` gives files people use directly: a README comes with
them, and bundled files validate with plain `jsonschema.validate` in a Python that knows nothing
of smmkit (`python -I -S` with only the site-packages directory on sys.path, so no .pth file
and no editable install can bring smmkit back)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from smmkit import schemas
from smmkit.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
SITE = str(Path(jsonschema.__file__).resolve().parents[1])  # jsonschema and its dependencies


def export(tmp_path: Path, *flags: str) -> Path:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["schemas", "--out", str(out), *flags])
    assert result.exit_code == 0, result.output
    return out


def fresh_python(code: str, cwd: Path) -> str:
    """Run `code` in an interpreter that has jsonschema but cannot import smmkit."""
    prelude = (f"import sys, importlib.util; sys.path.append({SITE!r}); "
               "assert importlib.util.find_spec('smmkit') is None, 'smmkit is importable'\n")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", prelude + code], cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_export_has_a_readme_that_says_how_to_use_it(tmp_path):
    for flags, needle in (((), "registry"), (("--bundle",), "bundled")):
        out = export(tmp_path / needle, *flags)
        readme = (out / "README.md").read_text()
        assert readme.startswith("# smmkit schemas") and needle in readme
        assert "`config/accounts.json`" in readme


def test_bundled_files_have_no_reference_outside_themselves(tmp_path):
    out = export(tmp_path, "--bundle")
    for name in schemas.names():
        text = (out / f"{name}.json").read_text()
        assert all(ref.startswith("#") for ref in re.findall(r'"\$ref": "([^"]*)"', text)), name


CHECK_GOLDEN = """
import json, pathlib, jsonschema
index = json.loads(pathlib.Path("out/index.json").read_text())
wrong = []
cases = 0
for fixture in ("positive", "violations", "deviations", "seed"):
    for case in json.loads(pathlib.Path(f"golden/{fixture}.json").read_text()):
        for profile, expected in case.get("expected", {"strict": True, "tolerant": True}).items():
            path = index["responses"][case["dialect"]][profile][case["action"]][case["form"]]
            schema = json.loads(pathlib.Path("out", path).read_text())
            try:
                jsonschema.validate(case["body"], schema)
                valid = True
            except jsonschema.ValidationError:
                valid = False
            cases += 1
            if valid != expected:
                wrong.append((fixture, case["description"], profile))
print(json.dumps({"cases": cases, "wrong": wrong}))
"""


def test_bundled_files_judge_every_golden_case_with_plain_jsonschema(tmp_path):
    export(tmp_path, "--bundle")
    (tmp_path / "golden").symlink_to(GOLDEN)
    result = json.loads(fresh_python(CHECK_GOLDEN, tmp_path))
    assert result["wrong"] == [] and result["cases"] > 100


@pytest.mark.parametrize("flags", [(), ("--bundle",)])
def test_the_readme_snippet_runs_as_written_in_a_fresh_interpreter(tmp_path, flags):
    out = export(tmp_path, *flags)
    (snippet,) = re.findall(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S)
    fresh_python(snippet, out)


def test_a_bundled_file_still_refuses_what_the_original_refuses(tmp_path):
    out = export(tmp_path, "--bundle")
    code = ("import json, jsonschema\n"
            "schema = json.load(open('response/balance.json'))\n"
            "for body in ({'balance': '1e-5', 'currency': 'USD'}, {'balance': '5\\n', "
            "'currency': 'USD'}, {'balance': '5'}):\n"
            "    try:\n"
            "        jsonschema.validate(body, schema)\n"
            "    except jsonschema.ValidationError:\n"
            "        continue\n"
            "    raise SystemExit(f'accepted {body!r}')\n")
    fresh_python(code, out)
    assert not schemas.check_response("balance", "single", {"balance": "5\n",
                                                            "currency": "USD"}).kind == "conforms"
