"""Finance figures on the finance and the owner's dashboards: fee revenue, receivables, deposits held,
reimbursements to pay — each equal to the hand count, limited by the case scope, and drilling down to the
finance list that shows exactly its rows."""

from __future__ import annotations

import re

from analytics import dashboards, metrics
from analytics.metrics import Filters
from core import clock
from finance import deposits, reimbursements, settlements
from finance.settlements import ChargeInput
from tests.factories import make_customer, make_staff
from tests.finance_support import V, arrived, make_world, working_agreement
from tests.test_admin_support import console_client, log_in

# service fee 3% of 200,000 元 = 6,000 + 评估费 800 − deposit 5,000 applied = 1,800 元 due at settlement
DUE = 180_000
DEPOSIT = 500_000
REVENUE = DUE + DEPOSIT  # 6,800 元 of fees kept


def _case(session, w, customer_name: str):
    w.customer = make_customer(session, owner=w.sales, name=customer_name)
    arrived(session, w.customer, w.sales)
    a = working_agreement(session, w, deposit_amount=DEPOSIT)
    return a


def _disbursed(session, w, a, funder_type: str = "bank"):
    return settlements.record_disbursement(session, a.id, funder_name="某城商行", funder_type=funder_type,
                                           amount=20_000_000, disbursed_date=None, viewer=V(w.finance))


def _settled(session, w, a, funder_type: str):
    s = _disbursed(session, w, a, funder_type)
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("wechat", DUE)]), viewer=V(w.finance))
    for who, staff in (("officer", w.officer), ("supervisor", w.supervisor), ("sales", w.sales)):
        settlements.confirm_voucher(session, s.id, who, revision=s.revision, viewer=V(staff))
    settlements.close(session, s.id, viewer=V(w.finance))
    return s


def _world(session):
    """Two settled cases (bank, consumer finance), one charged and not closed, one still working (its deposit
    held), one confirmed reimbursement."""
    w = make_world(session)
    _settled(session, w, _case(session, w, "甲一"), "bank")
    _settled(session, w, _case(session, w, "乙二"), "consumer_finance")
    charged = _disbursed(session, w, _case(session, w, "丙三"))
    settlements.charge(session, charged.id, ChargeInput(expected_revision=charged.revision, payments=[("wechat", DUE)]), viewer=V(w.finance))
    working = _case(session, w, "丁四")
    r = reimbursements.submit(session, agreement_id=working.id, category="交通费", amount=12_300,
                              viewer=V(w.officer))
    reimbursements.confirm(session, r.id, viewer=V(w.finance))
    return w


def test_finance_figures_equal_the_hand_count_and_follow_the_case_scope(session):
    w = _world(session)
    month = Filters.this_month()
    fin = V(w.finance)
    assert metrics.value(session, fin, "fee_revenue", month) == 2 * REVENUE
    assert metrics.value(session, fin, "settled_cases", month) == 2
    assert metrics.value(session, fin, "receivables", month) == DUE
    # the charged case's deposit is still held until 结单, and so is the working case's
    assert metrics.value(session, fin, "deposits_held", month) == 2 * DEPOSIT
    assert metrics.value(session, fin, "reimbursements_unpaid", month) == 12_300
    assert metrics.by_dimension(session, fin, "fee_revenue", "funder_type", month) == [
        ("bank", REVENUE), ("consumer_finance", REVENUE)]
    # by the settlement's disbursed date (today): one day, and crossed with the funder type
    assert metrics.by_dimension(session, fin, "fee_revenue", "day", month) == [(clock.today(), 2 * REVENUE)]
    assert metrics.by_dimensions(session, fin, "settled_cases", ("month", "funder_type"), month) == [
        ((month.start, "bank"), 1), ((month.start, "consumer_finance"), 1)]
    # last month had nothing; a salesperson of another team sees none of these cases
    assert metrics.value(session, fin, "fee_revenue", month.previous()) == 0
    stranger = V(w.other_sales)
    assert [metrics.value(session, stranger, k, month) for k in ("fee_revenue", "receivables", "deposits_held")] \
        == [0, 0, 0]


def test_finance_and_owner_dashboards_link_each_money_figure_to_its_list(session):
    w = _world(session)
    month = Filters.this_month()
    owner = make_staff(session, role="admin", department=w.sales.department, data_scope="all")
    for staff, kind in ((w.finance, "finance"), (owner, "manager")):
        board = dashboards.build(session, V(staff), month)
        assert board.kind == kind
        cards = {c.key: c for c in board.cards}
        assert cards["fee_revenue"].value == 2 * REVENUE and cards["deposits_held"].value == 2 * DEPOSIT
        chart = board.charts["revenue_by_funder_type"]
        assert [(label, amount) for label, amount, _ in chart["items"]] == [("银行", REVENUE), ("消金", REVENUE)]
        client = console_client()
        log_in(client, session, staff)
        rows = {
            "fee_revenue": (r'<a href="/console/finance/settlements/\d+">', 2),
            "receivables": (r'<a href="/console/finance/settlements/\d+">', 1),
            "deposits_held": (r"<tr><td>#\d+</td>", 2),
        }
        for key, (pattern, expected) in rows.items():
            page = client.get(cards[key].url)
            assert page.status_code == 200, cards[key].url
            assert len(re.findall(pattern, page.text)) == expected, (key, cards[key].url)
        bank = client.get(chart["items"][0][2]).text
        assert len(re.findall(r'<a href="/console/finance/settlements/\d+">', bank)) == 1
    page = client.get("/console/").text
    assert "服务费收入按资方类型" in page and "在持定金" in page


def test_the_deposit_list_held_filter_leaves_out_settled_cases(session):
    w = _world(session)
    all_confirmed = deposits.deposit_list(session, V(w.finance), status="confirmed")
    held = deposits.deposit_list(session, V(w.finance), held=True)
    assert len(all_confirmed) == 4 and len(held) == 2
    assert {a.status for _, a, _ in held} == {"working", "disbursed"}
