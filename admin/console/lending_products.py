"""Products (产品) and funders (资方) in the console: the catalogue, a product's versions, the create/edit
form (an edit saves a new version) with a live schedule preview, and the funders list.

The form speaks yuan and percent; :func:`terms_from_form` turns it into fen and Decimal fractions.
lending.products decides everything (sample quotes, the cost cap, versioning); these routes parse,
call it in a savepoint and render.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from admin import nav
from admin.deps import ConsoleUser, CsrfChecked, attempt, parse_int, render, require_roles
from core import clock
from core.errors import AppError, ValidationFailed
from core.money import fen_to_yuan, format_yuan, parse_rate, parse_yuan_text
from core.web import SessionDep
from crm.models import CREDIT_LEVEL_LABELS, CUSTOMER_TYPE_LABELS, INDUSTRY_CHOICES
from lending import product_requirements as requirements
from lending import products
from lending.models import FUNDER_TYPE_LABELS, PENALTY_BASIS_LABELS, WRITE_OFF_ORDER_LABELS, Product, ProductVersion
from lending.schedule.apr import percent
from lending.schedule.terms import RepaymentMethod

router = APIRouter(prefix="/console/lending/products", include_in_schema=False)

PRODUCT_READERS = nav.LENDING_PRODUCT_STAFF
PRODUCT_EDITORS = nav.PRODUCT_EDITORS
Reader = Annotated[ConsoleUser, Depends(require_roles(PRODUCT_READERS))]
Editor = Annotated[ConsoleUser, Depends(require_roles(PRODUCT_EDITORS))]

METHOD_LABELS = {m.value: m.label for m in RepaymentMethod}
CHOICES = {
    "repayment_method": METHOD_LABELS,
    "interest_method": {"declining": "按剩余本金计息", "flat": "按初始本金计息（等本等息）"},
    "interest_period": {"same": "按还款期（年利率/12）", "daily": "按实际天数"},
    "days_in_year": {"360": "360 天", "365": "365 天", "actual": "实际天数（365/366）"},
    "rounding": {"half_up": "四舍五入", "half_even": "银行家舍入（四舍六入五成双）"},
    "currency_digits": {"2": "到分", "1": "到角", "0": "到元"},
    "penalty_basis": PENALTY_BASIS_LABELS,
    "write_off_order": WRITE_OFF_ORDER_LABELS,
    "service_fee_timing": {"per_period": "每期收取", "upfront": "放款时一次性扣除"},
    "funder_type": FUNDER_TYPE_LABELS,
    "required": {"": "不限", "1": "须有"},
    "min_credit_level": {"": "不限", **{code: f"不差于「{label}」" for code, label in CREDIT_LEVEL_LABELS.items()}},
}
NOTICES = {"created": "产品已创建（版本 1）", "version": "已保存为新版本", "unchanged": "条款没有变化，未生成新版本",
           "funder": "资方已保存", "active": "产品状态已更新"}


class FormLike(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def getlist(self, key: str) -> list[Any]: ...


async def read_form(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(read_form)]


# --- form parsing (yuan and percent in, fen and fractions out) ----------------------------------------


def form_text(form: FormLike, key: str) -> str:
    value = form.get(key)
    return str(value).strip() if value is not None else ""


def _yuan(form: FormLike, key: str, label: str, *, required: bool = True) -> int | None:
    fen = parse_yuan_text(form_text(form, key), label=label, field=key)  # "20万" as the importer reads it
    if fen is None and required:
        raise ValidationFailed(f"请填写{label}", field=key)
    return fen


def _percent(form: FormLike, key: str, label: str) -> Decimal:
    text = form_text(form, key).rstrip("%") or "0"
    try:
        return parse_rate(f"{text}%")
    except (ValidationFailed, TypeError):
        raise ValidationFailed(f"{label}格式不正确：{text}（百分数，如 12 表示 12%）", field=key) from None


def _int(form: FormLike, key: str, label: str, *, default: int | None = None) -> int | None:
    text = form_text(form, key)
    if not text:
        return default
    try:
        return int(text, 10)
    except ValueError:
        raise ValidationFailed(f"{label}须是整数：{text}", field=key) from None


def _list(form: FormLike, key: str) -> list[str]:
    text = form_text(form, key)
    for sep in ("，", "、", " ", ";", "；"):
        text = text.replace(sep, ",")
    return [part for part in (p.strip() for p in text.split(",")) if part]


def terms_from_form(form: FormLike) -> products.ProductTerms:
    """The product terms of the form (yuan, percent, comma lists); bad input refused in Chinese."""
    terms = []
    for part in _list(form, "terms_months"):
        if not part.isdigit():
            raise ValidationFailed(f"期限须是整数月，用逗号分隔：{part}", field="terms_months")
        terms.append(int(part))
    return products.ProductTerms(
        min_amount=_yuan(form, "min_amount", "最低金额") or 0,
        max_amount=_yuan(form, "max_amount", "最高金额") or 0,
        terms_months=terms,
        repayment_method=form_text(form, "repayment_method") or "equal_installment",
        annual_rate=_percent(form, "annual_rate", "年利率"),
        interest_method=form_text(form, "interest_method") or "declining",
        interest_period=form_text(form, "interest_period") or "same",
        days_in_year=form_text(form, "days_in_year") or "360",
        currency_digits=_int(form, "currency_digits", "货币小数位数", default=2),
        rounding=form_text(form, "rounding") or "half_up",
        installment_multiple_amount=_int(form, "installment_multiple_amount", "还款额取整单位", default=1),
        grace_principal_periods=_int(form, "grace_principal_periods", "只还息宽限期数", default=0),
        grace_interest_periods=_int(form, "grace_interest_periods", "免还款宽限期数", default=0),
        penalty_rate=_percent(form, "penalty_rate", "罚息利率"),
        penalty_basis=form_text(form, "penalty_basis") or "daily",
        overdue_grace_days=_int(form, "overdue_grace_days", "逾期宽限天数", default=0),
        write_off_order=form_text(form, "write_off_order") or "penalty_fee_interest_principal",
        service_fee_rate=_percent(form, "service_fee_rate", "服务费率"),
        service_fee_amount=_yuan(form, "service_fee_amount", "固定服务费", required=False) or 0,
        service_fee_timing=form_text(form, "service_fee_timing") or "per_period",
        deposit_rate=_percent(form, "deposit_rate", "保证金比例"),
        deposit_amount=_yuan(form, "deposit_amount", "固定保证金", required=False) or 0,
        deposit_refundable=form_text(form, "deposit_refundable") in ("1", "on", "true"),
        prepayment_charge_rate=_percent(form, "prepayment_charge_rate", "提前还款违约金比例"),
        min_age=_int(form, "min_age", "最低年龄"),
        max_age=_int(form, "max_age", "最高年龄"),
        regions=_list(form, "regions") or None,
        customer_types=[str(v) for v in form.getlist("customer_types") if str(v).strip()] or None,
        min_income_amount=_yuan(form, "min_income", "最低月收入", required=False),
        **requirements_from_form(form),
    )


def _required(form: FormLike, key: str, label: str) -> bool:
    text = form_text(form, key)
    if text not in ("", "0", "1"):
        raise ValidationFailed(f"{label}只能是：不限、须有（收到「{text[:20]}」）", field=key)
    return text == "1"


def _ratio_percent(form: FormLike, key: str, label: str) -> Decimal | None:
    text = form_text(form, key).rstrip("%").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationFailed(f"{label}格式不正确：{text[:20]}（百分数，如 50 表示 50%）", field=key) from None
    if not value.is_finite():
        raise ValidationFailed(f"{label}格式不正确：{text[:20]}（百分数，如 50 表示 50%）", field=key)
    return value / 100


def requirements_from_form(form: FormLike) -> dict[str, Any]:
    """The 准入条件 on the qualification profile (lending.product_requirements validates the values)."""
    return {
        "min_social_insurance_months": _int(form, "min_social_insurance_months", "最低社保缴纳月数"),
        "min_provident_fund_months": _int(form, "min_provident_fund_months", "最低公积金缴纳月数"),
        "property_required": _required(form, "property_required", "房产要求"),
        "car_required": _required(form, "car_required", "车辆要求"),
        "max_debt_ratio": _ratio_percent(form, "max_debt_ratio", "最高负债率"),
        "min_credit_level": form_text(form, "min_credit_level") or None,
        "max_credit_overdue_count": _int(form, "max_credit_overdue_count", "近两年最多逾期次数"),
        "max_credit_queries_6m": _int(form, "max_credit_queries_6m", "近半年最多查询次数"),
        "allowed_industries": [str(v) for v in form.getlist("allowed_industries") if str(v).strip()] or None,
        "excluded_industries": [str(v) for v in form.getlist("excluded_industries") if str(v).strip()] or None,
    }


def shown_yuan(fen: int) -> str:
    """Fen as grouped yuan without the symbol (templates put ¥ where it belongs): 1234567 -> 1,234.56."""
    return format_yuan(fen, symbol=False)


def _pct(rate: Decimal | None) -> str:
    if rate is None:
        return ""
    text = f"{(Decimal(rate) * 100).normalize():f}"
    return text


def form_values(version: ProductVersion | None, product: Product | None = None) -> dict[str, Any]:
    """The form's fields (yuan, percent) filled from a stored version, or the defaults of a new product."""
    if version is None:
        return {"repayment_method": "equal_installment", "interest_method": "declining", "interest_period": "same",
                "days_in_year": "360", "currency_digits": "2", "rounding": "half_up",
                "installment_multiple_amount": "1", "grace_principal_periods": "0", "grace_interest_periods": "0",
                "penalty_basis": "daily", "service_fee_timing": "per_period", "deposit_refundable": "1",
                "overdue_grace_days": "0", "write_off_order": "penalty_fee_interest_principal",
                "customer_types": [], "allowed_industries": [], "excluded_industries": []}
    values = {
        "min_amount": str(fen_to_yuan(version.min_amount)), "max_amount": str(fen_to_yuan(version.max_amount)),
        "terms_months": ",".join(str(t) for t in version.terms_months),
        "annual_rate": _pct(version.annual_rate), "penalty_rate": _pct(version.penalty_rate),
        "service_fee_rate": _pct(version.service_fee_rate), "deposit_rate": _pct(version.deposit_rate),
        "prepayment_charge_rate": _pct(version.prepayment_charge_rate),
        "service_fee_amount": str(fen_to_yuan(version.service_fee_amount)),
        "deposit_amount": str(fen_to_yuan(version.deposit_amount)),
        "deposit_refundable": "1" if version.deposit_refundable else "",
        "min_age": version.min_age or "", "max_age": version.max_age or "",
        "regions": ",".join(version.regions or []), "customer_types": list(version.customer_types or []),
        "min_income": str(fen_to_yuan(version.min_income_amount)) if version.min_income_amount else "",
        "min_social_insurance_months": version.min_social_insurance_months or "",
        "min_provident_fund_months": version.min_provident_fund_months or "",
        "property_required": "1" if version.property_required else "",
        "car_required": "1" if version.car_required else "",
        "max_debt_ratio": requirements.ratio_percent(version.max_debt_ratio) if version.max_debt_ratio else "",
        "min_credit_level": version.min_credit_level or "",
        "max_credit_overdue_count": "" if version.max_credit_overdue_count is None
        else str(version.max_credit_overdue_count),
        "max_credit_queries_6m": "" if version.max_credit_queries_6m is None else str(version.max_credit_queries_6m),
        "allowed_industries": list(version.allowed_industries or []),
        "excluded_industries": list(version.excluded_industries or []),
    }
    for key in ("repayment_method", "interest_method", "interest_period", "days_in_year", "rounding",
                "penalty_basis", "service_fee_timing", "write_off_order"):
        values[key] = getattr(version, key)
    for key in ("currency_digits", "installment_multiple_amount", "grace_principal_periods",
                "grace_interest_periods", "overdue_grace_days"):
        values[key] = str(getattr(version, key))
    if product is not None:
        values.update(code=product.code, name=product.name, funder_id=str(product.funder_id))
    return values


def _submitted(form: FormLike) -> dict[str, Any]:
    lists = ("customer_types", "allowed_industries", "excluded_industries")
    values: dict[str, Any] = {k: str(v) for k, v in form.items() if k != "csrf_token" and k not in lists}
    for key in lists:
        values[key] = [str(v) for v in form.getlist(key)]
    return values


# --- pages ---------------------------------------------------------------------------------------------


def _context(session: SessionDep, user: ConsoleUser) -> dict[str, Any]:
    return {"choices": CHOICES, "customer_type_labels": CUSTOMER_TYPE_LABELS, "method_labels": METHOD_LABELS,
            "industries": INDUSTRY_CHOICES, "describe_requirements": requirements.describe,
            "funders": products.list_funders(session), "can_edit": user.viewer.role in PRODUCT_EDITORS,
            "yuan": shown_yuan, "pct": _pct, "apr_pct": percent}


@router.get("")
def product_list(request: Request, session: SessionDep, user: Reader) -> Response:
    return render(request, "lending/products.html", {
        **_context(session, user), "rows": products.list_products(session),
        "notice": NOTICES.get(request.query_params.get("done", "")),
    })


def _new_page(request: Request, session: SessionDep, user: ConsoleUser, values: dict[str, Any], *,
              error: AppError | None = None, status_code: int = 200) -> Response:
    return render(request, "lending/product_new.html", {**_context(session, user), "values": values,
                                                        "error": error}, status_code=status_code)


@router.get("/new")
def new_product(request: Request, session: SessionDep, user: Editor) -> Response:
    return _new_page(request, session, user, form_values(None))


@router.post("/new", dependencies=[CsrfChecked])
def create_product(request: Request, session: SessionDep, user: Editor, form: Form) -> Response:
    def action() -> Product:
        return products.create_product(
            session, code=form_text(form, "code"), name=form_text(form, "name"),
            funder_id=parse_int(form_text(form, "funder_id"), default=0) or 0, terms=terms_from_form(form),
            by_staff_id=user.viewer.staff_id, note=form_text(form, "note") or None)

    product, error = attempt(session, action)
    if error is not None or product is None:
        return _new_page(request, session, user, _submitted(form), error=error, status_code=error.status if error
                         else 400)
    return RedirectResponse(f"/console/lending/products/{product.id}?done=created", status_code=303)


def _detail(request: Request, session: SessionDep, user: ConsoleUser, product_id: int, *,
            values: dict[str, Any] | None = None, error: AppError | None = None, status_code: int = 200) -> Response:
    product = products.get_product(session, product_id)
    versions = products.versions_of(session, product.id)
    current = next((v for v in versions if v.id == product.current_version_id), None)
    return render(request, "lending/product.html", {
        **_context(session, user), "product": product, "versions": versions, "current": current,
        "values": values or form_values(current, product), "error": error,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }, status_code=status_code)


@router.get("/preview")
def preview(request: Request, session: SessionDep, user: Reader) -> Response:
    """The schedule table for the form's current values (no saving): the form's live preview."""
    form = request.query_params
    quote, error = None, None
    try:
        terms = terms_from_form(form).normalized()
        amount = _yuan(form, "preview_amount", "试算金额", required=False) or terms.min_amount
        term = _int(form, "preview_term", "试算期限") or terms.terms_months[0]
        products.check_amount_and_term(terms, amount, term)
        start = date.fromisoformat(form_text(form, "preview_start")) if form_text(form, "preview_start") else clock.today()
        quote = products.quote_terms(terms, amount, term, start)
    except AppError as exc:
        error = exc
    except ValueError:
        error = ValidationFailed("试算放款日期格式不正确（年-月-日）")
    return render(request, "lending/_schedule.html", {"quote": quote, "error": error, "yuan": shown_yuan})


@router.get("/{product_id}")
def product_detail(request: Request, session: SessionDep, user: Reader, product_id: int) -> Response:
    return _detail(request, session, user, product_id)


@router.post("/{product_id}/edit", dependencies=[CsrfChecked])
def edit_product(request: Request, session: SessionDep, user: Editor, product_id: int, form: Form) -> Response:
    before = products.get_product(session, product_id).current_version_id

    def action() -> ProductVersion:
        return products.edit_product(
            session, product_id, terms_from_form(form), name=form_text(form, "name") or None,
            funder_id=parse_int(form_text(form, "funder_id")), by_staff_id=user.viewer.staff_id,
            note=form_text(form, "note") or None)

    version, error = attempt(session, action)
    if error is not None or version is None:
        return _detail(request, session, user, product_id, values=_submitted(form), error=error,
                       status_code=error.status if error else 400)
    done = "unchanged" if version.id == before else "version"
    return RedirectResponse(f"/console/lending/products/{product_id}?done={done}", status_code=303)


@router.post("/{product_id}/active", dependencies=[CsrfChecked])
def set_active(request: Request, session: SessionDep, user: Editor, product_id: int, form: Form) -> Response:
    products.set_product_active(session, product_id, form_text(form, "active") == "1")
    return RedirectResponse(f"/console/lending/products/{product_id}?done=active", status_code=303)


# --- funders -------------------------------------------------------------------------------------------


def _funder_action(request: Request, session: SessionDep, user: ConsoleUser, action: Callable[[], object]) -> Response:
    _, error = attempt(session, action)
    if error is not None:
        return render(request, "lending/products.html", {
            **_context(session, user), "rows": products.list_products(session), "error": error,
        }, status_code=error.status)
    return RedirectResponse("/console/lending/products?done=funder#funders", status_code=303)


@router.post("/funders", dependencies=[CsrfChecked])
def create_funder(request: Request, session: SessionDep, user: Editor, form: Form) -> Response:
    return _funder_action(request, session, user, lambda: products.create_funder(
        session, name=form_text(form, "name"), funder_type=form_text(form, "funder_type") or "bank",
        note=form_text(form, "note") or None))


@router.post("/funders/{funder_id}", dependencies=[CsrfChecked])
def update_funder(request: Request, session: SessionDep, user: Editor, funder_id: int, form: Form) -> Response:
    active = form_text(form, "active")
    return _funder_action(request, session, user, lambda: products.update_funder(
        session, funder_id, name=form_text(form, "name") or None, funder_type=form_text(form, "funder_type") or None,
        active=None if not active else active == "1"))
