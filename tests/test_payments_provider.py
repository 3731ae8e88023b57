"""The WeChat Pay adapter (wechatpayv3) against the payment simulator over real HTTP: signed requests,
signed answers, JSAPI, query, close, refund, bill, withholding."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from wechatpayv3.utils import rsa_verify

from payments import config
from payments.exceptions import ProviderRefused, ProviderUnavailable
from payments.wechatpay import WeChatPayProvider

KEYS = Path(__file__).parent / "payments_vectors"
EXPIRE = datetime.now(UTC) + timedelta(minutes=30)


def _order(p, no="PTESTJSAPI0001", amount=12_345):
    return p.create_jsapi(out_trade_no=no, description="贷款还款", amount=amount, openid="o-openid-1", expire_at=EXPIRE)


def test_jsapi_order_and_signed_mini_program_parameters(pay_server):
    p = config.provider()
    prepay_id = _order(p)
    assert prepay_id.startswith("wx")
    assert _order(p) == prepay_id  # the same order again: the same prepay
    params = p.mp_pay_params(prepay_id)
    assert params["package"] == f"prepay_id={prepay_id}" and params["signType"] == "RSA"
    merchant_public = load_pem_public_key((config.KEY_DIR / "merchant_public.pem").read_bytes())
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}"
    first, _, rest = message.partition("\n")
    second, _, third = rest.partition("\n")
    assert rsa_verify(first, second, third, params["paySign"], merchant_public)


def test_query_follows_the_payment(pay_server):
    p = config.provider()
    _order(p, "PTESTQUERY0001")
    assert p.query("PTESTQUERY0001").trade_state == "NOTPAY"
    pay_server.pay("PTESTQUERY0001", notify=False)
    result = p.query("PTESTQUERY0001")
    assert (result.trade_state, result.amount) == ("SUCCESS", 12_345)
    assert result.transaction_id and result.success_at is not None
    assert p.query("PNOSUCHORDER01").trade_state == "NOTFOUND"


def test_close_an_unpaid_order_but_not_a_paid_one(pay_server):
    p = config.provider()
    _order(p, "PTESTCLOSE0001")
    p.close("PTESTCLOSE0001")
    assert p.query("PTESTCLOSE0001").trade_state == "CLOSED"
    _order(p, "PTESTCLOSE0002")
    pay_server.pay("PTESTCLOSE0002", notify=False)
    with pytest.raises(ProviderRefused):
        p.close("PTESTCLOSE0002")


def test_refund_in_full_once_and_never_more_than_paid(pay_server):
    p = config.provider()
    _order(p, "PTESTREFUND001", amount=5_000)
    pay_server.pay("PTESTREFUND001", notify=False)
    result = p.refund(out_refund_no="RTESTREFUND001", out_trade_no="PTESTREFUND001", refund_amount=5_000,
                      total_amount=5_000, reason="重复支付")
    assert result.status == "SUCCESS" and result.refund_id
    assert p.query_refund("RTESTREFUND001").status == "SUCCESS"
    assert p.query("PTESTREFUND001").trade_state == "REFUND"
    with pytest.raises(ProviderRefused):
        p.refund(out_refund_no="RTESTREFUND002", out_trade_no="PTESTREFUND001", refund_amount=1,
                 total_amount=5_000, reason="再退一次")


def test_daily_bill_lists_the_day_s_payments_in_fen(pay_server):
    p = config.provider()
    _order(p, "PTESTBILL00001", amount=10_001)
    pay_server.pay("PTESTBILL00001", notify=False)
    success_day = datetime.fromisoformat(pay_server.sim_order("PTESTBILL00001")["success_time"]).date()
    lines = p.trade_bill(success_day)
    line = next(x for x in lines if x.out_trade_no == "PTESTBILL00001")
    assert (line.amount, line.trade_state) == (10_001, "SUCCESS")
    assert p.trade_bill(success_day - timedelta(days=30)) == []


def test_withholding_contract_debit_and_query(pay_server):
    p = config.provider()
    contract = p.sign_withholding_contract(contract_code="WATEST0001", account_no="6222020200112233445",
                                           holder_name="王先生", bank_name="工商银行", max_amount=100_000)
    pay_server.admin("withhold_next", {"outcomes": ["fail"]})
    assert p.withhold(out_trade_no="WTEST00000001", contract_id=contract, amount=3_000,
                      description="代扣").trade_state == "ACCEPT"
    assert p.query_withholding("WTEST00000001").trade_state == "PAYERROR"
    p.withhold(out_trade_no="WTEST00000002", contract_id=contract, amount=3_000, description="代扣")
    assert p.query_withholding("WTEST00000002").trade_state == "SUCCESS"
    with pytest.raises(ProviderRefused):  # above the authorised limit
        p.withhold(out_trade_no="WTEST00000003", contract_id=contract, amount=100_001, description="代扣")
    p.terminate_withholding_contract(contract, "客户撤销")
    with pytest.raises(ProviderRefused):
        p.withhold(out_trade_no="WTEST00000004", contract_id=contract, amount=3_000, description="代扣")


def _provider(**overrides):
    cfg = config.get()
    kwargs = dict(mchid=cfg.mchid, appid=cfg.appid, serial_no=cfg.serial_no, private_key_pem=cfg.private_key_pem,
                  apiv3_key=cfg.apiv3_key, platform_public_key_pem=cfg.platform_public_key_pem,
                  platform_public_key_id=cfg.platform_public_key_id, notify_url=cfg.notify_url,
                  api_base=cfg.api_base)
    return WeChatPayProvider(**{**kwargs, **overrides})


def test_the_simulator_refuses_a_request_signed_with_another_merchant_key(pay_server):
    foreign = _provider(private_key_pem=(KEYS / "platform_private.pem").read_text())
    with pytest.raises(ProviderRefused):
        foreign.query("PANYORDER00001")
    assert not pay_server.requests("PANYORDER00001")


def test_an_answer_not_signed_by_the_platform_key_we_trust_is_not_believed(pay_server):
    _order(config.provider(), "PTESTTRUST0001")
    trusting_other = _provider(platform_public_key_pem=(KEYS / "platform_public.pem").read_text())
    with pytest.raises(ProviderUnavailable):
        trusting_other.query("PTESTTRUST0001")
    with pytest.raises(ProviderUnavailable):
        _order(trusting_other, "PTESTTRUST0002")



def test_the_simulators_controls_answer_this_machine_only(pay_server):
    # A loopback peer with X-Forwarded-For is a reverse proxy relaying somebody else (issue 20 item 2).
    relayed = pay_server.http.get(pay_server.sim_url + "/_admin/state", headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status_code == 403
    assert pay_server.http.get(pay_server.sim_url + "/_admin/state").status_code == 200
