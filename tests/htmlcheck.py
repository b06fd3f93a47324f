"""Find markup a browser could execute, by parsing HTML the way browsers do.

The parser is Lexbor (through selectolax), a C implementation of the WHATWG HTML
parsing algorithm: it builds the same tree a browser would, including the foster
parenting, SVG/MathML and raw-text rules that hostile markup plays with.

Reported, for a document or a fragment: script elements other than our own files
under /static/ and JSON-LD data blocks; any ``on*`` event-handler attribute;
``javascript:``/``vbscript:``/``data:`` URLs in any URL-carrying attribute (after the
whitespace and control characters browsers ignore); ``style`` attributes and elements
(our CSP forbids inline style); elements that load or run other documents (iframe
outside /embed/, object, embed, base, ...); and ``<meta http-equiv=refresh>``.
"""

from __future__ import annotations

import json
import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

URL_ATTRIBUTES = {
    "action", "background", "cite", "codebase", "data", "dynsrc", "formaction", "from",
    "href", "icon", "longdesc", "lowsrc", "manifest", "ping", "poster", "src", "srcset",
    "to", "usemap", "values", "xlink:href", "xml:base",
}  # fmt: skip
FORBIDDEN_ELEMENTS = {"applet", "base", "embed", "frame", "frameset", "object", "style"}
# Raw-text elements whose parsing depends on whether scripting is on; user content has
# no business creating them, so their presence alone is reported.
FORBIDDEN_ELEMENTS |= {"noembed", "noframes", "noscript", "plaintext", "xmp"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:")
# What browsers drop from a URL before they read its scheme.
_URL_NOISE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b\ufeff]+")


def _bad_url(value: str) -> bool:
    cleaned = _URL_NOISE.sub("", value).lower()
    return any(part.startswith(BAD_SCHEMES) for part in [cleaned, *cleaned.split(",")])


def _check_element(
    node: LexborNode, problems: list[str], script_prefixes: tuple[str, ...], styles: bool
) -> None:
    tag = (node.tag or "").lower()
    attrs = {name.lower(): value or "" for name, value in node.attributes.items()}
    where = f"<{tag} {attrs}>"
    if tag == "script":
        text = node.text(deep=True)
        src = attrs.get("src", "")
        if attrs.get("type", "").lower() == "application/ld+json":
            try:
                json.loads(text)
            except ValueError:
                problems.append(f"JSON-LD script that is not JSON: {text[:120]!r}")
        elif not (src.startswith(script_prefixes) and not text.strip()):
            problems.append(f"script element: {where} {text[:120]!r}")
    if tag in FORBIDDEN_ELEMENTS:
        problems.append(f"forbidden element: {where}")
    if tag == "iframe" and "/embed/" not in attrs.get("src", ""):
        problems.append(f"iframe: {where}")
    if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
        problems.append(f"meta refresh: {where}")
    for name, value in attrs.items():
        if name.startswith("on"):
            problems.append(f"event handler {name}={value!r} on <{tag}>")
        elif name == "style" and not styles:
            problems.append(f"style attribute {value!r} on <{tag}>")
        elif name == "srcdoc":
            problems.append(f"srcdoc on <{tag}>")
        elif name in URL_ATTRIBUTES and _bad_url(value):
            problems.append(f"{name}={value!r} on <{tag}>")


def executable_markup(
    html: str,
    *,
    script_prefixes: tuple[str, ...] = ("/static/",),
    styles: bool = False,
) -> list[str]:
    """Every way ``html`` (a page or a fragment) could run script, described; [] if none.

    ``script_prefixes``: where our own script files live (an embed snippet for other
    sites names them by absolute URL). ``styles``: allow style attributes (only for
    snippets that run on other sites' pages, where our CSP does not apply).
    """
    tree = LexborHTMLParser(html)
    problems: list[str] = []
    if tree.root is None:
        return problems
    for node in tree.root.traverse():
        _check_element(node, problems, script_prefixes, styles)
    for template in tree.css("template"):
        # A template's content is a separate fragment: inert until a script clones it,
        # which desk.js does, so it is held to the same rules.
        inner = _TEMPLATE_TAGS.sub("", template.html or "")
        problems.extend(executable_markup(inner, script_prefixes=script_prefixes, styles=styles))
    return problems


_TEMPLATE_TAGS = re.compile(r"^<template[^>]*>|</template>$")


def text_of(html: str) -> str:
    """The text a reader sees (for checking that a hostile input arrived as text)."""
    tree = LexborHTMLParser(html)
    return "" if tree.body is None else tree.body.text(deep=True)
