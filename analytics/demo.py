"""Demo channel costs and snapshots for `scrm seed-demo`.

Channel costs (渠道成本): the paid channels of the demo customers (抖音, 百度推广, 地推, 电话营销) cost something
twice a month for the last seven months, bought by the demo manager's branch and entered by the admin, one of them voided and entered again — so the
home dashboard's channel analysis shows costs per lead and per loan. Once per database.

Snapshots: for `scrm seed-demo` (after the demo loans, lending.loan_demo): the demo lives its loans
through seven months with the clock travelled back, but no nightly snapshot was taken on those days, so the
risk dashboard's history (overdue trend, roll rates, vintage curves) would start empty. Every past day from
the first loan's start to yesterday is reconstructed by :func:`analytics.snapshots.backfill` (marked
``backfill``); today's is left to the nightly snapshot. Once per database (nothing when any snapshot exists)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import snapshots
from analytics.models import AnalyticsSnapshot, ChannelCost
from core import clock
from crm.models import Staff
from lending.models import Loan

__all__ = ["seed"]


# fen per half month, per paid channel
DEMO_COSTS = {"抖音": 1_200_000, "百度推广": 800_000, "地推": 300_000, "电话营销": 250_000}


def seed(session: Session) -> list[str]:
    return [*_channel_costs(session), *_snapshots(session)]


def _channel_costs(session: Session) -> list[str]:
    admin = session.scalar(select(Staff.id).where(Staff.username == "admin"))
    branch = session.scalar(select(Staff.department_id).where(Staff.username == "manager"))  # bought by the branch
    if admin is None or session.scalar(select(ChannelCost.id).limit(1)) is not None:
        return []
    today, now, rows = clock.today(), clock.now(), []
    month = today.replace(day=1)
    for _ in range(7):
        for day in (month, month.replace(day=15)):
            if day <= today:
                for n, (source, fen) in enumerate(DEMO_COSTS.items()):
                    rows.append(ChannelCost(source=source, spent_on=day, amount=fen + 10_000 * (n + day.month % 3),
                                            department_id=branch,
                                            note=f"{day.month} 月{'上' if day.day == 1 else '下'}半月投放",
                                            created_by_staff_id=admin, created_at=now))
        month = (month - timedelta(days=1)).replace(day=1)
    wrong = ChannelCost(source="抖音", spent_on=today.replace(day=1), amount=12_000_000, note="多录了一个 0",
                        department_id=branch,
                        created_by_staff_id=admin, created_at=now, voided_at=now, voided_by_staff_id=admin,
                        void_reason="金额录错，已重新录入")
    session.add_all([*rows, wrong])
    session.flush()
    return [f"渠道成本：{len(rows)} 条（近 7 个月，{'、'.join(DEMO_COSTS)}），另有 1 条已作废"]


def _snapshots(session: Session) -> list[str]:
    first = session.scalar(select(func.min(Loan.start_date)))
    if first is None or session.scalar(select(AnalyticsSnapshot.snapshot_date).limit(1)) is not None:
        return []
    day, today, count = first, clock.today(), 0
    while day < today:
        snapshots.backfill(session, day)
        day += timedelta(days=1)
        count += 1
    return [f"贷款日快照：补录 {count} 天（{first.isoformat()} 至 {(today - timedelta(days=1)).isoformat()}，由还款记录重建）"]
