"""Demo data of the mini-program for `scrm seed-demo`:

- consent documents: the mini-program's 隐私政策 and the demo bank's 个人信息共享授权书, published as version 1
  through lending.consent (as `scrm mp publish-consent` does), and the consents of the demo customers who
  applied for one of the demo bank's products (so the console's 授权协议 page shows who consented). Nothing
  when a document exists;
- a mini-program login for a borrower with a bill due (:data:`DEMO_BORROWER`): the first active demo loan with
  something due today gets the WeChat identity the simulator answers for the ``wx.login`` code
  ``demo-borrower:<anything>``, so that a mini-program repayment can be shown end to end on `make run`
  (docs/miniprogram-api.md, "A repayment on the demo data"). Nothing when that identity exists.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import simulators
from core.audit import Actor
from core.money import format_yuan
from crm.models import Customer
from lending import consent
from lending.models import Application, Funder, Loan, Product
from lending.models.consent import MpConsentDocument
from lending.payment_purposes import current_bill
from miniprogram_api import wechat

DEMO_BORROWER = "demo-borrower"  # the simulator's login code for the borrower: "demo-borrower:<anything>"

PRIVACY = """\
本隐私政策说明我们如何收集、使用、保存和保护您的个人信息。

一、我们收集的信息：您主动提供的姓名、手机号码、身份证号码、收入与工作信息、借款需求，以及您上传的证明材料。
二、使用目的：为您匹配贷款产品、办理借款申请、签订与履行合同、还款提醒与贷后服务；未经您同意，不用于其他目的。
三、共享：仅在您另行签署《个人信息共享授权书》后，向该授权书载明的资金方提供办理业务所必需的信息。
四、保存与保护：手机号码与身份证号码加密存储，展示时脱敏；员工查看完整信息须说明理由并留痕。
五、您的权利：您可以查询、更正您的信息，撤回授权，或注销账户；撤回不影响撤回前已进行的处理。
六、联系我们：如有疑问，请联系您的客户经理或拨打客服电话。"""

SHARE = """\
本人同意：为办理借款申请，将本人的姓名、身份证号码、手机号码、收入与工作信息、借款申请信息及相关证明材料
提供给资金方「{funder}」，用于身份核验、征信查询、授信审批、合同签订及贷后管理。

资金方仅在上述目的范围内使用本人信息，并依法采取安全保护措施。本人可随时撤回本授权，撤回后将无法继续提交
该资金方的借款申请，撤回前已进行的处理不受影响。"""


def seed(session: Session) -> list[str]:
    return _documents(session) + _borrower_login(session)


def _borrower_login(session: Session) -> list[str]:
    openid, unionid = simulators.wechat_mp_identity(wechat.config().appid, DEMO_BORROWER)
    if session.scalar(select(Customer.id).where(Customer.wechat_openid == openid)) is not None:
        return []
    for loan in session.scalars(select(Loan).where(Loan.status == "active").order_by(Loan.id)):
        bill = current_bill(session, loan)
        customer = session.get(Customer, loan.customer_id)
        if bill is None or customer is None or customer.wechat_openid or customer.wechat_unionid:
            continue
        customer.wechat_openid, customer.wechat_unionid = openid, unionid
        session.flush()
        return [f"演示小程序还款：客户 #{customer.id} 的贷款 #{loan.id} 第 {bill.period} 期应还 {format_yuan(bill.amount)}，"
                f"小程序登录码 {DEMO_BORROWER}:<任意>（模拟器，见 docs/miniprogram-api.md）"]
    return []


def _documents(session: Session) -> list[str]:
    if session.scalar(select(MpConsentDocument.id).limit(1)) is not None:
        return []
    actor = Actor.system("scrm seed-demo")
    consent.publish(session, "privacy", "隐私政策", PRIVACY, actor=actor)
    bank = session.scalar(select(Funder).where(Funder.name == "演示银行"))
    lines = "隐私政策"
    if bank is not None:
        consent.publish(session, "share", f"个人信息共享授权书（{bank.name}）", SHARE.format(funder=bank.name),
                        funder_id=bank.id, actor=actor)
        lines += f"、{bank.name}的个人信息共享授权书"
        lines += f"（第 1 版），{_consents(session, bank.id)} 位申请了{bank.name}产品的客户已同意"
    return [f"演示协议：{lines}"]


def _consents(session: Session, funder_id: int) -> int:
    """The customers with an application for the funder's products agreed to both documents."""
    customer_ids = list(session.scalars(select(Application.customer_id).distinct()
                                        .join(Product, Product.id == Application.product_id)
                                        .where(Product.funder_id == funder_id).order_by(Application.customer_id)))
    docs = [consent.latest_document(session, code) for code in consent.required_codes(funder_id)]
    for customer_id in customer_ids:
        for doc in docs:
            if doc is not None:
                consent.grant(session, customer_id, doc.id, ip="127.0.0.1", user_agent="演示数据")
    return len(customer_ids)
