"""Export and import of a story on the desk (admins): ``/desk/stories/{slug}/export``
downloads the story's document, ``/desk/import`` takes one (or a WordPress export) and
creates its story. The same functions as ``liveblog export`` / ``liveblog import``
(``liveblog.transfer``, docs/integrations.md "Export and import").

Admins only (``manage_users``): a document holds every user a story names, drafts and
deleted updates, and an import creates accounts; and an import trusts the document's
HTML as its original site rendered it."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from liveblog import auth, store, transfer
from liveblog.importers import wordpress
from liveblog.state import get_liveblog
from liveblog.views.common import redirect, render


async def export_story(request: Request) -> Response:
    liveblog = get_liveblog(request)
    slug = request.path_params["slug"]
    async with liveblog.db.session() as session:
        if await store.get_story(session, slug) is None:
            raise HTTPException(404, "No such story.")
        document = await transfer.export_story(
            session,
            slug,
            media_dir=liveblog.settings.media_dir(),
            media_url=liveblog.settings.media_url,
        )
    return Response(
        transfer.dumps(document) + "\n",
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{slug}.json"',
            "Cache-Control": "no-store",
        },
    )


async def import_form(request: Request) -> Response:
    return await _page(request)


async def _page(
    request: Request, *, errors: list[str] | None = None, status_code: int = 200
) -> Response:
    context: dict[str, Any] = {"errors": errors or []}
    return await render(request, "desk/import.html", context, status_code=status_code)


async def import_story(request: Request) -> Response:
    liveblog = get_liveblog(request)
    if auth.cross_site(request):
        raise HTTPException(403, "This form was sent from another site and was refused.")
    # Not ``checked_form``: a document is larger than a form part's default 1 MB; the
    # same checks, with the upload's own limit (the body's is LIVEBLOG_MAX_UPLOAD_BYTES).
    form = await request.form(max_part_size=liveblog.settings.max_upload_bytes)
    submitted = form.get(auth.CSRF_FIELD) or request.headers.get(auth.CSRF_HEADER)
    if not liveblog.csrf.check_token(
        request.cookies.get(auth.CSRF_COOKIE), submitted if isinstance(submitted, str) else None
    ):
        raise HTTPException(
            403, "The form's security token is missing or stale. Reload the page and try again."
        )
    upload = form.get("document")
    raw = b""
    if isinstance(upload, UploadFile):
        try:
            raw = await upload.read()
        finally:
            await upload.close()
    if not raw:
        return await _page(request, errors=["Choose a document to import."], status_code=400)
    try:
        if wordpress.looks_like_wxr(raw):
            document = wordpress.to_document(raw, liveblog.renderer)
        else:
            document = transfer.load(raw)
        async with liveblog.db.transaction() as session:
            imported = await transfer.import_story(
                session, document, media_dir=liveblog.settings.media_dir()
            )
    except (transfer.TransferError, wordpress.WxrError) as exc:
        return await _page(request, errors=[str(exc)], status_code=422)
    return redirect(request.url_for("story_desk_page", slug=imported.slug).path)


routes = [
    Route(
        "/desk/stories/{slug}/export",
        export_story,
        methods=["GET"],
        name="desk_export_story",
    ),
    Route("/desk/import", import_form, methods=["GET"], name="desk_import_form"),
    Route("/desk/import", import_story, methods=["POST"], name="desk_import_story"),
]
