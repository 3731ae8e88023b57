"""``scrm loan …``: the repayment calculator and the prepayment quote of a loan on the command line."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from core import clock
from core.errors import AppError, ValidationFailed
from core.money import fen_to_yuan, format_yuan, parse_rate, yuan_to_fen
from lending.schedule.apr import annualised_cost, percent
from lending.schedule.cap import apr_cap
from lending.schedule.engine import Schedule, build_schedule
from lending.schedule.terms import FeeTiming, LoanTerms


class _ChineseUsage(click.Command):
    """Bad command-line usage is reported in one Chinese line on stderr, without the usage text."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            message = f"未知参数：{exc.option_name}"
        except click.BadOptionUsage as exc:
            message = f"参数 {exc.option_name} 用法不正确（缺少取值？）"
        except click.UsageError as exc:
            message = f"参数错误：{exc.format_message()}"
        click.echo(message, err=True)
        ctx.exit(2)


def _yuan(text: str, label: str, field: str) -> int:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationFailed(f"{label}格式不正确：{text}", field=field) from None
    if not value.is_finite() or value.as_tuple().exponent < -2:
        raise ValidationFailed(f"{label}须是最多两位小数的金额（元）：{text}", field=field)
    return yuan_to_fen(value)


def _percent(text: str, label: str, field: str) -> Decimal:
    try:
        return parse_rate(text.strip() if text.strip().endswith("%") else f"{text.strip()}%")
    except ValidationFailed:
        raise ValidationFailed(f"{label}格式不正确：{text}（百分数，如 12 表示 12%）", field=field) from None


def _count(text: str, label: str, field: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValidationFailed(f"{label}须是整数：{text}", field=field) from None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"放款日期格式不正确：{text}（应为 YYYY-MM-DD）", field="start_date") from None


def _required(value: str | None, option: str) -> str:
    if value is None or not value.strip():
        raise ValidationFailed(f"缺少参数 {option}", field=option.lstrip("-"))
    return value


def _schedule_json(schedule: Schedule, apr: Decimal) -> dict[str, Any]:
    def yuan(fen: int) -> str:
        return str(fen_to_yuan(fen))

    totals = schedule.totals
    return {
        "periods": [
            {"number": row.number, "due_date": row.due_date.isoformat(), "principal": yuan(row.principal),
             "interest": yuan(row.interest), "fee": yuan(row.fee), "total": yuan(row.total),
             "balance": yuan(row.balance)}
            for row in schedule.periods
        ],
        "totals": {"principal": yuan(totals.principal), "interest": yuan(totals.interest),
                   "fee": yuan(totals.fee), "total": yuan(totals.total)},
        "apr": percent(apr),
    }


_COLUMNS = (("期数", 4), ("还款日", 10), ("本金", 12), ("利息", 10), ("服务费", 9), ("应还", 12), ("剩余本金", 12))


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _line(cells: list[str]) -> str:
    """Cells right-aligned under the headers by display width (a Chinese character is two columns)."""
    return " ".join(" " * (width - _width(cell)) + cell for cell, (_, width) in zip(cells, _COLUMNS, strict=False))


def _schedule_table(schedule: Schedule, apr: Decimal) -> str:
    terms = schedule.terms
    money = lambda fen: format_yuan(fen, symbol=False)  # noqa: E731
    lines = [
        f"{terms.method.label}  本金 {format_yuan(terms.principal)}  年利率 {percent(terms.annual_rate)}%  "
        f"{terms.periods} 期  放款日 {terms.start_date.isoformat()}",
        _line([title for title, _ in _COLUMNS]),
    ]
    for row in schedule.periods:
        note = f"  （利息 {money(row.capitalised)} 计入本金）" if row.capitalised else ""
        lines.append(_line([str(row.number), row.due_date.isoformat(), money(row.principal), money(row.interest),
                            money(row.fee), money(row.total), money(row.balance)]) + note)
    totals = schedule.totals
    lines.append(_line(["合计", "", money(totals.principal), money(totals.interest), money(totals.fee),
                        money(totals.total)]))
    if schedule.upfront_fee:
        lines.append(f"前置服务费：{format_yuan(schedule.upfront_fee)}（放款时扣除）")
    if terms.deposit:
        refund = "到期退还" if terms.deposit_refundable else "不退还"
        lines.append(f"保证金：{format_yuan(terms.deposit)}（放款时扣除，{refund}）")
    lines.append(f"实际到手：{format_yuan(schedule.received)}")
    lines.append(f"综合年化成本：{percent(apr)}%（IRR 法，含全部费用）")
    cap = apr_cap()
    if apr > cap:
        lines.append(f"注意：综合年化成本超过上限 {percent(cap)}%，不能按此报价")
    return "\n".join(lines)


def register(group: click.Group) -> None:
    group.add_command(loan)


@click.group()
def loan() -> None:
    """贷款工具：还款计划试算。"""


@loan.command("schedule", cls=_ChineseUsage)
@click.option("--principal", help="本金，元（如 5000 或 5000.50）")
@click.option("--annual-rate", help="年利率，百分数：12 表示 12%")
@click.option("--periods", help="期数（月）")
@click.option("--method", help="还款方式：equal_installment 等额本息 | equal_principal 等额本金 | "
                                "interest_first 先息后本 | bullet 一次性还本付息")
@click.option("--start", help="放款日期 YYYY-MM-DD，默认今天；每期还款日为该日的月对日（月末顺延至月底）")
@click.option("--interest-method", default="declining", show_default=True,
              help="declining 按剩余本金 | flat 按初始本金（等本等息）")
@click.option("--interest-period", default="same", show_default=True,
              help="same 按月计息（年利率/12）| daily 按两次还款日之间的实际天数计息")
@click.option("--days-in-year", default="360", show_default=True, help="按日计息的年天数：360 | 365 | actual")
@click.option("--rounding", default="half_up", show_default=True, help="舍入方式：half_up 四舍五入 | half_even 银行家舍入")
@click.option("--installment-multiple", default="0.01", show_default=True,
              help="每期还款额取整单位，元（如 1 表示取整到元）；末期多退少补")
@click.option("--grace-principal", default="0", show_default=True, help="只还息不还本的宽限期数")
@click.option("--grace-interest", default="0", show_default=True, help="免还款宽限期数（利息计入本金）")
@click.option("--service-fee-rate", default="0", show_default=True,
              help="服务费率，每期按本金的百分比收取：0.5 表示每期收本金的 0.5%")
@click.option("--upfront-fee", default="0", show_default=True, help="前置服务费，元，放款时扣除")
@click.option("--deposit", default="0", show_default=True, help="保证金，元，放款时扣除、到期退还")
@click.option("--json", "as_json", is_flag=True, help="输出一个 JSON 对象（金额为元的十进制字符串）")
def schedule_command(principal: str | None, annual_rate: str | None, periods: str | None, method: str | None,
                     start: str | None, interest_method: str, interest_period: str, days_in_year: str,
                     rounding: str, installment_multiple: str, grace_principal: str, grace_interest: str,
                     service_fee_rate: str, upfront_fee: str, deposit: str, as_json: bool) -> None:
    """试算还款计划与综合年化成本（IRR 法）。

    例：scrm loan schedule --principal 5000 --annual-rate 12 --periods 18 --method equal_installment
    --start 2022-11-01
    """
    try:
        fee_rate = _percent(service_fee_rate, "服务费率", "service_fee_rate")
        upfront = _yuan(upfront_fee, "前置服务费", "upfront_fee")
        if upfront and fee_rate:
            raise ValidationFailed("每期服务费率与前置服务费只能选一种", field="upfront_fee")
        terms = LoanTerms(
            principal=_yuan(_required(principal, "--principal"), "本金", "principal"),
            annual_rate=_percent(_required(annual_rate, "--annual-rate"), "年利率", "annual_rate"),
            periods=_count(_required(periods, "--periods"), "期数", "periods"),
            method=_required(method, "--method"),
            start_date=_date(start) if start else clock.today(),
            interest_method=interest_method,
            interest_period=interest_period,
            days_in_year=days_in_year,
            rounding=rounding,
            installment_multiple=_yuan(installment_multiple, "还款额取整单位", "installment_multiple"),
            grace_principal=_count(grace_principal, "只还息宽限期数", "grace_principal"),
            grace_interest=_count(grace_interest, "免还款宽限期数", "grace_interest"),
            service_fee_rate=fee_rate,
            service_fee_amount=upfront,
            service_fee_timing=FeeTiming.UPFRONT if upfront else FeeTiming.PER_PERIOD,
            deposit=_yuan(deposit, "保证金", "deposit"),
        )
        schedule = build_schedule(terms)
        apr = annualised_cost(schedule)
    except AppError as exc:
        click.echo(exc.message, err=True)
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps(_schedule_json(schedule, apr), ensure_ascii=False))
    else:
        click.echo(_schedule_table(schedule, apr))



@loan.command("prepay-quote", cls=_ChineseUsage)
@click.option("--loan", "loan_id", help="贷款编号")
@click.option("--date", "on", help="提前还款日期 YYYY-MM-DD")
@click.option("--amount", help="支付金额，元；不填为提前结清")
@click.option("--mode", default="keep_term", show_default=True,
              help="部分提前还款后：keep_term 期限不变减少月供 | keep_installment 月供不变缩短期限")
@click.option("--json", "as_json", is_flag=True, help="输出一个 JSON 对象（金额为元的十进制字符串）")
def prepay_quote_command(loan_id: str | None, on: str | None, amount: str | None, mode: str, as_json: bool) -> None:
    """试算一笔贷款在某日提前结清或部分提前还款的金额（不写入任何数据）。

    例：scrm loan prepay-quote --loan 12 --date 2027-01-08 --amount 5000 --json
    """
    from core.db import unit_of_work
    from lending.models import Loan
    from lending.servicing import prepayments
    from lending.servicing.exceptions import LoanNotFound

    try:
        number = _count(_required(loan_id, "--loan"), "贷款编号", "loan")
        day = _quote_date(_required(on, "--date"))
        fen = _yuan(amount, "支付金额", "amount") if amount else None
        with unit_of_work() as session:
            loan = session.get(Loan, number)
            if loan is None:
                raise LoanNotFound(f"贷款 #{number} 不存在")
            q = prepayments.quote(session, loan, day, amount=fen, mode=mode)
            session.rollback()
    except AppError as exc:
        click.echo(exc.message, err=True)
        raise SystemExit(1) from None
    data = q.as_dict()
    if as_json:
        def yuan(key: str, value: Any) -> Any:
            return str(fen_to_yuan(value)) if key.endswith("_amount") else value

        out = {k[:-7] if k.endswith("_amount") else k: yuan(k, v) for k, v in data.items() if k not in ("due", "schedule")}
        out["due"] = {k: str(fen_to_yuan(v)) for k, v in data["due"].items()}
        out["schedule"] = [{k[:-7] if k.endswith("_amount") else k: yuan(k, v) for k, v in row.items()}
                           for row in data["schedule"]]
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    kind = "提前结清" if q.closes else f"部分提前还款（{prepayments.MODE_LABELS[str(q.mode)]}）"
    lines = [f"贷款 #{q.loan_id}  {q.on.isoformat()}  {kind}  当期为第 {q.period} 期",
             f"已到期未还：{format_yuan(q.due_amount)}（罚息 {format_yuan(q.due['penalty'])}）",
             f"未到期本金：{format_yuan(q.outstanding_principal)}",
             f"提前归还本金：{format_yuan(q.principal_amount)}",
             f"应计利息：{format_yuan(q.accrued_interest_amount)}",
             f"当期费用：{format_yuan(q.fee_amount)}",
             f"提前还款违约金：{format_yuan(q.charge_amount)}",
             f"应付合计：{format_yuan(q.total_amount)}（当日结清需 {format_yuan(q.payoff_amount)}）",
             f"办理后剩余 {len([p for p in q.schedule.periods if p.number > q.period])} 期"]
    click.echo("\n".join(lines))


def _quote_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"日期格式不正确：{text}（应为 YYYY-MM-DD）", field="date") from None


@loan.command("import", cls=_ChineseUsage)
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option("--by", "username", default=None, help="导入人（登录名，须为财务、经理或管理员）：操作记录记在此人名下")
@click.option("--json", "as_json", is_flag=True, help="输出一个 JSON 对象（每笔贷款的结果与问题行）")
def import_command(file: Path | None, username: str | None, as_json: bool) -> None:
    """导入存量贷款（贷款、还款计划、已还金额），.xlsx / .xls / .ods / .csv，中文表头。

    每行一期：贷款编号、姓名、手机号/身份证号、产品、本金、期数、年利率、放款日期、期次、到期日、应还本金、应还利息、
    应还费用、已还金额、还款日期。只有期数没有还款计划行时按产品生成。同一贷款编号再次导入时跳过。
    有问题的行列出行号与原因，该笔贷款整笔不导入，其他贷款照常导入。退出码：全部成功 0，有未导入的贷款 1。
    """
    from sqlalchemy import select

    from core import plugins
    from core.db import unit_of_work
    from crm.models import Staff
    from crm.scope import Viewer
    from lending.servicing import book_import

    plugins.load_models()
    if file is None or not file.is_file():
        click.echo(f"文件不存在：{file or '（未指定）'}", err=True)
        raise SystemExit(2)
    try:
        with unit_of_work() as session:
            viewer = None
            if username:
                staff = session.scalar(select(Staff).where(Staff.username == username))
                if staff is None:
                    raise ValidationFailed(f"找不到登录名为 {username} 的员工", field="by")
                viewer = Viewer.of(staff)
            report = book_import.import_book(session, file.resolve(), viewer=viewer, file_name=file.name)
    except AppError as exc:
        click.echo(exc.message, err=True)
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        click.echo(f"导入完成：新建 {report.count('created')} 笔，已存在跳过 {report.count('skipped')} 笔，"
                   f"未导入 {report.count('refused')} 笔；问题行 {len(report.errors)} 行")
        for r in report.loans:
            if r.status == "created":
                click.echo(f"  {r.loan_number} → 贷款 #{r.loan_id}")
        for e in report.errors:
            click.echo(f"  第 {e.row} 行{f'（{e.loan_number}）' if e.loan_number else ''}：{e.reason}")
    if report.count("refused") or report.errors:
        raise SystemExit(1)
