"""The ``scrm`` command. Packages add their own commands through ``<app>.cli.register(group)``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from core import plugins, simulators
from core.settings import get_settings, missing_secrets, reset_settings_cache

DATABASE_UNAVAILABLE = "数据库暂时不可用（无法连接或正在重启），请稍后重试"


class _Commands(click.Group):
    """Every command: a database that is down or restarting is a clear message and exit status 1, not a traceback
    (the web answers 503 for the same, :func:`core.web.create_app`)."""

    def invoke(self, ctx: click.Context) -> object:
        from sqlalchemy import exc as sa_exc

        try:
            return super().invoke(ctx)
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
            click.echo(f"{DATABASE_UNAVAILABLE}。（{detail}）", err=True)
            ctx.exit(1)


@click.group(cls=_Commands)
@click.pass_context
def main(ctx: click.Context) -> None:
    """贷款助贷 SCRM: serve, run workers, migrate, seed demo data."""
    from core import tasks
    from core.logging_setup import configure_logging

    configure_logging()
    if ctx.invoked_subcommand not in ("serve", "worker", "beat") and get_settings().embedded_tasks \
            and tasks.get_runner() is None:
        # Embedded default: tasks a command enqueues (notifications, automation) run here after its
        # commits, before the command exits; `scrm serve` runs its own background runner instead.
        runner = tasks.ManualRunner()
        tasks.set_runner(runner)

        def _drain() -> None:
            if ctx.invoked_subcommand == "seed-demo":
                # Its tasks (staff notifications pushed to WeCom, the loan-disbursed hooks) wait in the outbox
                # for `scrm serve`'s relay: the WeCom simulator they talk to is not up before the server is.
                tasks.set_runner(None)
                return
            plugins.load_tasks()
            runner.drain()
            tasks.set_runner(None)

        ctx.call_on_close(_drain)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="web processes (production)")
@click.option("--reload", is_flag=True, help="restart on code changes (development)")
@click.option("--backlog", default=2048, show_default=True, type=int, help="pending TCP connections")
@click.option("--worker-healthcheck-timeout", default=60, show_default=True, type=int,
              help="--workers > 1: seconds a web process may take to answer its supervisor before it is killed")
def serve(host: str, port: int, workers: int, reload: bool, backlog: int, worker_healthcheck_timeout: int) -> None:
    """Serve the console, the APIs and the callbacks."""
    import uvicorn

    from core.logging_setup import uvicorn_log_config

    settings = get_settings()
    if "base_url" not in settings.model_fields_set:
        # Links and the built-in WeCom simulator's address follow where we actually listen.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        os.environ["SCRM_BASE_URL"] = f"http://{shown}:{port}"
        reset_settings_cache()
        settings = get_settings()
    if workers > 1 and settings.embedded_tasks:
        raise click.UsageError("--workers > 1 needs SCRM_REDIS_URL: in-process tasks would run once per process")
    if workers > 1 and settings.is_sqlite:
        raise click.UsageError("--workers > 1 needs PostgreSQL (SCRM_DATABASE_URL)")
    _require_secrets()
    click.echo(f"控制台: http://{host}:{port}/console/")
    # uvicorn's "auto" picks httptools and uvloop (installed with uvicorn[standard]); the access log is an
    # INFO record per request: off unless the log level shows it.
    uvicorn.run("core.web:create_served_app", factory=True, host=host, port=port, workers=workers, reload=reload,
                log_level=settings.log_level.lower(), log_config=uvicorn_log_config(settings.log_level),
                proxy_headers=True,
                access_log=settings.log_level.upper() in ("DEBUG", "INFO"), backlog=backlog,
                # uvicorn pings each worker every 0.5 s and SIGKILLs one that has not answered within this
                # (its default: 5 s). On a busy machine (2 cores at load 10-24 under the console load bench) a
                # worker starting up, or one busy serving, missed it: killed while starting (the bench's servers
                # took minutes to come up) or mid-request (the answers in flight lost).
                timeout_worker_healthcheck=worker_healthcheck_timeout)


def _require_secrets() -> None:
    """Refuse to start without the secrets (or with malformed keys), rather than answer 500 later."""
    from core.pii import Keyring, VaultError

    missing = missing_secrets(get_settings())
    if missing:
        raise click.ClickException(f"缺少密钥 {', '.join(missing)}：先运行 `scrm init-secrets`（写入 .env），"
                                   "或从密钥库设置这些环境变量")
    try:
        Keyring.from_settings()
    except VaultError as exc:
        raise click.ClickException(f"{exc.message}；修正后再启动（新部署可运行 `scrm init-secrets`）") from exc


def _celery():
    from core import tasks

    settings = get_settings()
    if not settings.redis_url:
        raise click.UsageError("SCRM_REDIS_URL is not set: the embedded default runs tasks inside `scrm serve`")
    _require_secrets()
    plugins.load_models()
    plugins.load_tasks()
    # A worker sends the WeCom messages and payment calls: it refuses simulators in production as the web does.
    try:
        simulators.check()
    except simulators.SimulatorInProduction as exc:
        raise click.ClickException(str(exc)) from exc
    return tasks.configure_celery()


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", default=2, show_default=True, type=int)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int, extra: tuple[str, ...]) -> None:
    """Run a Celery worker (production)."""
    from core.tasks import QUEUES

    _celery().worker_main(["worker", "--loglevel", get_settings().log_level, "--concurrency",
                           str(concurrency), "--queues", ",".join(QUEUES), *extra])


@main.command()
def beat() -> None:
    """Run Celery beat with the periodic schedule (production; run exactly one)."""
    _celery().start(["beat", "--loglevel", get_settings().log_level])


@main.group()
def db() -> None:
    """Database migrations."""


def alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


@db.command()
@click.argument("revision", default="heads")
def upgrade(revision: str) -> None:
    """Apply migrations (default: every head)."""
    from alembic import command

    command.upgrade(alembic_config(), revision)
    click.echo("数据库已迁移到最新版本")


@db.command()
@click.argument("message")
def revision(message: str) -> None:
    """Create a migration by comparing the models with the database (development)."""
    from alembic import command

    command.revision(alembic_config(), message=message, autogenerate=True)


@main.command("init-secrets")
@click.option("--env-file", default=".env", show_default=True, type=click.Path(dir_okay=False))
def init_secrets(env_file: str) -> None:
    """Write missing secrets (session signing, PII keys, blind-index key) to the .env file."""
    from core.pii import generate_key
    from core.security import new_token

    path = Path(env_file)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    wanted = {
        "SCRM_SECRET_KEY": new_token(32),
        "SCRM_PII_KEYS": f"k1:{generate_key()}",
        "SCRM_BLIND_INDEX_KEY": generate_key(),
        # The simulator's callback credentials; replace with the real app's when connecting a corp.
        "SCRM_WECOM_TOKEN": new_token(12),
        "SCRM_WECOM_AES_KEY": generate_key().rstrip("="),
    }
    present = {line.split("=", 1)[0].strip() for line in existing.splitlines() if "=" in line}
    present |= {k for k in wanted if os.environ.get(k)}
    added = [f"{k}={v}" for k, v in wanted.items() if k not in present]
    if added:
        with path.open("a", encoding="utf-8") as fh:
            if existing and not existing.endswith("\n"):
                fh.write("\n")
            fh.write("\n".join(added) + "\n")
        path.chmod(0o600)
    click.echo(f"{len(added)} secret(s) written to {path}" if added else "secrets already present")
    reset_settings_cache()


@main.group()
def pii() -> None:
    """The PII vault."""


@pii.command()
@click.option("--batch-size", default=1000, show_default=True, type=int)
def rotate(batch_size: int) -> None:
    """Re-encrypt every phone and ID number under the active key (SCRM_PII_ACTIVE_KEY_ID)."""
    from core import pii_rotation

    plugins.load_models()
    counts = pii_rotation.rotate_all(batch_size)
    click.echo(json.dumps(counts, ensure_ascii=False))


@main.command("seed-demo")
def seed_demo() -> None:
    """Load demo data (idempotent: runs once per database)."""
    from core.db import unit_of_work

    plugins.load_models()
    plugins.load_tasks()
    modules = plugins.load_all("demo")
    with unit_of_work() as session:
        lines: list[str] = []
        for module in modules:
            lines.extend(module.seed(session) or [])
    for line in lines:
        click.echo(line)


@main.command("backup")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="backup file (default: var/backups/scrm-<UTC time>.dump or .sqlite3)")
def backup_cmd(out: str | None) -> None:
    """A consistent copy of the database: pg_dump (custom format) on PostgreSQL, the SQLite backup API on SQLite."""
    from datetime import UTC, datetime

    from core import backup
    from core.settings import VAR_DIR

    url = get_settings().database_url
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = str(VAR_DIR / "backups" / f"scrm-{stamp}.{'dump' if url.startswith('postgresql') else 'sqlite3'}")
    try:
        result = backup.backup(url, Path(out))
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"path": str(result.path), "kind": result.kind, "bytes": result.size}))


def _register_plugins() -> None:
    for module in plugins.load_all("cli"):
        module.register(main)


_register_plugins()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
