"""Which characters a stored text may hold, and the plain text of rendered HTML.

Control characters other than tab and line breaks have no place in a headline or a
name, break the Atom feed (XML 1.0 forbids them) and, for NUL, PostgreSQL refuses
them outright. Input carrying one is refused (422) rather than silently cleaned, so
what is stored is exactly what the editor sent.
"""

from __future__ import annotations

import html
import re

# C0 controls except tab, LF and CR; the two non-characters XML also forbids.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def forbidden_character(value: str) -> str | None:
    """A description of the first character ``value`` may not hold, or None."""
    match = _FORBIDDEN.search(value) or _SURROGATE.search(value)
    if match is None:
        return None
    return f"U+{ord(match.group()):04X} at position {match.start()}"


def check_plain_text(value: str, what: str) -> str:
    problem = forbidden_character(value)
    if problem is not None:
        raise ValueError(f"{what} contains a character that is not allowed ({problem})")
    return value


_TAG = re.compile(r"<[^>]+>")


def plain_text(body_html: str) -> str:
    """The text of sanitized update HTML (ours: no scripts or comments to worry about).

    What every machine output that wants an update's words takes (JSON-LD, meta
    descriptions, Atom titles): the rendered HTML, never the Markdown source, so that
    ``[link](https://example.com) & <b>raw</b>`` reads ``link & <b>raw</b>``, as on the
    page (the renderer shows raw HTML in the source as text).
    """
    return " ".join(html.unescape(_TAG.sub(" ", body_html)).split())
