"""The README stays true: its settings table and commands match the code and CI."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from liveblog.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def fenced_command(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```\n(.+?)\n```\n<!-- /{marker} -->", README, re.S)
    assert match is not None, f"README has no {marker} block"
    return match.group(1)


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `(LIVEBLOG_[A-Z_]+)`", README, re.M))
    actual = {f"LIVEBLOG_{name.upper()}" for name in Settings.model_fields}
    assert documented == actual


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = fenced_command("test-command")
    assert "pip install -e '.[test]'" in command and "pytest" in command
    # .ci/run's own extraction, run as written, finds exactly that command; it runs last.
    extraction = re.search(r'^command="\$\((.+?)\)"$', ci, re.M | re.S)
    assert extraction is not None, ".ci/run no longer reads the command from README.md"
    found = subprocess.run(
        ["bash", "-c", extraction.group(1)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == command
    assert ci.rstrip().endswith('exec bash -c "$command"')


def test_demo_command_installs_and_runs_the_demo() -> None:
    command = fenced_command("demo-command")
    assert command.startswith("python3 -m venv .venv") and command.endswith("liveblog demo")
