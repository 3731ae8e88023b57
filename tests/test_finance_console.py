"""Finance console pages: every page renders in Chinese within the viewer's scope; forms refuse bad input
with the reason and write nothing; printable pages."""

from __future__ import annotations

from sqlalchemy import func, select

from finance import deposits, settlements
from finance.models import Deposit
from finance.settlements import ChargeInput
from tests.finance_support import V, approved_agreement, make_world, working_agreement
from tests.test_admin_support import console_client, log_in


def test_finance_pages_render_for_finance(session):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=100_000)
    s = settlements.record_disbursement(session, a.id, funder_name="某银行", funder_type="bank", amount=20_000_000,
                                        disbursed_date=None, viewer=V(w.finance))
    settlements.charge(session, s.id, ChargeInput(expected_revision=s.revision, payments=[("bank", 580_000)], rebates=[("渠道甲", 50_000)]),
                       viewer=V(w.finance))
    d = deposits.deposits_of(session, a.id)[0]
    client = console_client()
    log_in(client, session, w.finance)
    for url, words in (
        ("/console/finance/agreements", "签单"), (f"/console/finance/agreements/{a.id}", "综合年化成本"),
        ("/console/finance/agreements/new", "录入签单"), ("/console/finance/deposits", "定金列表"),
        ("/console/finance/work", "做单中心"), ("/console/finance/settlements", "结算管理"),
        (f"/console/finance/settlements/{s.id}", "内部凭证确认"), ("/console/finance/ledger?check=1", "总账校验通过"),
        (f"/console/finance/deposits/{d.id}/receipt?paper=a5", "定金结算清单"),
        (f"/console/finance/settlements/{s.id}/voucher?kind=internal", "渠道甲"),
        ("/console/finance/reimbursements", "提交报销"), ("/console/finance/performance", "按资方类型排名"),
    ):
        page = client.get(url)
        assert page.status_code == 200, (url, page.text[:500])
        assert words in page.text, url
    customer = client.get(f"/console/finance/settlements/{s.id}/voucher?kind=customer")
    assert "服务费结算凭证" in customer.text and "渠道甲" not in customer.text  # rebates only on the internal one
    nav = client.get("/console/finance/agreements").text
    assert 'href="/console/finance/settlements"' in nav


def test_a_refund_above_the_deposit_from_the_page_is_refused_and_writes_nothing(session):
    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=100_000)
    d = deposits.deposits_of(session, a.id)[0]
    client = console_client()
    csrf = log_in(client, session, w.officer)
    r = client.post(f"/console/finance/deposits/{d.id}/refunds", data={
        "csrf_token": csrf, "agreement_id": a.id, "amount": "1000.01", "method": "cash", "reason": "不做了"})
    assert r.status_code == 422 and "超过可退金额" in r.text
    r = client.post(f"/console/finance/agreements/{a.id}/deposits", data={
        "csrf_token": csrf, "amount": "10.001", "method": "cash"})
    assert r.status_code == 422 and "不足一分" in r.text
    assert session.scalar(select(func.count()).select_from(Deposit)) == 1


def test_other_salespeople_do_not_see_the_case(session):
    w = make_world(session)
    a = approved_agreement(session, w)
    client = console_client()
    log_in(client, session, w.other_sales)
    assert client.get(f"/console/finance/agreements/{a.id}").status_code == 404
    assert a.number not in client.get("/console/finance/agreements").text
    assert client.get("/console/finance/ledger").status_code == 403


def test_a_reimbursement_from_the_page(session):
    w = make_world(session)
    a = working_agreement(session, w)
    client = console_client()
    csrf = log_in(client, session, w.officer)
    bad = client.post("/console/finance/reimbursements", data={
        "csrf_token": csrf, "agreement_id": a.id, "category": "交通费", "amount": "-5"})
    assert bad.status_code == 422 and "负数" in bad.text
    ok = client.post("/console/finance/reimbursements", data={
        "csrf_token": csrf, "agreement_id": a.id, "category": "交通费", "amount": "35.50"}, follow_redirects=False)
    assert ok.status_code == 303
    page = client.get("/console/finance/reimbursements?done=submitted")
    assert "报销已提交" in page.text and "¥35.50" in page.text


def test_the_deposit_receipt_pdf_carries_the_numbers_and_amounts(session):
    import io

    from pypdf import PdfReader

    w = make_world(session)
    a = working_agreement(session, w, deposit_amount=123_456)
    d = deposits.deposits_of(session, a.id)[0]
    refund = deposits.request_refund(session, d.id, amount=23_456, method="cash", reason="部分退还", viewer=V(w.officer))
    deposits.decide_refund(session, refund.id, accept=True, viewer=V(w.finance))
    client = console_client()
    log_in(client, session, w.finance)
    for paper, width in (("", 595), ("?paper=a5", 420)):
        r = client.get(f"/console/finance/deposits/{d.id}/receipt.pdf{paper}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(r.content))
        assert len(reader.pages) == 1 and round(float(reader.pages[0].mediabox.width)) == width
        text = reader.pages[0].extract_text()
        for figure in ("定金结算清单", "本次收取（元）", a.number, f"D{d.id:06d}", "1,234.56", "234.56", "1,000.00",
                       d.received_date.isoformat()):
            assert figure in text, (figure, text)
        assert b"/STSong-Light" in r.content  # the built-in CID font, nothing embedded or downloaded
    other = console_client()
    log_in(other, session, w.other_sales)
    assert other.get(f"/console/finance/deposits/{d.id}/receipt.pdf").status_code == 404  # out of scope


def test_marketing_cost_and_full_amendment_forms(session):
    from finance import agreements
    from finance.models import Reimbursement

    w = make_world(session)
    a = approved_agreement(session, w)
    client = console_client()
    csrf = log_in(client, session, w.sales)
    page = client.get("/console/finance/reimbursements").text
    assert "登记营销费用" in page and f'value="{w.customer.id}"' in page
    r = client.post("/console/finance/reimbursements", data={
        "csrf_token": csrf, "kind": "marketing", "customer_id": w.customer.id, "category": "渠道推广",
        "amount": "300.50"})
    assert r.status_code == 303, r.text[:500]
    row = session.scalar(select(Reimbursement).where(Reimbursement.kind == "marketing"))
    assert (row.customer_id, row.agreement_id, row.category, row.amount) == (w.customer.id, None, "渠道推广", 30_050)
    r = client.post("/console/finance/reimbursements", data={
        "csrf_token": csrf, "kind": "marketing", "customer_id": w.customer.id, "category": "交通费", "amount": "1"})
    assert r.status_code == 422 and "报销类别不正确" in r.text  # a case category is not a marketing one
    r = client.post(f"/console/finance/agreements/{a.id}/amend", data={
        "csrf_token": csrf, "term_months": "24", "repayment_method": "equal_principal", "funder_annual_rate": "7.2",
        "funder_fee_amount": "100", "reason": "客户改为两年期"})
    assert r.status_code == 303, r.text[:500]
    pending = agreements.amendments(session, a.id)[0]
    assert pending.status == "pending"
    assert (pending.after["term_months"], pending.after["repayment_method"]) == (24, "equal_principal")
