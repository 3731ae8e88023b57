"""bot.demo: the demo's channel codes (issue 21 item 6/10): answered by the demo salespeople, with a week of adds;
the console lists them by the staff member's name with their locally drawn QR image and poster."""

from __future__ import annotations

from sqlalchemy import func, select

from bot import channel_codes, demo
from bot.models_channel import ChannelAdd, ChannelCode
from core.settings import get_settings
from crm import auth_service
from tests.factories import make_department, make_staff
from tests.test_admin_support import console_client


def _demo_staff(session):
    dept = make_department(session, "总公司", "company")
    return {u: make_staff(session, role=r, department=dept, username=u, display_name=n, wecom_userid=w)
            for u, r, n, w in (("admin", "admin", "系统管理员", "WangZong"), ("sales1", "sales", "王小明", "WangXiaoMing"),
                               ("sales2", "sales", "赵小红", "ZhaoXiaoHong"))}


def test_seed_makes_three_codes_with_adds_once(session):
    staff = _demo_staff(session)
    assert demo.seed(session)
    codes = channel_codes.list_codes(session)
    assert len(codes) == 3 and all(c.qr_code and c.config_id for c in codes)
    assert {sid for c in codes for sid in c.staff_ids} == {staff["sales1"].id, staff["sales2"].id}
    assert session.scalar(select(func.count()).select_from(ChannelAdd)) > 0
    stats = channel_codes.stats(session, [c.id for c in codes])
    assert all(stats[c.id].adds > 0 and stats[c.id].adds_today > 0 for c in codes)
    assert demo.seed(session) == []
    assert session.scalar(select(func.count()).select_from(ChannelCode)) == 3


def test_demo_codes_show_names_qr_and_poster_in_the_console(committed):
    with committed() as s:
        staff = _demo_staff(s)
        demo.seed(s)
        token, _ = auth_service.open_session(s, staff["admin"])
        code_id = s.scalar(select(ChannelCode.id).where(ChannelCode.state == "demo_ground_ljz"))
        s.commit()
    client = console_client()
    client.cookies.set(get_settings().session_cookie_name, token)
    page = client.get("/wecom/channels").text
    assert "地推-陆家嘴写字楼" in page and "王小明、赵小红" in page and "WangXiaoMing" not in page
    png = client.get(f"/wecom/channels/{code_id}/qr.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    poster = client.get(f"/wecom/channels/{code_id}/poster.svg")
    assert poster.status_code == 200 and "王小明" in poster.text and "<svg" in poster.text
