"""The prepayment quote through every channel: the staff API (quote, booking with the borrower's choice, schedule
versions), the mini-program (my own loan only) and `scrm loan prepay-quote --json`."""

from __future__ import annotations

import json
from datetime import date

from click.testing import CliRunner

from core.cli import main
from crm import auth_service
from miniprogram_api import loans as mp_loans
from tests.servicing_support import make_loan, on, pay
from tests.test_admin_support import bearer, console_client

P1, I1 = 94_619, 12_000
B2 = 1_200_000 - P1
DAY = date(2027, 1, 8)


def _loan(session):
    w, loan = make_loan(session)
    on(date(2026, 12, 23))
    pay(session, w, loan, P1 + I1)
    on(DAY)
    return w, loan


def test_the_api_quotes_books_a_prepayment_and_lists_both_versions(session):
    w, loan = _loan(session)
    api = console_client()
    token, _ = auth_service.issue_api_token(session, w.finance.id, "测试")
    fin = bearer(token)
    q = api.get(f"/api/v1/lending/loans/{loan.id}/prepayment-quote", headers=fin,
                params={"date": DAY.isoformat()})
    assert q.status_code == 200, q.text
    assert q.json()["kind"] == "payoff" and q.json()["total_amount"] == B2 + 5_895
    partial = api.get(f"/api/v1/lending/loans/{loan.id}/prepayment-quote", headers=fin,
                      params={"date": DAY.isoformat(), "amount": 500_000, "mode": "keep_installment"}).json()
    assert partial["kind"] == "prepayment" and partial["principal_amount"] == 497_347
    late = api.get(f"/api/v1/lending/loans/{loan.id}/prepayment-quote", headers=fin,
                   params={"date": "2028-01-01"})
    assert late.status_code == 422 and late.json()["code"] == "prepayment_refused" and "到期日" in late.json()["message"]
    booked = api.post(f"/api/v1/lending/loans/{loan.id}/repayments", headers=fin, json={
        "amount": 500_000, "external_reference": "API-PRE-1", "prepayment_mode": "keep_installment"})
    assert booked.status_code == 201, booked.text
    assert booked.json()["purpose"] == "prepayment"
    history = api.get(f"/api/v1/lending/loans/{loan.id}/schedule-versions", headers=fin).json()
    assert [(v["version"], v["reason"]) for v in history] == [(1, "original"), (2, "prepayment")]
    assert len(history[0]["rows"]) == 12 and len(history[1]["rows"]) == 7
    detail = api.get(f"/api/v1/lending/loans/{loan.id}", headers=fin).json()
    assert len(detail["installments"]) == 7


def test_the_mini_program_quotes_the_borrowers_own_loan_in_yuan(session, mp):
    _, loan = _loan(session)
    q = mp_loans.prepayment_quote(session, loan.customer_id, loan.id, DAY, None, "keep_term")
    assert q["kind_label"] == "提前结清" and q["total"] == "11112.76" and q["accrued_interest"] == "58.95"
    assert q["schedule"][-1]["number"] == 2
    mp.login("someone-else")
    other = mp.get(f"/loans/{loan.id}/prepayment-quote", params={"date": DAY.isoformat()})
    assert other.status_code == 404


def test_the_cli_prints_one_json_object_and_refuses_bad_input_in_chinese(session):
    _, loan = _loan(session)
    runner = CliRunner()
    ok = runner.invoke(main, ["loan", "prepay-quote", "--loan", str(loan.id), "--date", DAY.isoformat(), "--json"],
                       catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert (data["kind"], data["total"], data["principal"], data["accrued_interest"]) == \
        ("payoff", "11112.76", "11053.81", "58.95")
    partial = runner.invoke(main, ["loan", "prepay-quote", "--loan", str(loan.id), "--date", DAY.isoformat(),
                                   "--amount", "5000", "--json"], catch_exceptions=False)
    assert json.loads(partial.output)["principal"] == "4973.47"
    text = runner.invoke(main, ["loan", "prepay-quote", "--loan", str(loan.id), "--date", DAY.isoformat()],
                         catch_exceptions=False)
    assert "提前结清" in text.output and "¥11,112.76" in text.output
    too_much = runner.invoke(main, ["loan", "prepay-quote", "--loan", str(loan.id), "--date", DAY.isoformat(),
                                    "--amount", "20000"], catch_exceptions=False)
    assert too_much.exit_code == 1 and "超过" in too_much.output
    early = runner.invoke(main, ["loan", "prepay-quote", "--loan", str(loan.id), "--date", "2026-12-01"],
                          catch_exceptions=False)
    assert early.exit_code == 1 and "最近一笔交易" in early.output
