"""The mini-program API is buildable from its docs: every operation's answer has a model in the OpenAPI
schema, the error code table is the codes the code raises, and a draft reads and writes one shape."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core import validation_messages
from core.errors import AppError, RateLimited
from miniprogram_api import errors, exceptions, referral, routes_payments
from miniprogram_api.errors import ERRORS, PASSED_THROUGH, MpErrorCode
from miniprogram_api.responses import DraftRead
from miniprogram_api.schemas import DraftFields, DraftIn
from miniprogram_api.web import create_mp_app
from tests.mp_support import make_offer, ready_draft

ROOT = Path(__file__).resolve().parent.parent
BINARY = {("get", "/referral/qrcode")}  # a PNG, not JSON


@pytest.fixture(scope="module")
def schema():
    return create_mp_app().openapi()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_every_operation_answers_a_named_model(schema):
    ops = list(_operations(schema))
    assert len(ops) >= 40
    bare = []
    for method, path, op in ops:
        if (method, path) in BINARY:
            assert "image/png" in op["responses"]["200"]["content"]
            continue
        body = op["responses"]["200"]["content"]["application/json"]["schema"]
        if "$ref" not in body:
            bare.append(f"{method.upper()} {path}: {body}")
    assert bare == []


def test_every_model_declares_its_fields(schema):
    """No answer model (nor any model inside one) is a bare dict: each names its properties."""
    loose = [name for name, comp in schema["components"]["schemas"].items()
             if comp.get("type") == "object" and not comp.get("properties")]
    assert loose == []


def test_every_operation_documents_the_error_shape(schema):
    for method, path, op in _operations(schema):
        for status in ("401", "404", "422"):
            ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorOut"), (method, path, status)


def _raised_codes() -> set[str]:
    """Every code the channel can answer with, read from the code: the exception classes' codes, every
    ``code=`` in a raise (as MpErrorCode members in miniprogram_api, as literals in lending.consent), and the
    generic refusals the channel raises itself (malformed request, rate limits)."""
    from lending import consent_exceptions

    codes: set[str] = {validation_messages.CODE, RateLimited.code}
    modules = (exceptions, consent_exceptions, referral, routes_payments)
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, AppError) and value.__module__ == module.__name__ \
                    and value is not consent_exceptions.ConsentVersionTaken:  # publishing only: console and CLI
                codes.add(value.code)
    for path in (ROOT / "miniprogram_api").glob("*.py"):
        if path.name == "errors.py":
            continue
        text = path.read_text(encoding="utf-8")
        codes |= {MpErrorCode[name].value for name in re.findall(r"MpErrorCode\.([A-Z0-9_]+)", text)}
        literal = re.findall(r'code\s*=\s*"([a-z0-9_]+)"', text)
        assert literal == [], f"{path.name}: codes must come from MpErrorCode, found {literal}"
    for path in (ROOT / "lending" / "consent.py",):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        codes |= {kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                  for kw in node.keywords if kw.arg == "code" and isinstance(kw.value, ast.Constant)}
    from crm.exceptions import DepartmentNotFound

    codes.add(DepartmentNotFound.code)  # routes_loans raises it for a branch one cannot book
    return codes


def test_the_error_table_is_exactly_the_codes_the_code_raises():
    assert set(MpErrorCode) == _raised_codes()
    assert set(ERRORS) == set(MpErrorCode)
    assert all(re.search(r"[\u4e00-\u9fff]", message) for _, message in ERRORS.values())
    # the exception classes agree with the table on their status
    for cls in (*vars(exceptions).values(),):
        if isinstance(cls, type) and issubclass(cls, AppError) and cls.__module__ == exceptions.__name__:
            assert ERRORS[MpErrorCode(cls.code)][0] == cls.status, cls.__name__


def test_passed_through_domain_codes_are_not_channel_codes():
    assert not {cls.code for cls in PASSED_THROUGH} & set(MpErrorCode)


def test_the_docs_table_is_the_error_table():
    text = (ROOT / "docs" / "miniprogram-api.md").read_text(encoding="utf-8")
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    table, passed = section.split("\n### ", 1)
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (\d{3}) \| (.+?) \|$", table, re.M)
    assert {code: (int(status), message) for code, status, message in rows} == \
        {code.value: value for code, value in ERRORS.items()}
    assert all(f"`{cls.code}`" in passed for cls in PASSED_THROUGH)
    assert errors.__doc__ and "docs/miniprogram-api.md" in errors.__doc__


def test_a_draft_reads_in_the_shape_it_is_written():
    written = set(DraftIn.model_fields)
    assert written == set(DraftFields.model_fields)
    assert written <= set(DraftRead.model_fields)


def test_a_draft_read_and_put_back_unchanged_changes_nothing(session, mp):
    product = make_offer(session)
    mp.login("alice")
    draft_id = ready_draft(mp, product.id)
    before = mp.get(f"/applications/{draft_id}").json()
    assert before["id_number"].count("*") >= 8 and before["name"] == "张三" and before["income"] == "12000.00"
    body = {k: before[k] for k in DraftFields.model_fields}
    after = mp.client.put(f"/mp/applications/{draft_id}", json=body, headers=mp.headers)
    assert after.status_code == 200, after.text
    changed = {k for k in DraftFields.model_fields if after.json()[k] != before[k]}
    assert changed == set()
    body["occupation"] = "教师"
    assert mp.client.put(f"/mp/applications/{draft_id}", json=body, headers=mp.headers).json()["occupation"] == "教师"
