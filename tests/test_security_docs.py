"""docs/security.md names a test beside every defence: each named test must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "security.md").read_text()
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def test_every_test_named_in_the_security_doc_exists() -> None:
    named = REFERENCE.findall(DOC)
    assert len(named) >= 50
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.M)
    ]
    assert missing == []


def test_every_defence_section_names_a_test() -> None:
    sections = re.split(
        r"^### ", DOC.split("## Defences", 1)[1].split("## Known limits")[0], flags=re.M
    )
    for section in sections[1:]:
        assert REFERENCE.search(section), f"section without a test: {section.splitlines()[0]}"
