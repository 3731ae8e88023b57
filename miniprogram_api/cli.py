"""``scrm mp …``: publish the consent documents the mini-program asks customers to agree to."""

from __future__ import annotations

from pathlib import Path

import click

from core.audit import Actor
from core.db import unit_of_work
from core.errors import AppError
from lending import consent


def register(group: click.Group) -> None:
    group.add_command(mp)


@click.group()
def mp() -> None:
    """小程序：协议发布与查看。"""


@mp.command("publish-consent")
@click.option("--kind", type=click.Choice(["privacy", "share"]), required=True,
              help="privacy 隐私政策 | share 向资方共享个人信息授权书")
@click.option("--title", required=True, help="协议标题")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="协议正文（UTF-8 文本文件）")
@click.option("--funder-id", type=int, default=None, help="share 时必填：资方 ID")
def publish_consent(kind: str, title: str, path: Path, funder_id: int | None) -> None:
    """发布协议的新版本：客户需重新同意最新版本后才能提交申请。"""
    try:
        with unit_of_work() as session:
            doc = consent.publish(session, kind, title, path.read_text(encoding="utf-8"), funder_id=funder_id,
                                  actor=Actor.system("scrm mp publish-consent"))
            click.echo(f"已发布《{doc.title}》第 {doc.version} 版（{doc.code}，id={doc.id}）")
    except AppError as exc:
        raise click.ClickException(exc.message) from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException("协议正文必须是 UTF-8 文本") from exc


@mp.command("consents")
def list_consents() -> None:
    """列出每份协议的最新版本。"""
    with unit_of_work() as session:
        for doc in consent.current_documents(session):
            click.echo(f"{doc.id}\t{doc.code}\t第 {doc.version} 版\t{doc.title}")
