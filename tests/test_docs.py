"""The README stays true: its settings table and commands match the code and CI."""

from __future__ import annotations

import re
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
    assert "test-command" in ci
    command = fenced_command("test-command")
    assert "pip install -e '.[test]'" in command and "pytest" in command


def test_demo_command_installs_and_runs_the_demo() -> None:
    command = fenced_command("demo-command")
    assert command.startswith("python3 -m venv .venv") and command.endswith("liveblog demo")
