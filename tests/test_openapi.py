"""The API's OpenAPI 3.1 document (liveblog/views/openapi.py): it validates, it covers
every route under /api/, it follows liveblog.policy, the handlers' real answers fit it,
and schemathesis, fuzzing the live app with an editor's token, finds nothing wrong."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi import checks
from starlette.applications import Starlette

from liveblog import policy
from liveblog.app import create_app
from liveblog.views import openapi
from tests.support import Editor, LiveServer, bearer, make_editor, run_server, settings_for
from tests.test_policy import named_routes

pytestmark = pytest.mark.anyio

# The fuzzing's budget: examples per operation and generation mode, derandomized (the
# same cases every run); about 20 s for the whole API on a laptop.
FUZZ_EXAMPLES = 40
FUZZ_SECONDS = 60


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")  # no token: it is public
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId: (method, path, operation)."""
    return {
        op["operationId"]: (method, path, op)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    }


async def test_the_document_is_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    spec = await _document(client)
    assert spec["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(spec).validate()


async def test_every_api_route_is_documented_and_nothing_else(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    spec = await _document(client)
    routes = {
        name: route
        for name, route in named_routes(app.routes).items()
        if getattr(route, "path", "").startswith("/api/")
    }
    assert set(openapi.OPERATIONS) == set(routes), "document each /api/ route in OPERATIONS"
    documented = {(method.upper(), path) for method, path, _ in _operations(spec).values()}
    for route in openapi.api_routes(app.routes):
        for method in route.methods or ():
            if method != "HEAD":
                assert (method, route.path.replace(":int", "")) in documented


async def test_a_route_without_an_entry_fails_the_document(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(openapi.OPERATIONS, "api.get_story")
    with pytest.raises(LookupError, match=r"api\.get_story"):
        openapi.document(app.routes)


async def test_security_follows_the_policy(client: httpx.AsyncClient) -> None:
    for name, (_, _, op) in _operations(await _document(client)).items():
        rule = policy.ROUTES[name]
        assert op["x-liveblog-permission"] == rule.permission.value, name
        if rule.via is policy.Via.TOKEN:
            assert op["security"] == [{"bearer": []}], name
            writes = policy.PERMISSIONS[rule.permission].writes
            assert op["x-liveblog-read-only-token"] is (not writes), name
            assert {"401", "403"} <= set(op["responses"]), name
        else:
            assert op["security"] == [], name


async def test_the_docs_page_shows_every_operation_without_scripts(
    client: httpx.AsyncClient,
) -> None:
    spec = await _document(client)
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script" not in page.text and "style=" not in page.text
    for name, (method, path, _) in _operations(spec).items():
        assert f'id="{name}"' in page.text
        assert f"{method.upper()} {path}" in page.text
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in page.text


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (30, 30, 200)).save(out, format="PNG")
    return out.getvalue()


class Checker:
    """Sends requests and checks each answer against the operation it names."""

    def __init__(self, client: httpx.AsyncClient, spec: dict[str, Any], token: str) -> None:
        self.client = client
        self.spec = spec
        self.ops = _operations(spec)
        self.auth = bearer(token)
        self.seen: set[tuple[str, int]] = set()

    async def __call__(self, name: str, status: int, **params: Any) -> Any:
        method, template, op = self.ops[name]
        options = {k: params.pop(k) for k in ("json", "content", "headers") if k in params}
        headers = {**self.auth, **options.pop("headers", {})}
        query = params.pop("query", "")
        path = template.format(**params) + (f"?{query}" if query else "")
        response = await self.client.request(method, path, headers=headers, **options)
        assert response.status_code == status, f"{name}: {response.text}"
        documented = op["responses"].get(str(status))
        assert documented is not None, f"{name} answered {status}, not in the document"
        content = documented.get("content", {})
        if not content:
            assert response.content == b"", name
            body = None
        else:
            media = response.headers["content-type"].split(";")[0]
            assert media in content, name
            body = response.json() if media == "application/json" else response.text
            schema = {**content[media]["schema"], "components": self.spec["components"]}
            errors = list(Draft202012Validator(schema).iter_errors(body))
            assert errors == [], f"{name} {status}: {[e.message for e in errors]}"
        self.seen.add((name, status))
        return body


async def test_the_handlers_answers_fit_the_documented_schemas(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    spec = await _document(client)
    call = Checker(client, spec, editor.token)
    await make_editor(app, "cora", role="contributor")
    await call("api_openapi", 200)
    await call("api_docs", 200)
    await call("api.create_category", 201, json={"name": "World"})
    await call("api.create_category", 201, json={"name": "Gone"})
    await call("api.rename_category", 200, slug="gone", json={"name": "Going"})
    await call("api.delete_category", 204, slug="gone")
    await call("api.delete_category", 404, slug="gone")
    await call("api.list_categories", 200)
    made = await call(
        "api.create_story",
        201,
        json={
            "title": "Storm",
            "slug": "storm",
            "status": "live",
            "lead": "The *latest*.",
            "authors": ["alice", {"name": "Staff and agencies"}],
            "categories": ["world"],
            "starts_at": "2026-01-01T10:00:00Z",
        },
    )
    assert made["authors"][1] == {"name": "Staff and agencies", "username": None}
    await call("api.get_story", 200, slug="storm")
    await call("api.patch_story", 200, slug="storm", json={"breaking": True})
    await call("api.list_stories", 200)
    image = await call(
        "api.upload_image", 201, content=_png(), headers={"Content-Type": "image/png"}
    )
    posted = await call(
        "api.post_update",
        201,
        slug="storm",
        json={
            "body": "Winds **rise**.",
            "headline": "Winds",
            "key_event": True,
            "image_url": image["url"],
            "image_alt": "A map",
        },
    )
    update_id = posted["id"]
    assert posted["image"]["width"] == 4
    await call("api.get_update", 200, slug="storm", update_id=update_id)
    await call("api.patch_update", 200, slug="storm", update_id=update_id, json={"pinned": True})
    # A documentation address is refused without a connection: a link card, with why.
    card = await call("api.resolve_embed", 200, json={"url": "http://192.0.2.1/page"})
    assert card["kind"] == "link" and "private or local" in card["problem"]
    await call("api.resolve_embed", 422, json={"url": "file:///etc/passwd"})
    await call("api.refresh_embeds", 200, slug="storm", update_id=update_id)
    await call("api.list_updates", 200, slug="storm")
    # Webhooks are an admin's (a documentation address: deliveries are refused, unsent).
    await call("api.create_webhook", 403, json={"url": "http://192.0.2.1/hook"})
    editor_auth, call.auth = call.auth, bearer((await make_editor(app, "ada", role="admin")).token)
    hook = await call("api.create_webhook", 201, json={"url": "http://192.0.2.1/hook"})
    await call("api.create_webhook", 422, json={"url": "http://192.0.2.1/", "events": ["x"]})
    await call("api.list_webhooks", 200)
    await call("api.get_webhook", 200, webhook_id=hook["id"])
    replay = {"story": "storm", "from_seq": 1}
    await call("api.replay_webhook", 200, webhook_id=hook["id"], json=replay)
    await call("api.delete_webhook", 204, webhook_id=hook["id"])
    await call("api.get_webhook", 404, webhook_id=hook["id"])
    call.auth = editor_auth

    def post(**body: Any) -> Any:
        return call("api.post_update", 201, slug="storm", json={"body": "Queued", **body})

    draft = (await post(state="draft"))["id"]
    await call("api.submit_update", 200, slug="storm", update_id=draft)
    await call("api.return_update", 200, slug="storm", update_id=draft, json={"note": "Source?"})
    rejected = (await post(state="submitted"))["id"]
    await call("api.reject_update", 200, slug="storm", update_id=rejected)
    later = (await post(state="submitted"))["id"]
    when = {"publish_at": "2999-01-01T10:00:00Z"}
    await call("api.schedule_update", 200, slug="storm", update_id=later, json=when)
    await call("api.unschedule_update", 200, slug="storm", update_id=later)
    await call("api.publish_update", 200, slug="storm", update_id=later)
    await call("api.delete_update", 204, slug="storm", update_id=later)
    await call("api.add_team_member", 201, slug="storm", username="cora")
    await call("api.add_team_member", 204, slug="storm", username="cora")
    await call("api.remove_team_member", 204, slug="storm", username="cora")
    await call("api_search", 200, query="q=winds")
    # Refusals are documented and shaped as documented too.
    await call("api.get_story", 404, slug="nothing")
    await call("api.create_story", 422, json={"title": ""})
    await call("api.create_story", 409, json={"title": "Again", "slug": "storm"})
    await call("api.patch_update", 400, slug="storm", update_id=update_id, json=[1])
    stale = {"headers": {"If-Match": '"1"'}, "json": {"body": "Late"}}
    await call("api.patch_update", 412, slug="storm", update_id=update_id, **stale)
    await call("api.publish_update", 409, slug="storm", update_id=update_id)
    await call("api.upload_image", 415, content=b"x", headers={"Content-Type": "text/plain"})
    await call("api.list_updates", 400, slug="storm", query="limit=0")
    call.auth = {}
    await call("api.list_stories", 401)
    # Every operation was seen answering as it does when it works.
    for name, (_, _, op) in call.ops.items():
        success = min(int(s) for s in op["responses"] if s.startswith("2"))
        assert (name, success) in call.seen, name


async def test_a_time_past_the_calendar_in_utc_is_refused_not_a_500(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    # Found while fuzzing: a valid date-time that leaves years 1-9999 once in UTC.
    edge = "9999-12-31T23:59:59-23:00"
    auth = bearer(editor.token)
    story = {"title": "Edge", "slug": "edge", "starts_at": edge}
    refused = await client.post("/api/stories", json=story, headers=auth)
    assert refused.status_code == 422
    assert refused.json() == {"error": "starts_at: must fall within years 1 to 9999 in UTC"}
    made = await client.post("/api/stories", json={"title": "Edge"}, headers=auth)
    assert made.status_code == 201
    update = {"body": "Later", "publish_at": edge}
    posted = await client.post("/api/stories/edge/updates", json=update, headers=auth)
    assert posted.status_code == 422


async def test_values_of_another_json_type_are_refused_not_coerced(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    # Found while fuzzing: pydantic's lax mode took 1.0 for true, and a number for a time
    # (seconds since 1970); the documented types are boolean and date-time text.
    auth = bearer(editor.token)
    assert (await client.post("/api/stories", json={"title": "Types"}, headers=auth)).is_success
    story = await client.get("/api/stories/types", headers=auth)
    refusals = {
        "breaking": await client.patch("/api/stories/types", json={"breaking": 1.0}, headers=auth),
        "starts_at": await client.patch(
            "/api/stories/types", json={"starts_at": 4102444800}, headers=auth
        ),
        "key_event": await client.post(
            "/api/stories/types/updates", json={"body": "x", "key_event": "yes"}, headers=auth
        ),
        "publish_at": await client.post(
            "/api/stories/types/updates",
            json={"body": "x", "publish_at": 4102444800.0},
            headers=auth,
        ),
        "image_width": await client.post(
            "/api/stories/types/updates",
            json={
                "body": "x",
                "image_url": "https://example.org/a.png",
                "image_width": 640.0,
                "image_height": 480,
            },
            headers=auth,
        ),
    }
    assert {name: r.status_code for name, r in refusals.items()} == dict.fromkeys(refusals, 422)
    assert (await client.get("/api/stories/types", headers=auth)).json() == story.json()


def test_the_checker_refuses_a_key_the_schema_does_not_name() -> None:
    # The answers' models forbid extra keys: a function that grows one fails above.
    spec = openapi.document(create_app(settings_for(Path("/nonexistent"))).routes)
    schema = {"$ref": "#/components/schemas/UpdateStaffOut", "components": spec["components"]}
    assert not Draft202012Validator(schema).is_valid({"id": 1})
    assert "additionalProperties" in str(spec["components"]["schemas"]["UpdateStaffOut"])


# --- schemathesis ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Editor]]:
    """A live server with an editor, a contributor and a live story with updates."""
    # Fuzzed links to embed are fetched for real: a short limit keeps a slow lookup short.
    app = create_app(settings_for(Path(tmp_path_factory.mktemp("fuzz")), fetch_timeout=0.5))
    with run_server(app) as live:
        editor = live.run(make_editor(app, "alice"))
        live.run(make_editor(app, "cora", role="contributor"))
        yield live, editor


def test_schemathesis_finds_nothing(fuzzed: tuple[LiveServer, Editor]) -> None:
    """Positive and negative cases for every operation, with an editor's token; the
    default checks (no 500, answers as documented: status, content type, schema,
    headers; invalid input refused; auth enforced) except ``positive_data_acceptance``:
    the models refuse what JSON Schema cannot say (a publish_at in the past, a taken
    slug, an unknown username or category, control characters), with a documented 422
    or 409. Half the cases are aimed at the seeded story, its updates and a real user,
    so the fuzzing gets past 404."""
    live, editor = fuzzed
    auth = bearer(editor.token)
    made = httpx.post(
        f"{live.url}/api/stories",
        json={"title": "Storm", "slug": "storm", "status": "live"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    kinds = [{}, {"state": "draft"}, {"state": "submitted"}, {"state": "submitted"},
             {"publish_at": "2999-01-01T00:00:00Z"}]  # fmt: skip
    ids = []
    for extra in kinds:
        posted = httpx.post(
            f"{live.url}/api/stories/storm/updates", json={"body": "Seed", **extra}, headers=auth
        )
        assert posted.status_code == 201, posted.text
        ids.append(posted.json()["id"])

    schema = schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")
    schema.config.update(base_url=live.url, headers=auth)
    # Our token is the security parameter (never a generated one); unknown query
    # parameters are ignored, as HTTP APIs do, so they are not sent as "invalid".
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    failures: list[str] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @settings(
            max_examples=FUZZ_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of([operation.as_strategy(generation_mode=m) for m in modes]),
               data=st.data())  # fmt: skip
        def fuzz(case: schemathesis.Case[Any], data: st.DataObject) -> None:
            params = case.path_parameters or {}
            if "slug" in params and data.draw(st.booleans()):
                params["slug"] = "storm"
            if "update_id" in params and data.draw(st.booleans()):
                params["update_id"] = data.draw(st.sampled_from(ids))
            if "username" in params and data.draw(st.booleans()):
                params["username"] = "cora"
            try:
                # Our token, named as the explicit credential: schemathesis then also
                # checks that each success is refused without it and with a bad one.
                case.call_and_validate(
                    headers=auth, excluded_checks=[checks.positive_data_acceptance]
                )
            except BaseException as exc:  # a failure group: keep it, go on
                failures.append(f"{case.operation.label}: {exc}")

        fuzz()
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(failures)} failures in {elapsed:.1f} s")
    assert failures == [], "\n\n".join(failures[:5])
    assert elapsed < FUZZ_SECONDS
