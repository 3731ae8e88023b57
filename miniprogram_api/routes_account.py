"""Account endpoints: login, logout, me, phone binding, consents, referral."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from core.db import unit_of_work
from core.web import SessionDep
from crm import customers
from lending import consent
from miniprogram_api import auth, referral
from miniprogram_api.deps import (
    Customer,
    Wechat,
    client_ip,
    id_last4_limit,
    login_limit,
    phone_limit,
    submit_limit,
)
from miniprogram_api.responses import (
    ERROR_RESPONSES,
    CommissionOut,
    ConsentDocumentBody,
    ConsentList,
    ConsentRecordOut,
    InviteeList,
    LoginOut,
    Me,
    Ok,
    PayeeOut,
    ReferralCode,
    WithdrawalOut,
)
from miniprogram_api.schemas import (
    ConsentIn,
    LoginIn,
    PayeeIn,
    PhoneCodeIn,
    PhoneConfirmIn,
    PhoneEncryptedIn,
    WithdrawIn,
    to_fen,
)
from miniprogram_api.wechat import config

router = APIRouter(responses=ERROR_RESPONSES)


def _me(customer: Any) -> dict[str, Any]:
    from crm.models import STAGE_LABELS

    return {"id": customer.id, "name": customer.name or None, "phone_masked": customer.phone_masked,
            "id_number_masked": customer.id_number_masked, "phone_bound": bool(customer.phone_index),
            "stage": customer.stage, "stage_label": STAGE_LABELS.get(customer.stage, customer.stage)}


@router.post("/login", summary="登录（wx.login 的 code 换取 token）", dependencies=[Depends(login_limit)], tags=["账户"], response_model=LoginOut)
def login(body: LoginIn, request: Request, session: SessionDep, client: Wechat) -> dict[str, Any]:
    with unit_of_work() as claim:  # before the request's transaction: none stays open over the HTTP call
        code = auth.claim_code(claim, body.code)
    found = client.code2session(code)
    result = auth.login(session, found, scene=body.scene, ip=client_ip(request),
                        user_agent=request.headers.get("user-agent"))
    return {"token": result.token, "expires_at": result.expires_at, "new_customer": result.created,
            "attributed": result.attributed, "customer": _me(result.customer)}


@router.post("/logout", summary="退出登录", tags=["账户"], response_model=Ok)
def logout(ident: Customer, session: SessionDep) -> dict[str, Any]:
    auth.logout(session, ident)
    return {"ok": True}


@router.get("/me", summary="我的资料（脱敏）", tags=["账户"], response_model=Me)
def me(ident: Customer, session: SessionDep) -> dict[str, Any]:
    return _me(customers.get_customer(session, None, ident.customer_id))


@router.post("/phone/code", summary="绑定手机号（getPhoneNumber 的 code）", dependencies=[Depends(phone_limit)],
             tags=["账户"], response_model=Me)
def bind_phone_code(body: PhoneCodeIn, ident: Customer, request: Request, session: SessionDep,
                    client: Wechat) -> dict[str, Any]:
    customer = auth.bind_phone_by_code(session, client, ident, body.code, ip=client_ip(request))
    return _me(customer)


@router.post("/phone/encrypted", summary="绑定手机号（旧版 encryptedData + iv）", dependencies=[Depends(phone_limit)],
             tags=["账户"], response_model=Me)
def bind_phone_encrypted(body: PhoneEncryptedIn, ident: Customer, request: Request,
                         session: SessionDep) -> dict[str, Any]:
    customer = auth.bind_phone_by_encrypted_data(session, ident, body.encrypted_data, body.iv, config().appid,
                                                 ip=client_ip(request))
    return _me(customer)


@router.post("/phone/confirm", summary="绑定手机号：核对身份证号后四位（mp_id_last4_required 之后）",
             dependencies=[Depends(phone_limit)], tags=["账户"], response_model=Me)
def bind_phone_confirm(body: PhoneConfirmIn, ident: Customer, request: Request, session: SessionDep) -> dict[str, Any]:
    id_last4_limit(ident, body.binding_token)  # counted before the request's transaction: wrong guesses count
    customer = auth.confirm_binding(session, ident, body.binding_token, body.id_last4, ip=client_ip(request))
    return _me(customer)


# --- consents -------------------------------------------------------------------------------------

def _doc(doc: Any, with_body: bool = False) -> dict[str, Any]:
    out = {"id": doc.id, "code": doc.code, "kind": doc.kind, "version": doc.version, "title": doc.title,
           "funder_id": doc.funder_id, "published_at": doc.published_at}
    if with_body:
        out["body"] = doc.body
    return out


@router.get("/consents", summary="协议及我的同意状态", tags=["授权"], response_model=ConsentList)
def consents(ident: Customer, session: SessionDep) -> dict[str, Any]:
    return {"documents": [{**_doc(s.document), "agreed_version": s.agreed_version, "agreed": s.valid,
                           "withdrawn": s.withdrawn} for s in consent.states(session, ident.customer_id)]}


@router.get("/consents/{document_id}", summary="协议全文", tags=["授权"], response_model=ConsentDocumentBody)
def consent_document(document_id: int, ident: Customer, session: SessionDep) -> dict[str, Any]:
    return _doc(consent.get_document(session, document_id), with_body=True)


@router.post("/consents", summary="同意协议（明示同意）", tags=["授权"], response_model=ConsentRecordOut)
def grant_consent(body: ConsentIn, ident: Customer, request: Request, session: SessionDep) -> dict[str, Any]:
    row = consent.grant(session, ident.customer_id, body.document_id, ip=client_ip(request),
                        user_agent=request.headers.get("user-agent"))
    return {"id": row.id, "document_id": row.document_id, "version": row.version, "action": row.action, "at": row.at}


@router.post("/consents/{document_id}/withdraw", summary="撤回同意", tags=["授权"], response_model=ConsentRecordOut)
def withdraw_consent(document_id: int, ident: Customer, request: Request, session: SessionDep) -> dict[str, Any]:
    row = consent.withdraw(session, ident.customer_id, document_id, ip=client_ip(request),
                           user_agent=request.headers.get("user-agent"))
    return {"id": row.id, "document_id": row.document_id, "version": row.version, "action": row.action, "at": row.at}


# --- referral -------------------------------------------------------------------------------------

@router.get("/referral", summary="我的推荐码与分享场景值", tags=["推荐"], response_model=ReferralCode)
def my_referral(ident: Customer, session: SessionDep) -> dict[str, Any]:
    code = referral.my_referrer(session, ident.customer_id).code
    return {"code": code, "scene": referral.scene_for(code), "page": referral.SHARE_PAGE}


@router.get("/referral/qrcode", summary="我的分享小程序码（PNG）", tags=["推荐"],
            responses={200: {"content": {"image/png": {}}}})
def my_qrcode(ident: Customer, client: Wechat) -> Response:
    with unit_of_work() as session:  # committed before the HTTP call to WeChat
        code = referral.my_referrer(session, ident.customer_id).code
    image = client.wxacode_unlimited(referral.scene_for(code), referral.SHARE_PAGE)
    return Response(image, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/referral/invitees", summary="我邀请的好友（脱敏）", tags=["推荐"], response_model=InviteeList)
def my_invitees(ident: Customer, session: SessionDep) -> dict[str, Any]:
    from crm.models import STAGE_LABELS

    return {"invitees": [{"name": i.name_masked, "phone_masked": i.phone_masked, "at": i.attributed_at,
                          "stage_label": STAGE_LABELS.get(i.stage, i.stage)}
                         for i in referral.invitees(session, ident.customer_id)]}


@router.get("/referral/commission", summary="我的佣金：余额、明细与提现记录", tags=["推荐"], response_model=CommissionOut)
def my_commission(ident: Customer, session: SessionDep) -> dict[str, Any]:
    return referral.balance_and_ledger(session, ident.customer_id)


@router.put("/referral/payee", summary="设置收款账户（账号加密保存，仅显示脱敏）", tags=["推荐"], response_model=PayeeOut)
def set_payee(body: PayeeIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    return referral.set_payee(session, ident.customer_id, name=body.name, channel=body.channel, bank=body.bank,
                              account=body.account)


@router.post("/referral/withdrawals", summary="申请提现（不超过可提现余额）", dependencies=[Depends(submit_limit)],
             tags=["推荐"], response_model=WithdrawalOut)
def request_withdrawal(body: WithdrawIn, ident: Customer, session: SessionDep) -> dict[str, Any]:
    return referral.withdraw(session, ident.customer_id, to_fen(body.amount))
