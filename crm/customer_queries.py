"""Reads for the customer list: one filtered, sorted, paginated query, data-scoped, with a total count.

Every query starts from the viewer's scope (``crm.customers.visible_clause``: owned within their scope, or
co-handled by them). Asking for pool customers (``status="pool"``) adds the pools the viewer may claim from
(``crm.customers.pool_visible_clause``). Search text is matched by what it looks like: a mobile number or an
ID number through the blind index (never by plaintext), four digits against the masked phone's last four, latin
letters against the pinyin initials (or the name), anything else against the name and live tag names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, literal_column, or_, select
from sqlalchemy.orm import Session, joinedload

from core import clock, figure_cache, figure_refresh, pii
from core.errors import ValidationFailed
from core.settings import get_settings
from crm import auth_service, customers, org_service, scope, sources
from crm.models import (
    INDUSTRY_CHOICES,
    Customer,
    CustomerQualification,
    CustomerStatus,
    CustomerTag,
    CustomerType,
    Department,
    Grade,
    HasLatinLetter,
    Pool,
    Staff,
    Stage,
    Tag,
)
from crm.scope import Viewer

SORTS: dict[str, str] = {
    "created_desc": "最新录入", "created_asc": "最早录入", "updated_desc": "最近更新",
    "followup_asc": "下次跟进最近", "amount_desc": "贷款金额最高", "grade_asc": "等级从高到低",
}
DEFAULT_SORT = "created_desc"
MAX_PAGE_SIZE = 200


@dataclass
class CustomerFilter:
    """What the customer list is asked for. Empty values mean 'any'."""

    q: str | None = None
    stage: str | None = None
    grade: str | None = None
    status: str | None = None
    region: str | None = None
    customer_type: str | None = None
    source: str | None = None
    owner_id: int | None = None
    department_id: int | None = None  # the owner is in this department or one below it
    owner_department_id: int | None = None  # the owner is in this department itself (analytics' 部门 rows)
    source_detail: str | None = None  # 来源明细, exactly (a WeCom channel code writes "渠道码：<name> / <campaign>")
    industry: str | None = None  # the qualification profile's industry (``industry_clause``)
    created_from: date | None = None
    created_to: date | None = None  # inclusive, a business date (Asia/Shanghai)
    next_followup_from: date | None = None
    next_followup_to: date | None = None  # inclusive
    sort: str = DEFAULT_SORT
    with_pool: bool = False  # also the customers waiting in the pools the viewer may claim from

    def validate(self) -> None:
        if self.stage and self.stage not in Stage.__members__.values():
            raise ValidationFailed(f"未知的阶段：{self.stage}", field="stage")
        if self.status and self.status not in CustomerStatus.__members__.values():
            raise ValidationFailed(f"未知的客户状态：{self.status}", field="status")
        if self.customer_type and self.customer_type not in CustomerType.__members__.values():
            raise ValidationFailed(f"未知的客户类型：{self.customer_type}", field="customer_type")
        if self.sort not in SORTS:
            raise ValidationFailed(f"未知的排序方式：{self.sort}", field="sort")
        for lo, hi, label in (("created_from", "created_to", "录入日期"),
                              ("next_followup_from", "next_followup_to", "下次跟进日期")):
            start, end = getattr(self, lo), getattr(self, hi)
            if start and end and start > end:
                raise ValidationFailed(f"{label}的开始日期不能晚于结束日期", field=lo)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def scope_clause(viewer: Viewer, status: str | None = None, *, with_pool: bool = False,
                 co_handles: bool = True) -> ColumnElement[bool]:
    """The customers a viewer may list; pool customers of claimable pools only when pool ones are asked for
    (the 公海 status, or ``with_pool``: a search that includes the pool). ``co_handles``: as
    ``crm.customers.visible_clause``."""
    clause = customers.visible_clause(viewer, co_handles=co_handles)
    if (status == CustomerStatus.POOL or with_pool) and viewer.scope != "all":
        claimable = select(Pool.id).where(customers.pool_visible_clause(viewer)).scalar_subquery()
        clause = or_(clause, and_(Customer.status == CustomerStatus.POOL, Customer.pool_id.in_(claimable)))
    return clause


def _tag_clause(text: str) -> ColumnElement[bool]:
    """Customers carrying a live tag whose name contains ``text``."""
    return exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == Tag.id,
                          Tag.deleted_at.is_(None), Tag.name.contains(text, autoescape=True))


def search_basis(text: str) -> str:
    """What a search text is matched against (the list says so under the box), in Chinese."""
    folded = re.sub(r"[\s\-]", "", text.strip())
    try:
        if pii.normalize_phone(folded):
            return "手机号（完整号码）"
    except ValidationFailed:
        pass
    if len(folded) == 18 and pii.id_checksum_ok(folded.upper()):
        return "身份证号"
    if re.fullmatch(r"\d{4}", folded):
        return "手机后四位"
    if re.fullmatch(r"[A-Za-z]+", folded):
        return "姓名拼音（首字母或全拼，或姓名中的字母）"
    return "姓名和标签名"


def phone_last4() -> ColumnElement[str]:
    """The masked phone's last four digits, in the words of ``ix_customer_phone_last4``
    (``crm.models.customer.PHONE_LAST4``, the 3 a literal, not a bound parameter, so that PostgreSQL matches the
    index's expression). Equal to four digits exactly when the masked phone ends with them."""
    return func.substr(Customer.phone_masked, func.length(Customer.phone_masked) - literal_column("3"))


def search_clause(text: str) -> ColumnElement[bool]:
    text = text.strip()
    folded = re.sub(r"[\s\-]", "", text)
    try:
        phone = pii.normalize_phone(folded)
    except ValidationFailed:
        phone = None
    if phone:
        return Customer.phone_index == pii.blind_index(pii.PHONE, phone)
    if len(folded) == 18 and pii.id_checksum_ok(folded.upper()):
        return Customer.id_number_index == pii.blind_index(pii.ID_NUMBER, folded.upper())
    if re.fullmatch(r"\d{4}", folded):  # in the words of ix_customer_phone_last4, so that the index serves it
        return phone_last4() == folded
    if re.fullmatch(r"[A-Za-z]+", folded):
        # The name can only contain these letters if it has a latin letter at all: saying so lets
        # PostgreSQL answer both halves from indexes (ix_customer_name_initials, ix_customer_latin_name).
        return or_(customers.letters_clause(folded),
                   and_(HasLatinLetter(Customer.name), Customer.name.contains(text, autoescape=True)))
    return or_(Customer.name.contains(text, autoescape=True), _tag_clause(text))


def belonging_clauses(customer_id: ColumnElement[Any], *, owner_id: int | None = None,
                      department_path: str | None = None, owner_department_id: int | None = None,
                      source: str | None = None, source_detail: str | None = None, region: str | None = None,
                      industry: str | None = None) -> list[ColumnElement[bool]]:
    """The clauses a list of the customers' things (loans, bills, applications) filters by the customer with: its
    owner, the owner's department subtree (``department_path``) or the department itself, its source (exactly),
    channel detail, region (contained) and industry. Over ``Customer`` joined in the FROM, except the industry,
    over ``customer_id`` (the thing's own customer column: no join needed for it alone)."""
    out: list[ColumnElement[bool]] = []
    if owner_id:
        out.append(Customer.owner_id == owner_id)
    if department_path:
        out.append(Customer.owner_id.in_(scope.subtree_staff_ids(department_path)))
    if owner_department_id:
        out.append(owner_department_clause(Customer.owner_id, owner_department_id))
    if source:
        out.append(Customer.source == source)
    if source_detail and source_detail.strip():
        out.append(Customer.source_detail == source_detail.strip())
    if region:
        out.append(Customer.region.contains(region.strip(), autoescape=True))
    if industry and industry.strip():
        out.append(industry_clause(customer_id, industry))
    return out


def owner_department_clause(owner_id: ColumnElement[Any], department_id: int) -> ColumnElement[bool]:
    """Rows whose owner (``owner_id``: a staff id column) sits in the department itself, not one below it (the
    rows of one 部门 value of analytics)."""
    return owner_id.in_(select(Staff.id).where(Staff.department_id == department_id))


def industry_clause(customer_id: ColumnElement[Any], industry: str) -> ColumnElement[bool]:
    """Customers (``customer_id``: a customer id column) whose qualification profile's industry matches: a name of
    ``INDUSTRY_CHOICES`` matches every industry starting with it, as products admit and exclude industries
    ("建筑" matches "建筑装修": ``lending.product_requirements``); any other text matches exactly. The rows of one
    value of :func:`industry_key`."""
    value = industry.strip()
    column = CustomerQualification.industry
    test = column.startswith(value, autoescape=True) if value in INDUSTRY_CHOICES else column == value
    return customer_id.in_(select(CustomerQualification.customer_id).where(test))


def industry_key(customer_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """The customer's industry as a group key (a correlated scalar subquery): the ``INDUSTRY_CHOICES`` name it
    starts with, else the industry as recorded; NULL without one. The names are SQL literals (none has a quote),
    so that the grouped expression and the selected one read the same on PostgreSQL."""
    column = CustomerQualification.industry
    key = case(*((func.substr(column, literal_column("1"), literal_column(str(len(name))))
                  == literal_column(f"'{name}'"), literal_column(f"'{name}'")) for name in INDUSTRY_CHOICES),
               else_=column)
    return select(key).where(CustomerQualification.customer_id == customer_id).scalar_subquery()


def _day_range(column: ColumnElement[Any], start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    out = []
    if start:
        out.append(column >= clock.start_of_business_day(start))
    if end:
        out.append(column < clock.start_of_business_day(end + timedelta(days=1)))
    return out


FILTER_KEYS = ("q", "stage", "grade", "status", "region", "customer_type", "source", "owner_id", "department_id",
               "owner_department_id", "source_detail", "industry", "created_from", "created_to", "next_followup_from", "next_followup_to", "sort", "with_pool")


def _param_date(value: str | None, label: str, field: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(f"{label}格式不正确，应为 YYYY-MM-DD", field=field) from exc


def _param_int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def filter_from_params(params: dict[str, str]) -> CustomerFilter:
    """The list's filter from its query string (the console's list page and its background export)."""
    p = {k: str(params.get(k) or "") for k in FILTER_KEYS}
    return CustomerFilter(
        q=p["q"] or None, stage=p["stage"] or None, grade=p["grade"] or None, status=p["status"] or None,
        region=p["region"] or None, customer_type=p["customer_type"] or None, source=p["source"] or None,
        owner_id=_param_int(p["owner_id"]), department_id=_param_int(p["department_id"]),
        owner_department_id=_param_int(p["owner_department_id"]), source_detail=p["source_detail"].strip() or None,
        industry=p["industry"].strip() or None,
        created_from=_param_date(p["created_from"], "录入开始日期", "created_from"),
        created_to=_param_date(p["created_to"], "录入结束日期", "created_to"),
        next_followup_from=_param_date(p["next_followup_from"], "跟进开始日期", "next_followup_from"),
        next_followup_to=_param_date(p["next_followup_to"], "跟进结束日期", "next_followup_to"),
        sort=p["sort"] or DEFAULT_SORT, with_pool=p["with_pool"] == "1")


def filtered(session: Session, viewer: Viewer, flt: CustomerFilter,
             extra: tuple[ColumnElement[bool], ...] = (), *, co_handles: bool = True) -> Select[tuple[Customer]]:
    """The list's SELECT (scope and filters, no order or limit). ``extra``: clauses a caller above crm adds
    (analytics' funnel steps, which look at lending's tables). ``co_handles``: as ``crm.customers.visible_clause``."""
    flt.validate()
    conditions: list[ColumnElement[bool]] = [
        scope_clause(viewer, flt.status, with_pool=flt.with_pool, co_handles=co_handles), *extra]
    if flt.q and flt.q.strip():
        conditions.append(search_clause(flt.q))
    for name in ("stage", "grade", "status", "customer_type", "owner_id"):
        value = getattr(flt, name)
        if value not in (None, ""):
            conditions.append(getattr(Customer, name) == value)
    if flt.source and flt.source.strip():  # a code and its label are one source (crm.sources)
        conditions.append(Customer.source.in_(sources.spellings(flt.source)))
    if flt.department_id:
        path = session.scalar(select(Department.path).where(Department.id == flt.department_id))
        conditions.append(Customer.owner_id.in_(scope.subtree_staff_ids(path)) if path else false())
    conditions += belonging_clauses(Customer.id, owner_department_id=flt.owner_department_id,
                                    source_detail=flt.source_detail, region=flt.region, industry=flt.industry)
    conditions += _day_range(Customer.created_at, flt.created_from, flt.created_to)
    conditions += _day_range(Customer.next_followup_at, flt.next_followup_from, flt.next_followup_to)
    return select(Customer).where(*conditions)


def _order(stmt: Select[tuple[Customer]], sort: str) -> Select[tuple[Customer]]:
    if sort == "created_asc":
        return stmt.order_by(Customer.created_at.asc(), Customer.id.asc())
    if sort == "updated_desc":
        return stmt.order_by(Customer.updated_at.desc(), Customer.id.desc())
    if sort == "followup_asc":
        return stmt.order_by(Customer.next_followup_at.is_(None), Customer.next_followup_at.asc(), Customer.id)
    if sort == "amount_desc":
        return stmt.order_by(Customer.demand_amount.is_(None), Customer.demand_amount.desc(), Customer.id.desc())
    if sort == "grade_asc":
        rank = select(Grade.rank).where(Grade.code == Customer.grade).scalar_subquery()
        return stmt.order_by(Customer.grade.is_(None), rank.asc(), Customer.id.desc())
    return stmt.order_by(Customer.created_at.desc(), Customer.id.desc())


# The console list counts at most this many matches and then says "1万+" (``count_bound``): an exact count of a
# department's customers is a scan of most of the customer table (200-335 ms on 1,000,000 customers), for a
# figure nobody pages through. Exports and the API keep exact counts.
LIST_COUNT_BOUND = 10_000


@dataclass
class CustomerPage:
    items: list[Customer]
    total: int  # exact, unless ``more_than`` is set: then at least one row beyond the page (pagination holds)
    page: int
    page_size: int
    more_than: int | None = None  # set when the count stopped at its bound: "more than this many"


def search(session: Session, viewer: Viewer, flt: CustomerFilter, *, page: int = 1,
           page_size: int = 20, extra: tuple[ColumnElement[bool], ...] = (),
           count_bound: int | None = None) -> CustomerPage:
    """One page of the viewer's customers matching ``flt``, with the total count. With ``count_bound`` the count
    stops after ``max(count_bound, the rows up to this page) + 1`` matches (``COUNT`` over a ``LIMIT``ed
    subquery): past the bound the page says "more than ``count_bound``", and ``total`` still tells whether a
    next page exists."""
    page, page_size = max(1, page), min(max(1, page_size), MAX_PAGE_SIZE)
    stmt = filtered(session, viewer, flt, extra, co_handles=customers.co_handles_any(session, viewer))
    ids = stmt.with_only_columns(Customer.id)
    limit = None if count_bound is None else max(count_bound, page * page_size) + 1
    counted = ids if limit is None else ids.limit(limit)
    total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    more_than = count_bound if limit is not None and total > count_bound else None
    # The page's ids first, then their rows: sorted by entry time (the default), PostgreSQL finds the ids in
    # ix_customer_created alone (it carries owner_id, the scope's column), where asking for whole rows made it fetch
    # every skipped row from the table (a salesperson's page 5: ~28,000 rows, 20-30 ms, vs ~4 ms).
    page_ids = list(session.scalars(_order(ids, flt.sort).limit(page_size).offset((page - 1) * page_size)))
    found = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(page_ids))
                                              .options(joinedload(Customer.owner))).unique()} if page_ids else {}
    return CustomerPage([found[i] for i in page_ids if i in found], total, page, page_size, more_than)


def visible_ids(session: Session, viewer: Viewer, ids: list[int]) -> set[int]:
    """Which of ``ids`` the viewer may act on (the list's scope, pool customers included where claimable)."""
    if not ids:
        return set()
    return set(session.scalars(select(Customer.id).where(Customer.id.in_(ids),
                                                         scope_clause(viewer, CustomerStatus.POOL))))


def distinct_values(session: Session, viewer: Viewer, column: str, limit: int = 50) -> list[str]:
    """Values of ``region``, ``source`` or ``source_detail`` among the viewer's customers (for filter drop-downs),
    the commonest first."""
    col = {"region": Customer.region, "source": Customer.source, "source_detail": Customer.source_detail}[column]
    stmt = (select(col).where(customers.visible_clause(viewer), col.is_not(None)).group_by(col)
            .order_by(func.count().desc()).limit(limit))
    values = [v for v in session.scalars(stmt) if v]
    return sources.merged_labels(values) if column == "source" else values


CHOICE_COLUMNS = ("region", "source")
LIVE_CHOICE_SCOPES = {"own"}  # a salesperson's few thousand customers: counted on every view


def choice_values(session: Session, viewer: Viewer) -> dict[str, list[str]]:
    """The list's 地区 and 来源 drop-downs: :func:`distinct_values` of each column.

    For a department- or company-scope viewer each is a GROUP BY over most of the customer table (~140 ms and
    three PostgreSQL processes on 1,000,000 customers, on every list page): their values are kept for
    ``SCRM_LIST_CHOICES_CACHE_SECONDS`` in ``core.figure_cache``, keyed by what the viewer's customers are: the
    scope and the department, and the staff id of a viewer who co-handles customers (they see those too). Viewers
    who co-handle none see exactly their scope's customers, so two managers of one department share one entry."""
    target = _choices_target(session, viewer)
    if target is None:
        return {column: distinct_values(session, viewer, column) for column in CHOICE_COLUMNS}
    figure_refresh.watch(CHOICES_KIND, {"staff_id": viewer.staff_id})
    _, payload = figure_cache.cached(target.key, target.ttl, target.compute)
    return json.loads(payload)


def _choices_target(session: Session, viewer: Viewer) -> figure_refresh.Target | None:
    ttl = get_settings().list_choices_cache_seconds
    if ttl <= 0 or viewer.scope in LIVE_CHOICE_SCOPES:
        return None
    co_handler = viewer.staff_id if customers.co_handles_any(session, viewer) else None
    key = figure_cache.make_key("list_choices", {"scope": viewer.scope, "department_path": viewer.department_path,
                                                 "co_handler": co_handler})
    return figure_refresh.Target(key, ttl, lambda: json.dumps(
        {column: distinct_values(session, viewer, column) for column in CHOICE_COLUMNS}, ensure_ascii=False))


def _resolve_choices(session: Session, spec: dict) -> figure_refresh.Target | None:
    """A watched viewer's drop-downs as they are now (``core.figure_refresh``)."""
    viewer = org_service.active_viewer(session, spec["staff_id"])
    return None if viewer is None else _choices_target(session, viewer)


def _seed_choices(session: Session) -> list[dict]:
    """The drop-downs of the staff with an open console session and a wider scope than their own."""
    return [{"staff_id": staff_id}
            for staff_id in auth_service.staff_with_open_sessions(session, exclude_scopes=LIVE_CHOICE_SCOPES)]


CHOICES_KIND = "list_choices"
figure_refresh.register(CHOICES_KIND, _resolve_choices, _seed_choices)
