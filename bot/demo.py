"""Demo 渠道活码 for `scrm seed-demo`: three codes answered by the demo salespeople, with a week of adds, so the
channel-code page opens with QR images, posters and figures. Runs once (nothing when a code exists).

The codes are stored as a code created through the simulator would be (a ``config_id`` and WeCom's QR link);
the QR image itself is drawn locally from that link (:mod:`bot.channel_qr`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models_channel import ChannelAdd, ChannelCode
from core import clock
from crm.models import Staff

# (name, state, channel, campaign, salespeople's usernames, daily cap, welcome text, adds per day)
DEMO_CODES = (
    ("门店前台-徐汇", "demo_store_xh", "门店", "门店常驻", ("sales1",), None,
     "您好，我是您的专属贷款顾问，可以直接告诉我您的资金需求～", 3),
    ("地推-陆家嘴写字楼", "demo_ground_ljz", "地推", "2026 冬季地推", ("sales1", "sales2"), 20,
     "感谢扫码！回复“额度”即可免费测算可贷额度。", 5),
    ("朋友圈海报", "demo_moments", "朋友圈", "年终资金周转", ("sales2",), None, None, 2),
)


def seed(session: Session) -> list[str]:
    if session.scalar(select(func.count()).select_from(ChannelCode)):
        return []
    staff = {s.username: s for s in session.scalars(select(Staff).where(Staff.username.in_(("sales1", "sales2",
                                                                                            "admin"))))}
    if not {"sales1", "sales2"} <= staff.keys():
        return []
    now, today = clock.now(), clock.today()
    admin = staff.get("admin")
    for n, (name, state, channel, campaign, usernames, cap, welcome, per_day) in enumerate(DEMO_CODES, start=1):
        members = [staff[u] for u in usernames]
        config_id = f"demo-way-{n}"
        code = ChannelCode(name=name, state=state, channel=channel, campaign=campaign,
                           code_type=1 if len(members) == 1 else 2, staff_ids=[s.id for s in members],
                           backup_staff_ids=[], active_userids=[s.wecom_userid or "" for s in members],
                           referrer_ref=None, welcome_text=welcome, tag_ids=[], daily_cap=cap, skip_verify=True,
                           config_id=config_id, qr_code=f"https://wework.qpic.cn/sim/{config_id}.png", active=True,
                           created_by=admin.id if admin else None, created_at=now - timedelta(days=30),
                           updated_at=now - timedelta(days=30))
        session.add(code)
        session.flush()
        for back in range(7):  # a week of adds, spread over the code's staff
            day = today - timedelta(days=back)
            for i in range(per_day - back % 2):
                member = members[i % len(members)]
                session.add(ChannelAdd(channel_code_id=code.id, staff_userid=member.wecom_userid or "",
                                       staff_id=member.id, external_userid=f"wm_demo_{n}_{back}_{i}", add_date=day,
                                       at=now - timedelta(days=back), customer_id=None))
    session.flush()
    return [f"  渠道活码 {len(DEMO_CODES)} 个（门店、地推、朋友圈）"]
