"""Request bodies of the mini-program API, and the Chinese rendering of validation errors.

Money crosses the API as yuan strings ("10000.00"); a JSON number is refused (no float near money).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr

from core.money import parse_rate, yuan_to_fen
from miniprogram_api.exceptions import MpValidation

_YUAN_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")

LABELS = {
    "code": "登录凭证", "scene": "场景值", "encrypted_data": "加密数据", "iv": "初始向量", "document_id": "协议",
    "amount": "金额", "term_months": "期限", "product_id": "产品", "annual_rate": "年利率",
    "repayment_method": "还款方式", "name": "姓名", "id_number": "身份证号", "income": "月收入", "occupation": "职业",
    "employer": "工作单位", "purpose": "贷款用途", "idempotency_key": "请求标识", "department_id": "网点",
    "scheduled_at": "预约时间", "note": "备注", "reason": "原因", "kind": "材料类型", "file": "文件",
    "draft_id": "申请", "body": "请求内容", "binding_token": "绑定凭证", "id_last4": "身份证号后四位",
    "account_no": "银行卡号", "holder_name": "持卡人姓名", "bank_name": "开户银行",
    "max_amount": "单笔代扣上限",
}

def to_fen(value: str | None, field: str = "amount") -> int | None:
    """A yuan string ("10000", "10000.5", "10000.50") as integer fen; anything else refused in Chinese."""
    if value is None:
        return None
    text = value.strip().replace(",", "")
    if not _YUAN_RE.match(text):
        raise MpValidation(f"{LABELS.get(field, field)}格式不正确：请填写元，最多两位小数（如 \"10000.00\"）", field=field)
    return yuan_to_fen(text)


def to_rate(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        rate = parse_rate(value)
    except (InvalidOperation, ValueError) as exc:
        raise MpValidation("年利率格式不正确（如 \"0.12\" 或 \"12%\"）", field="annual_rate") from exc
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise MpValidation("年利率必须在 0–100% 之间", field="annual_rate")
    return rate


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WithdrawIn(_In):
    amount: StrictStr = Field(max_length=20, description="提现金额（元，字符串，如 \"100.00\"）")


class PayeeIn(_In):
    name: StrictStr = Field(min_length=1, max_length=60, description="收款人姓名")
    channel: StrictStr = Field(pattern="^(bank|wechat)$", description="bank 银行卡 / wechat 微信")
    bank: StrictStr | None = Field(None, max_length=60, description="开户行（银行卡时填写）")
    account: StrictStr = Field(min_length=4, max_length=40, description="收款账号")


class LoginIn(_In):
    code: StrictStr = Field(max_length=128, description="wx.login 返回的 code")
    scene: StrictStr | None = Field(None, max_length=64, description="小程序码的 scene（分享进入时）")


class PhoneCodeIn(_In):
    code: StrictStr = Field(max_length=128, description="getPhoneNumber 按钮返回的 code")


class PhoneEncryptedIn(_In):
    encrypted_data: StrictStr = Field(max_length=4096)
    iv: StrictStr = Field(max_length=64)


class PhoneConfirmIn(_In):
    binding_token: StrictStr = Field(max_length=1024, description="上一步返回的 details.binding_token")
    id_last4: StrictStr = Field(max_length=8, description="该手机号名下客户身份证号的后四位")


class ConsentIn(_In):
    document_id: int


class CalculatorIn(_In):
    amount: StrictStr = Field(description="金额（元，字符串）", examples=["50000.00"])
    term_months: int = Field(ge=1, le=360)
    product_id: int | None = None
    annual_rate: StrictStr | None = Field(None, description="不选产品时：年利率，如 \"0.12\"")
    repayment_method: StrictStr | None = Field(None, description="不选产品时：equal_installment 等")


class MatchIn(_In):
    amount: StrictStr
    term_months: int = Field(ge=1, le=360)
    income: StrictStr | None = Field(None, description="月收入（元，字符串）")


class DraftFields(BaseModel):
    """The application draft as the customer fills it: what ``PUT``/``PATCH`` take and ``GET`` answers (the
    read adds id, status, documents and what is missing). A field left out or null stays as it is."""

    product_id: int | None = None
    amount: StrictStr | None = Field(None, description="申请金额（元，字符串）")
    term_months: int | None = Field(None, ge=1, le=360)
    name: StrictStr | None = Field(None, max_length=32)
    id_number: StrictStr | None = Field(None, max_length=32, description="身份证号；读取时为脱敏值，原样写回不作修改")
    income: StrictStr | None = Field(None, description="月收入（元，字符串）")
    occupation: StrictStr | None = Field(None, max_length=40)
    employer: StrictStr | None = Field(None, max_length=80)
    purpose: StrictStr | None = Field(None, max_length=120)


class DraftIn(DraftFields):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubmitIn(_In):
    idempotency_key: StrictStr = Field(min_length=8, max_length=64, description="客户端生成，重复点击时相同")


class VisitIn(_In):
    department_id: int
    scheduled_at: AwareDatetime
    note: StrictStr | None = Field(None, max_length=500)


class RescheduleIn(_In):
    scheduled_at: AwareDatetime
    reason: StrictStr | None = Field(None, max_length=200)


class CancelIn(_In):
    reason: StrictStr = Field(min_length=1, max_length=200)
