"""``scrm leads import FILE``: import leads from .xlsx / .xls / .ods / .csv, with a progress bar or one JSON object."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from core.errors import AppError


def _resolve_staff(username: str | None) -> int | None:
    if not username:
        return None
    from sqlalchemy import select

    from core.db import unit_of_work
    from crm.models import Staff

    with unit_of_work() as session:
        staff_id = session.scalar(select(Staff.id).where(Staff.username == username))
    if staff_id is None:
        raise AppError(f"员工不存在：{username}", code="staff_not_found")
    return staff_id


def _fail(message: str, as_json: bool, code: int = 1) -> None:
    if as_json:
        click.echo(json.dumps({"error": message}, ensure_ascii=False))
    click.echo(f"导入失败：{message}", err=True)
    sys.exit(code)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--source", default=None, help="来源/渠道（文件中没有“来源”列时使用），默认 import")
@click.option("--assign", "assign_mode", default=None,
              help="导入后自动分配：rules（按分配规则）、round_robin、region、customer_type、weighted")
@click.option("--pool", "pool_id", type=int, default=None, help="新线索进入的公海 ID（默认：默认公海）")
@click.option("--by", "username", default=None, help="导入人（登录名）：撞单提醒与操作记录记在此人名下")
@click.option("--json", "as_json", is_flag=True, help="只输出一个 JSON 对象（无进度条）")
def import_leads(file: Path, source: str | None, assign_mode: str | None, pool_id: int | None,
                 username: str | None, as_json: bool) -> None:
    """导入线索（.xlsx / .xls / .ods / .csv，中文表头）。"""
    from core import plugins
    from crm.importer import service

    plugins.load_models()
    if not file.is_file():
        _fail(f"文件不存在：{file}", as_json, 2)
    bar = None
    try:
        staff_id = _resolve_staff(username)
        if assign_mode:
            service.check_assign_mode(assign_mode)
        progress = None
        if not as_json:
            from tqdm import tqdm

            bar = tqdm(total=None, unit="行", desc="导入", file=sys.stderr, dynamic_ncols=True)

            def progress(counts: dict[str, int]) -> None:
                bar.update(counts["processed"] - bar.n)
                bar.set_postfix(新建=counts["created"], 重复=counts["duplicates_in_file"] + counts[
                    "duplicates_existing"], 撞单=counts["collisions"], 错误=counts["errors"], refresh=False)

        result = service.import_file(file.resolve(), source=source, assign_mode=assign_mode, pool_id=pool_id,
                                     created_by=staff_id, on_progress=progress)
    except AppError as exc:
        if bar is not None:
            bar.close()
        _fail(exc.message, as_json)
        return
    except Exception:  # e.g. the database is down: the `scrm` group says so, after the progress bar's last line
        if bar is not None:
            bar.close()
        raise
    if bar is not None:
        bar.close()
    body = {"job_id": result.job_id, "status": result.status, **result.counts, "report": result.report,
            "previous_job_id": result.previous_job_id}
    if result.status != "done":
        body["message"] = result.message
        if as_json:
            click.echo(json.dumps(body, ensure_ascii=False))
        click.echo(f"导入失败：{result.message}", err=True)
        sys.exit(1)
    if result.message:  # a warning on a finished import (leads left unassigned)
        body["message"] = result.message
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False))
        return
    c = result.counts
    click.echo(f"导入完成（任务 #{result.job_id}）：共 {c['processed']} 行，新建 {c['created']}，"
               f"文件内重复 {c['duplicates_in_file']}，已存在 {c['duplicates_existing']}，撞单 {c['collisions']}，"
               f"错误 {c['errors']}" + (f"，已分配 {c['assigned']}" if assign_mode else ""))
    if result.message:
        click.echo(result.message)
    if result.previous_job_id:
        click.echo(f"提示：同一文件此前已导入过（任务 #{result.previous_job_id}），重复的行未再次创建")
    if result.report:
        click.echo(f"问题行明细：{result.report}")


def register(group: click.Group) -> None:
    leads = group.commands.get("leads")
    if not isinstance(leads, click.Group):
        @group.group("leads")
        def leads() -> None:
            """线索：批量导入。"""
    leads.add_command(import_leads)
