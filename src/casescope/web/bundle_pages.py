"""Case bundles from the browser (docs/bundles.md): download a case as a bundle from its
settings page (admins and the case's owner, as for its settings), and import one by upload
(admins), under its own name or another.

Export is built in the request into a file under the home's `tmp/` and streamed from
there (deleted once sent), not in a job: it reads no index, only the case's rows, evidence
and segments, so it lasts about as long as copying them once; a case too big for a
browser's wait is exported with `casescope case export` (docs/web.md, "Case bundles").

Import writes the upload into a file under the home's `tmp/`, then runs the checks of
`casescope case import` (the manifest, every member's size and sha256) before anything is
registered, and loads the case's events through the server's own index, whose writes it
holds for the import.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from casescope.errors import CasescopeError
from casescope.migrate.bundle import Into, export_case, import_bundle
from casescope.migrate.runner import Progress
from casescope.services.case_lifecycle import MAX_NAME_LENGTH, case_id_by_name, case_settings
from casescope.web.api.case_settings import CaseManage
from casescope.web.pages import render
from casescope.web.security import Admin, Principal, State

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
#: The import's upload, past the size of other requests (web/app.py gives it the upload cap).
upload_router = APIRouter(include_in_schema=False)

#: Bytes read from the upload at a time while it is written under the home.
CHUNK = 1 << 20


def _temp_file(folder: Path, prefix: str) -> Path:
    """A new empty file under `folder`, readable by this user only (mkstemp)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".zip", dir=folder)
    os.close(handle)
    return Path(name)


@router.post("/cases/{case_id}/export")
def export_form(scope: CaseManage, state: State) -> Response:
    """The case as a bundle, downloaded as `NAME.zip` (audited as an export)."""
    name = case_settings(state.db, scope.case_id).name
    path = _temp_file(state.settings.tmp_dir, "web-export-")
    try:
        export_case(state.settings, name, path, Progress(), actor=f"web:{scope.principal.name}")
    except CasescopeError as exc:  # e.g. the case's files are being processed
        path.unlink(missing_ok=True)
        raise HTTPException(409, f"cannot export case {name!r} now: {exc}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"{name}.zip",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


def _import_page(
    request: Request, principal: Principal, error: str = "", status: int = 200
) -> HTMLResponse:
    response = render(request, "case_import.html", principal, error=error, max_name=MAX_NAME_LENGTH)
    response.status_code = status
    return response


@router.get("/case-import")
def import_page(request: Request, admin: Admin) -> HTMLResponse:
    return _import_page(request, admin)


def _save(upload: UploadFile, folder: Path) -> Path:
    path = _temp_file(folder, "web-import-")
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)
    return path


@upload_router.post("/case-import")
def import_form(
    request: Request,
    admin: Admin,
    state: State,
    bundle: Annotated[UploadFile, File()],
    as_name: Annotated[str, Form(max_length=MAX_NAME_LENGTH)] = "",
) -> Response:
    """Bring an uploaded bundle in; a refused bundle is shown on the page (400) with why,
    naming the member that does not match."""
    path = _save(bundle, state.settings.tmp_dir)
    try:
        with state.index.write() as index:
            into = Into(actor=f"web:{admin.name}", index=index)
            report = import_bundle(state.settings, path, as_name.strip() or None, into)
    except CasescopeError as exc:
        logger.info("case bundle upload by %s refused: %s", admin.name, exc)
        return _import_page(request, admin, str(exc), 400)
    finally:
        path.unlink(missing_ok=True)
    if not report.verify.ok:
        failed = [check.what for check in report.verify.checks if not check.ok]
        message = f"the imported case differs from the bundle: {', '.join(failed)}"
        return _import_page(request, admin, message, 400)
    case_id = case_id_by_name(state.db, report.name)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
