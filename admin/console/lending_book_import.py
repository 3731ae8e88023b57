"""存量贷款导入 (loan-book import) page, under 贷款: upload a loan book, see what came in and every problem row.

The rules (who may import, the file's checks, what a row must hold) live in ``lending.servicing.book_import`` and
the lead importer's upload checks (``crm.importer.uploads.store``: size, kind, spreadsheet bombs); the import runs
in the request (a book is loans, not leads by the hundred thousand) and the page shows its report at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from starlette.responses import Response

from admin.console.imports import limit_upload
from admin.deps import ConsoleUser, CsrfChecked, attempt, render, require_roles
from core.web import SessionDep
from crm.importer import limits, uploads
from lending.servicing import book_import

router = APIRouter(prefix="/console/lending/book-import", include_in_schema=False)

BookImporter = Annotated[ConsoleUser, Depends(require_roles(book_import.IMPORTERS))]


def _page(request: Request, *, report: book_import.ImportReport | None = None, error: object = None,
          status_code: int = 200) -> Response:
    return render(request, "lending/book_import.html", {
        "report": report, "error": error, "columns": book_import.COLUMNS, "status_labels": book_import.STATUS_LABELS,
        "max_mb": uploads.MAX_BYTES // (1024 * 1024), "max_rows": limits.max_rows()}, status_code=status_code)


@router.get("")
def book_import_page(request: Request, user: BookImporter) -> Response:
    return _page(request)


@router.post("", dependencies=[Depends(limit_upload), CsrfChecked])
def book_import_upload(request: Request, session: SessionDep, user: BookImporter,
                       file: Annotated[UploadFile, File()]) -> Response:
    def run() -> book_import.ImportReport:
        path, _ = uploads.store(file.file, file.filename or "")
        try:
            return book_import.import_book(session, path, viewer=user.viewer, file_name=file.filename or path.name)
        finally:
            path.unlink(missing_ok=True)

    report, error = attempt(session, run)
    if error or report is None:
        return _page(request, error=error, status_code=error.status if error else 400)
    return _page(request, report=report)
