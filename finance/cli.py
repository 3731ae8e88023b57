"""``scrm finance …``: the ledger's invariant check and period close from the command line."""

from __future__ import annotations

import json
import sys
from datetime import date

import click

from core import plugins
from core.db import unit_of_work
from core.errors import AppError


def register(group: click.Group) -> None:
    group.add_command(finance)
    from finance import tasks

    tasks.register_hooks()


@click.group()
def finance() -> None:
    """财务中心：总账校验与月结。"""


@finance.command("check")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def check(as_json: bool) -> None:
    """校验总账的每一条不变式：凭证借贷平衡、科目余额等于分录合计、已月结月份未被改动。有问题时以非零状态退出。"""
    from finance.ledger import run_check

    plugins.load_models()
    with unit_of_work() as session:
        result = run_check(session)
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "entries": result.entries, "lines": result.lines,
                               "closed_months": result.closed_months, "problems": result.problems},
                              ensure_ascii=False))
    elif result.ok:
        click.echo(f"总账校验通过：{result.entries} 张凭证，{result.lines} 行分录，{result.closed_months} 个已月结月份")
    else:
        for problem in result.problems:
            click.echo(problem, err=True)
        click.echo(f"总账校验失败：发现 {len(result.problems)} 个问题", err=True)
    if not result.ok:
        sys.exit(1)


@finance.command("close-period")
@click.argument("month")
def close_period(month: str) -> None:
    """月结：锁定 MONTH（YYYY-MM），之后不能再记入该月的凭证。"""
    from finance.ledger import close_period as close

    plugins.load_models()
    try:
        day = date.fromisoformat(f"{month.strip()}-01")
    except ValueError:
        click.echo(f"月份格式不正确：{month}（应为 YYYY-MM）", err=True)
        sys.exit(2)
    try:
        with unit_of_work() as session:
            row = close(session, day, viewer=None)
    except AppError as exc:
        click.echo(exc.message, err=True)
        sys.exit(1)
    click.echo(f"{row.period_month:%Y-%m} 已月结：{row.line_count} 行分录")
