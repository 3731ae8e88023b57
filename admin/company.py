"""公司设置: the state of each integration (never a secret, only whether it is set) and the admin's first-login
checklist (开通向导), each step ticked from real data.

Channel codes are the bot's table; the console reads its row count by table name (channels never import each
other), which keeps this page a reader of state, not a second owner of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from core.db import Base
from core.settings import get_settings
from crm.models import Customer, Department, ImportJob, Staff
from lending.models import Product
from payments import config as payments_config
from postloan.telephony import config as telephony_config


@dataclass(frozen=True)
class Integration:
    name: str
    state: str  # "ok" | "simulated" | "incomplete"
    summary: str
    items: list[tuple[str, str]]  # (what, shown value: 已配置 / 未配置 / a non-secret id)


def _set(value: str) -> str:
    return "已配置" if value else "未配置"


def _masked_id(value: str) -> str:
    """A non-secret id shown partly (corp id, AppID, 商户号): enough to recognise, not to copy."""
    if not value:
        return "未配置"
    return value if len(value) <= 6 else f"{value[:4]}…{value[-2:]}"


def integrations() -> list[Integration]:
    s = get_settings()
    wecom_items = [("企业ID (CorpID)", _masked_id(s.wecom_corp_id)), ("应用 AgentId", _set(s.wecom_agent_id)),
                   ("应用 Secret", _set(s.wecom_secret)), ("回调 Token", _set(s.wecom_token)),
                   ("回调 EncodingAESKey", _set(s.wecom_aes_key))]
    if s.wecom_simulated:
        wecom = Integration("企业微信", "simulated", "使用内置企微模拟器（演示环境），未连接真实企业微信", wecom_items)
    elif all(v for v in (s.wecom_corp_id, s.wecom_secret, s.wecom_token, s.wecom_aes_key)):
        wecom = Integration("企业微信", "ok", "已配置真实企业微信，访问令牌由系统自动获取并缓存", wecom_items)
    else:
        wecom = Integration("企业微信", "incomplete", "配置不完整：回调 Token 与 EncodingAESKey 均需填写", wecom_items)
    mp_items = [("小程序 AppID", _masked_id(s.wechat_mp_appid)), ("小程序 AppSecret", _set(s.wechat_mp_secret))]
    mp = (Integration("微信小程序", "simulated", "使用内置微信模拟器（演示环境）", mp_items) if s.wechat_simulated
          else Integration("微信小程序", "ok" if s.wechat_mp_appid else "incomplete",
                           "已配置真实小程序" if s.wechat_mp_appid else "缺少小程序 AppID", mp_items))
    pay_items = [("商户号", _masked_id(s.wechatpay_mchid)), ("商户证书序列号", _set(s.wechatpay_serial_no)),
                 ("商户私钥文件", _set(s.wechatpay_private_key_path)), ("APIv3 密钥", _set(s.wechatpay_apiv3_key)),
                 ("平台公钥", _set(s.wechatpay_platform_public_key_path))]
    if payments_config.simulated():
        pay = Integration("微信支付", "simulated", "使用内置支付模拟器（演示环境），不会产生真实扣款", pay_items)
    else:
        complete = all((s.wechatpay_serial_no, s.wechatpay_private_key_path, s.wechatpay_apiv3_key,
                        s.wechatpay_platform_public_key_path))
        pay = Integration("微信支付", "ok" if complete else "incomplete",
                          "已配置微信支付商户" if complete else "商户配置不完整", pay_items)
    tel_items = [("外呼平台地址", "已配置" if s.telephony_api_base else "未配置"),
                 ("API 密钥", _set(s.telephony_api_key)), ("回调签名密钥", _set(s.telephony_callback_secret)),
                 ("允许外呼时段", s.telephony_call_hours)]
    tel = (Integration("外呼", "simulated", "使用内置外呼模拟器（演示环境）", tel_items) if telephony_config.simulated()
           else Integration("外呼", "ok" if s.telephony_api_key and s.telephony_callback_secret else "incomplete",
                            "已连接外呼平台", tel_items))
    return [wecom, mp, pay, tel]


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    done: bool
    detail: str
    url: str


def _rows(session: Session, table: str) -> int:
    found = Base.metadata.tables.get(table)
    return int(session.scalar(select(func.count()).select_from(found)) or 0) if found is not None else 0


def checklist(session: Session) -> list[Step]:
    """The first-login steps of a new company, each ticked from what the database holds."""
    departments = session.scalar(select(func.count()).select_from(Department)) or 0
    staff = session.scalar(select(func.count()).select_from(Staff)) or 0
    codes = _rows(session, "wecom_channel_code")
    imports = session.scalar(select(func.count()).select_from(ImportJob)) or 0
    customers = session.scalar(select(func.count()).select_from(Customer)) or 0
    products = session.scalar(select(func.count()).select_from(Product)) or 0
    wecom_ok = not get_settings().wecom_simulated
    return [
        Step("departments", "建立部门", departments > 1, f"已有 {departments} 个部门", "/console/departments"),
        Step("staff", "添加员工", staff > 1, f"已有 {staff} 名员工", "/console/staff/new"),
        Step("wecom", "连接企业微信", wecom_ok, "已连接" if wecom_ok else "仍在使用模拟器", "/console/settings/company"),
        Step("channel", "创建渠道活码", codes > 0, f"已有 {codes} 个渠道活码", "/wecom/channels"),
        Step("import", "导入客户", imports > 0 or customers > 0, f"已有 {customers} 位客户", "/console/imports"),
        Step("product", "配置贷款产品", products > 0, f"已有 {products} 个产品", "/console/lending/products"),
    ]


def show_checklist(staff: Staff, steps: list[Step]) -> bool:
    """Shown to an admin until every step is done or they dismiss it."""
    return staff.onboarding_dismissed_at is None and not all(s.done for s in steps)


def dismiss(session: Session, staff: Staff) -> None:
    staff.onboarding_dismissed_at = clock.now()
    session.flush()
