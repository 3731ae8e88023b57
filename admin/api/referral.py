"""推荐佣金 in the staff JSON API: referrers and balances, ledgers, manual attribution, commission
rules, withdrawal approval, payout batches and the referrer report. Managers, finance and admins.
Amounts are integer fen; rates are decimal strings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from admin import nav
from admin.api.deps import ERROR_RESPONSES, ApiCaller, require_roles
from admin.schemas import ErrorBody
from core.errors import ValidationFailed
from core.web import SessionDep
from crm.customers import get_customer
from referral import attribution, ledger, payouts, referrers, reports, rules
from referral.models import Referrer

router = APIRouter(prefix="/api/v1/referral", tags=["referral"], responses=ERROR_RESPONSES)

Reader = Annotated[ApiCaller, Depends(require_roles(nav.REFERRAL_STAFF))]
Editor = Annotated[ApiCaller, Depends(require_roles(nav.REFERRAL_RULE_EDITORS))]
REFUSED = {403: {"model": ErrorBody, "description": "角色无权操作"},
           409: {"model": ErrorBody, "description": "自荐、循环推荐、锁定期内改绑、余额不足、状态已变化"},
           422: {"model": ErrorBody, "description": "输入不正确（如阶梯区间重叠）"}}


class BalanceRead(BaseModel):
    total: int
    available: int
    pending: int
    held: int
    withdrawable: int

    @classmethod
    def of(cls, b: ledger.Balance) -> BalanceRead:
        return cls(total=b.total, available=b.available, pending=b.pending, held=b.held, withdrawable=b.withdrawable)


class ReferrerRead(BaseModel):
    id: int
    kind: str
    name: str
    code: str
    parent_id: int | None
    status: str
    payee_account_masked: str | None
    balance: BalanceRead

    @classmethod
    def of(cls, r: Referrer, b: ledger.Balance) -> ReferrerRead:
        return cls(id=r.id, kind=r.kind, name=r.name, code=r.code, parent_id=r.parent_id, status=r.status,
                   payee_account_masked=r.payee_account_masked, balance=BalanceRead.of(b))


class ReferrerCreate(BaseModel):
    kind: str = Field(examples=["agent"], description="customer | agent | channel | staff")
    name: str = ""
    customer_id: int | None = None
    staff_id: int | None = None
    parent_id: int | None = None
    payee_name: str | None = None
    payee_channel: str | None = Field(None, description="bank | wechat")
    payee_bank: str | None = None
    payee_account: str | None = Field(None, description="stored sealed; only a masked form is returned")


class EntryRead(BaseModel):
    id: int
    kind: str
    amount: int
    source_event_key: str
    level: int | None
    loan_id: int | None
    rule_version_id: int | None
    reverses_entry_id: int | None
    confirms_entry_id: int | None
    payout_batch_id: int | None
    note: str | None
    created_at: datetime


class LedgerRead(BaseModel):
    referrer: ReferrerRead
    entries: list[EntryRead]


class AttributionCreate(BaseModel):
    customer_id: int
    referrer: str = Field(description="referral code or referrer id")
    reason: str | None = None


class AttributionRead(BaseModel):
    customer_id: int
    referrer_id: int
    source: str
    locked_until: datetime
    created: bool


class RuleCreate(BaseModel):
    name: str
    beneficiary_kind: str = Field("referrer", description="referrer | staff")
    terms: dict[str, Any] = Field(examples=[{"basis": "principal", "level1_rate": "0.01", "level2_rate": "0.002",
                                             "tiers": [{"min_amount": 0, "max_amount": 20000000,
                                                        "level1_rate": "0.01", "level2_rate": "0.002"}]}])


class RuleRead(BaseModel):
    id: int
    name: str
    beneficiary_kind: str
    active: bool
    version: int | None
    terms: dict[str, Any] | None


def _terms(body: dict[str, Any]) -> rules.RuleTerms:
    known = set(rules.RuleTerms.__dataclass_fields__)
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValidationFailed(f"未知的规则字段：{', '.join(unknown)}", code="invalid_commission_rule")
    if "basis" not in body:
        raise ValidationFailed("请填写计佣基数 basis", code="invalid_commission_rule")
    return rules.RuleTerms(**body)


def _rule_read(rule: Any, version: Any) -> RuleRead:
    terms = None
    if version is not None:
        t = rules.terms_of(version)
        terms = {k: (str(v) if k.endswith("_rate") else v) for k, v in t.__dict__.items()}
    return RuleRead(id=rule.id, name=rule.name, beneficiary_kind=rule.beneficiary_kind, active=rule.active,
                    version=version.version if version is not None else None, terms=terms)


class WithdrawalRead(BaseModel):
    id: int
    referrer_id: int
    amount: int
    status: str
    requested_at: datetime
    reason: str | None
    payout_batch_id: int | None


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class BatchCreate(BaseModel):
    channel: str = Field("bank", description="bank | wechat")
    withdrawal_ids: list[int] | None = None


class BatchRead(BaseModel):
    id: int
    channel: str
    status: str
    item_count: int
    total_amount: int


def _w(w: Any) -> WithdrawalRead:
    return WithdrawalRead(id=w.id, referrer_id=w.referrer_id, amount=w.amount, status=w.status,
                          requested_at=w.requested_at, reason=w.reason, payout_batch_id=w.payout_batch_id)


def _b(b: Any) -> BatchRead:
    return BatchRead(id=b.id, channel=b.channel, status=b.status, item_count=b.item_count, total_amount=b.total_amount)


@router.get("/referrers", response_model=list[ReferrerRead], summary="推荐人列表（含余额）")
def list_referrers(session: SessionDep, caller: Reader, kind: str | None = None, q: str | None = None
                   ) -> list[ReferrerRead]:
    rows = referrers.list_referrers(session, kind=kind, q=q)
    balances = ledger.balances(session, [r.id for r in rows]) if rows else {}
    return [ReferrerRead.of(r, balances.get(r.id, ledger.Balance())) for r in rows]


@router.post("/referrers", response_model=ReferrerRead, status_code=201, summary="新建推荐人", responses=REFUSED)
def create_referrer(session: SessionDep, caller: Editor, body: ReferrerCreate) -> ReferrerRead:
    r = referrers.create_referrer(session, referrers.ReferrerInput(**body.model_dump()))
    return ReferrerRead.of(r, ledger.balance(session, r.id))


@router.get("/referrers/{referrer_id}/ledger", response_model=LedgerRead, summary="佣金流水与余额")
def referrer_ledger(session: SessionDep, caller: Reader, referrer_id: int, limit: int = 200, offset: int = 0
                    ) -> LedgerRead:
    r = referrers.get_referrer(session, referrer_id)
    entries = [EntryRead.model_validate(e, from_attributes=True)
               for e in ledger.entries(session, referrer_id, limit=min(limit, 500), offset=offset)]
    return LedgerRead(referrer=ReferrerRead.of(r, ledger.balance(session, referrer_id)), entries=entries)


@router.post("/attributions", response_model=AttributionRead, summary="手工指定推荐归属（无归属或锁定期后）",
             responses=REFUSED)
def manual_attribution(session: SessionDep, caller: Editor, body: AttributionCreate) -> AttributionRead:
    get_customer(session, caller.viewer, body.customer_id)
    referrer = referrers.resolve(session, body.referrer)
    result = attribution.reassign(session, body.customer_id, referrer.id, viewer=caller.viewer, reason=body.reason)
    a = result.attribution
    return AttributionRead(customer_id=a.customer_id, referrer_id=a.referrer_id, source=a.source,
                           locked_until=a.locked_until, created=result.created)


@router.get("/rules", response_model=list[RuleRead], summary="佣金规则（当前版本）")
def list_rules(session: SessionDep, caller: Reader) -> list[RuleRead]:
    return [_rule_read(r, v) for r, v in rules.list_rules(session)]


@router.post("/rules", response_model=RuleRead, status_code=201, summary="新建佣金规则或佣金方案", responses=REFUSED)
def create_rule(session: SessionDep, caller: Editor, body: RuleCreate) -> RuleRead:
    rule = rules.create_rule(session, body.name, body.beneficiary_kind, _terms(body.terms),
                             staff_id=caller.viewer.staff_id)
    return _rule_read(rule, rules.versions(session, rule.id)[0])


@router.post("/rules/{rule_id}/versions", response_model=RuleRead, status_code=201, summary="修改规则（生成新版本）",
             responses=REFUSED)
def new_version(session: SessionDep, caller: Editor, rule_id: int, body: dict[str, Any]) -> RuleRead:
    version = rules.new_version(session, rule_id, _terms(body), staff_id=caller.viewer.staff_id)
    from referral.models import CommissionRule

    return _rule_read(session.get(CommissionRule, rule_id), version)


@router.get("/withdrawals", response_model=list[WithdrawalRead], summary="提现申请")
def list_withdrawals(session: SessionDep, caller: Reader, status: str | None = None) -> list[WithdrawalRead]:
    return [_w(w) for w, _ in payouts.list_withdrawals(session, status)]


@router.post("/withdrawals/{withdrawal_id}/approve", response_model=WithdrawalRead, summary="批准提现",
             responses=REFUSED)
def approve(session: SessionDep, caller: Reader, withdrawal_id: int) -> WithdrawalRead:
    return _w(payouts.approve(session, caller.viewer, withdrawal_id))


@router.post("/withdrawals/{withdrawal_id}/reject", response_model=WithdrawalRead, summary="驳回提现",
             responses=REFUSED)
def reject(session: SessionDep, caller: Reader, withdrawal_id: int, body: Reason) -> WithdrawalRead:
    return _w(payouts.reject(session, caller.viewer, withdrawal_id, body.reason))


@router.post("/batches", response_model=BatchRead, status_code=201, summary="生成发放批次", responses=REFUSED)
def create_batch(session: SessionDep, caller: Reader, body: BatchCreate) -> BatchRead:
    return _b(payouts.create_batch(session, caller.viewer, body.channel, body.withdrawal_ids))


@router.post("/batches/{batch_id}/paid", response_model=BatchRead, summary="标记批次已发放", responses=REFUSED)
def mark_paid(session: SessionDep, caller: Reader, batch_id: int) -> BatchRead:
    return _b(payouts.mark_paid(session, caller.viewer, batch_id))


class ReportRow(BaseModel):
    referrer_id: int
    name: str
    kind: str
    invitees: int
    loans: int
    principal: int
    accrued: int
    reversed: int
    paid: int
    available: int


@router.get("/reports/referrers", response_model=list[ReportRow], summary="推荐人报表（可按月、按类型）")
def referrer_report(session: SessionDep, caller: Reader, month: date | None = None, kind: str | None = None
                    ) -> list[ReportRow]:
    return [ReportRow(referrer_id=r.referrer_id, name=r.name, kind=r.kind, invitees=r.invitees, loans=r.loans,
                      principal=r.principal, accrued=r.accrued, reversed=r.reversed, paid=r.paid,
                      available=r.balance.available)
            for r in reports.referrer_report(session, kind=kind, month=month)]
