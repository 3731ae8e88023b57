"""python -m bench backfill: how long `scrm seed-demo`'s snapshot backfill takes, on the database of
SCRM_DATABASE_URL after `scrm seed-demo` (the demo's nine loans, 215 days). The backfilled days are deleted
and reconstructed again, ``--repeat`` times (a bench may delete its own demo rows; the product never does)."""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from sqlalchemy import delete, func, select


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench backfill")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    from core import clock, plugins
    from core.db import unit_of_work

    plugins.load_models()
    from analytics import snapshots
    from analytics.models import AnalyticsSnapshot, LoanDay
    from lending.models import Loan

    figures = []
    for _ in range(args.repeat):
        with unit_of_work() as session:
            days = select(AnalyticsSnapshot.snapshot_date).where(AnalyticsSnapshot.source == "backfill")
            session.execute(delete(LoanDay).where(LoanDay.snapshot_date.in_(days)))
            session.execute(delete(AnalyticsSnapshot).where(AnalyticsSnapshot.source == "backfill"))
        with unit_of_work() as session:
            day, n = session.scalar(select(func.min(Loan.start_date))), 0
            started = time.perf_counter()
            while day < clock.today():
                if session.get(AnalyticsSnapshot, day) is None:
                    snapshots.backfill(session, day)
                    n += 1
                day += timedelta(days=1)
            figures.append(time.perf_counter() - started)
    print(f"{session.get_bind().dialect.name}: {n} days backfilled, one transaction; "
          f"median {statistics.median(figures):.3f} s, min {min(figures):.3f} s, max {max(figures):.3f} s "
          f"({args.repeat} runs)")
