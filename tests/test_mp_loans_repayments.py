"""My loans (mini-program) after repayments: paid and outstanding per installment, penalty included."""

from __future__ import annotations

from datetime import date

from lending.servicing import rollover
from miniprogram_api import loans
from tests.servicing_support import days, make_loan, on, pay

DUE = date(2026, 12, 23)


def test_my_loans_show_paid_penalty_and_outstanding(session):
    w, loan = make_loan(session)
    on(DUE + days(10))
    rollover.roll_over(session)
    pay(session, w, loan, 473 + 12_000 + 4_619)  # penalty 4.73, interest 120.00, principal 46.19
    mine = loans.my_loans(session, loan.customer_id)["loans"][0]
    first = mine["schedule"][0]
    assert (first["penalty"], first["paid_penalty"], first["paid_interest"], first["paid_principal"]) == \
        ("4.73", "4.73", "120.00", "46.19")
    assert first["paid"] == "170.92" and first["outstanding"] == "900.00" and first["status"] == "overdue"
    assert mine["overdue"] is True and mine["overdue_days"] == 10 and mine["paid_total"] == "170.92"
    assert mine["next_due_amount"] == "900.00"
