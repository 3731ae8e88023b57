"""授权协议 (consent documents): publish a new version of the privacy policy or a funder's 共享授权书 after
previewing it as the customer will read it, read every version, and see who consented (customer, version,
when, from where). Customers consent in the mini-program (lending.consent); a new version asks them again,
and every earlier consent stays recorded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from admin.pagination import PAGE_SIZE, page_number, probed
from core.web import SessionDep
from lending import consent, products
from lending.models.consent import CONSENT_ACTION_LABELS, CONSENT_KIND_LABELS

router = APIRouter(prefix="/consents")

Publisher = Annotated[ConsoleUser, Depends(require_roles(nav.CONSENT_PUBLISHERS))]


def _funders(session: SessionDep) -> dict[int, str]:
    return {f.id: f.name for f in products.list_funders(session)}


def _list(request: Request, session: SessionDep, *, form: dict[str, str] | None = None, error: object = None,
          status_code: int = 200) -> Response:
    funders = _funders(session)
    docs = consent.current_documents(session)
    return render(request, "consents/list.html", {
        "docs": [(d, consent.document_label(d.code, funders)) for d in docs], "counts": consent.agreed_counts(session),
        "funders": funders, "kind_labels": CONSENT_KIND_LABELS, "form": form or {"kind": "privacy"}, "error": error,
        "notice": "已发布" if request.query_params.get("done") == "published" else None,
    }, status_code=status_code)


@router.get("")
def consent_list(request: Request, session: SessionDep, user: Publisher) -> Response:
    return _list(request, session)


def _form(kind: str, funder_id: str, title: str, body: str) -> dict[str, str]:
    return {"kind": kind, "funder_id": funder_id, "title": title, "body": body}


@router.post("/preview", dependencies=[CsrfChecked])
def consent_preview(request: Request, session: SessionDep, user: Publisher, kind: Annotated[str, Form()] = "",
                    funder_id: Annotated[str, Form()] = "", title: Annotated[str, Form()] = "",
                    body: Annotated[str, Form()] = "") -> Response:
    """The typed document as the customer will read it, with the version it will get; nothing is saved."""
    form = _form(kind, funder_id, title, body)
    draft, error = attempt(session, lambda: consent.check_draft(session, kind, title, body,
                                                                funder_id=parse_int(funder_id)))
    if error or draft is None:
        return _list(request, session, form=form, error=error, status_code=error.status if error else 400)
    current = consent.latest_document(session, draft.code)
    return render(request, "consents/preview.html", {
        "draft": draft, "form": form, "label": consent.document_label(draft.code, _funders(session)),
        "current": current, "unchanged": current is not None and current.body == draft.body
        and current.title == draft.title,
        "agreed": consent.agreed_counts(session).get(current.id, 0) if current else 0,
        "funders": _funders(session), "kind_labels": CONSENT_KIND_LABELS,
    })


@router.post("", dependencies=[CsrfChecked])
def consent_publish(request: Request, session: SessionDep, user: Publisher, kind: Annotated[str, Form()] = "",
                    funder_id: Annotated[str, Form()] = "", title: Annotated[str, Form()] = "",
                    body: Annotated[str, Form()] = "") -> Response:
    doc, error = attempt(session, lambda: consent.publish(session, kind, title, body,
                                                          funder_id=parse_int(funder_id)))
    if error or doc is None:
        return _list(request, session, form=_form(kind, funder_id, title, body), error=error,
                     status_code=error.status if error else 400)
    return RedirectResponse(f"/console/consents/{doc.id}?done=published", status_code=303)


@router.get("/{document_id}")
def consent_document(request: Request, session: SessionDep, user: Publisher, document_id: int,
                     page: str = "1") -> Response:
    """One version's full text (the preview of what customers agreed to), every version of the document,
    and who consented to it, newest first."""
    doc = consent.get_document(session, document_id)
    number = page_number(page)
    funders = _funders(session)
    rows = consent.records(session, doc.code, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    pager = probed(number, len(rows), f"/console/consents/{doc.id}", {})
    return render(request, "consents/document.html", {
        "doc": doc, "label": consent.document_label(doc.code, funders), "versions": consent.versions(session, doc.code),
        "counts": consent.agreed_counts(session), "rows": rows[:PAGE_SIZE], "action_labels": CONSENT_ACTION_LABELS,
        "page": pager,
        "form": {"kind": doc.kind, "funder_id": str(doc.funder_id or ""), "title": doc.title, "body": doc.body},
        "funders": funders, "kind_labels": CONSENT_KIND_LABELS,
        "notice": "已发布新版本：已同意旧版本的客户下次提交申请前需重新同意" if request.query_params.get("done") == "published"
        else None,
    })
