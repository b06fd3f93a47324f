"""Query parameters as the views read them: ``int_param`` and ``choice_param``."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from liveblog.views.common import BadParameter, choice_param, int_param


def request(**params: str) -> Request:
    return Request({"type": "http", "query_string": urlencode(params).encode(), "headers": []})


def test_int_param_gives_the_default_when_missing_or_empty() -> None:
    assert int_param(request(), "limit", default=20) == 20
    assert int_param(request(limit=""), "limit", default=20) == 20
    assert int_param(request(), "before") is None


def test_int_param_takes_whole_numbers_within_the_bounds() -> None:
    assert int_param(request(before="0"), "before") == 0
    assert int_param(request(before="9" * 18), "before") == 10**18 - 1
    assert int_param(request(limit="1"), "limit", default=20, minimum=1, maximum=100) == 1
    assert int_param(request(limit="100"), "limit", default=20, minimum=1, maximum=100) == 100
    assert int_param(request(limit="007"), "limit", default=20, minimum=1, maximum=100) == 7


@pytest.mark.parametrize(
    "raw", ["abc", "-1", "+1", "1.5", "1e2", " 1", "\u0661", "9" * 19, "0", "101"]
)
def test_int_param_refuses_anything_else_with_a_400_naming_it(raw: str) -> None:
    with pytest.raises(BadParameter) as caught:
        int_param(request(limit=raw), "limit", default=20, minimum=1, maximum=100)
    assert caught.value.status_code == 400
    assert caught.value.detail == "'limit' must be a whole number from 1 to 100"


def test_int_param_without_a_maximum_still_refuses_more_than_18_digits() -> None:
    with pytest.raises(BadParameter) as caught:
        int_param(request(after="9" * 19), "after")
    assert "'after'" in caught.value.detail and "18 digits" in caught.value.detail


def test_choice_param() -> None:
    choices = ("newest", "oldest")
    assert choice_param(request(order="oldest"), "order", choices) == "oldest"
    assert choice_param(request(), "order", choices) is None
    assert choice_param(request(order=""), "order", choices) is None
    for raw in ("sideways", "Newest", "newest "):
        with pytest.raises(BadParameter) as caught:
            choice_param(request(order=raw), "order", choices)
        assert caught.value.detail == "'order' must be one of: newest, oldest"
