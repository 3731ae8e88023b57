"""Visits booked from the mini-program, and referral: code, share scene, first-touch attribution, invitees."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import clock
from crm.models import Customer, Visit
from miniprogram_api.models import MpReferralAttribution
from tests.factories import make_department, make_staff


@pytest.fixture
def branch(session):
    company = make_department(session, "公司乙", "company")
    center = make_department(session, "中心乙", "center", company)
    b = make_department(session, "静安分部", "branch", center)
    session.flush()
    return b


def _at(days: float) -> str:
    return (clock.now() + timedelta(days=days)).isoformat()


def test_branches_are_listed(session, mp, branch):
    assert {"id": branch.id, "name": "静安分部"} in mp.client.get("/mp/branches").json()["branches"]


def test_a_visit_is_booked_reschedule_and_cancelled(session, mp, branch):
    mp.login("alice")
    booked = mp.post("/visits", {"department_id": branch.id, "scheduled_at": _at(2), "note": "带身份证"})
    assert booked.status_code == 200, booked.text
    assert booked.json()["status"] == "scheduled" and booked.json()["branch"] == "静安分部"
    moved = mp.post(f"/visits/{booked.json()['id']}/reschedule", {"scheduled_at": _at(3), "reason": "临时有事"})
    assert moved.status_code == 200 and moved.json()["id"] != booked.json()["id"]
    cancelled = mp.post(f"/visits/{moved.json()['id']}/cancel", {"reason": "不需要了"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    statuses = [v["status"] for v in mp.get("/visits").json()["visits"]]
    assert sorted(statuses) == ["cancelled", "rescheduled"]


def test_the_owner_is_told_when_their_customer_books(session, mp, branch):
    from crm.models import Notification

    mp.login("alice")
    owner = make_staff(session, department=branch)
    customer = session.get(Customer, mp.get("/me").json()["id"])
    customer.owner_id, customer.status, customer.pool_id = owner.id, "owned", None
    session.flush()
    mp.post("/visits", {"department_id": branch.id, "scheduled_at": _at(2)})
    assert session.scalar(select(func.count()).select_from(Notification).where(
        Notification.staff_id == owner.id)) == 1


def test_a_visit_in_the_past_is_refused_in_chinese(session, mp, branch):
    mp.login("alice")
    response = mp.post("/visits", {"department_id": branch.id, "scheduled_at": _at(-1)})
    assert response.status_code == 422 and "晚于现在" in response.json()["message"]
    assert session.scalar(select(func.count()).select_from(Visit)) == 0


def test_a_visit_time_without_timezone_is_refused(session, mp, branch):
    mp.login("alice")
    response = mp.post("/visits", {"department_id": branch.id, "scheduled_at": "2030-01-01T10:00:00"})
    assert response.status_code == 422 and "时区" in response.json()["message"]


def test_a_visit_at_a_department_that_is_not_a_branch_is_refused(session, mp, branch):
    mp.login("alice")
    team = make_department(session, "一组乙", "team", branch)
    session.flush()
    response = mp.post("/visits", {"department_id": team.id, "scheduled_at": _at(2)})
    assert response.status_code == 404


# --- referral ------------------------------------------------------------------------------------------

def test_my_referral_code_is_my_referrer_code_and_the_scene_fits_wechat(session, mp):
    from referral.models import Referrer

    mp.login("alice")
    data = mp.get("/referral").json()
    assert data["scene"] == "r=" + data["code"] and len(data["scene"]) <= 32
    assert session.scalar(select(Referrer.code).where(Referrer.customer_id == mp.get("/me").json()["id"])) \
        == data["code"]
    assert mp.get("/referral").json()["code"] == data["code"]  # stable


def test_my_share_code_image_comes_from_wxacode_get_unlimited(session, mp):
    mp.login("alice")
    scene = mp.get("/referral").json()["scene"]
    response = mp.get("/referral/qrcode")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert b"scene\x00" + scene.encode() in response.content
    assert mp.server.calls("wxa/getwxacodeunlimit")[-1]["body"]["scene"] == scene


def test_a_new_user_arriving_through_a_scene_is_attributed_at_first_login(session, mp, mp2):
    from referral.models import Attribution

    mp.login("alice")
    scene = mp.get("/referral").json()["scene"]
    bob = mp2.login("bob", scene=scene)
    assert bob["attributed"] is True
    row = session.scalars(select(MpReferralAttribution)).one()
    alice_id = mp.get("/me").json()["id"]
    assert (row.customer_id, row.referrer_customer_id, row.scene) == (bob["customer"]["id"], alice_id, scene)
    counted = session.scalars(select(Attribution)).one()  # the referral domain's, for commissions
    assert counted.customer_id == bob["customer"]["id"] and counted.source == "miniprogram"


def test_first_touch_wins(session, mp, mp2):
    from tests.mp_support import Mp

    mp.login("alice")
    carol = Mp(mp.client, mp.server)
    carol.login("carol")
    first = mp.get("/referral").json()["scene"]
    mp2.login("bob", scene=first)
    again = mp2.login("bob", scene=carol.get("/referral").json()["scene"])
    assert again["attributed"] is False
    assert session.scalar(select(MpReferralAttribution.referrer_customer_id)) == mp.get("/me").json()["id"]


def test_an_existing_customer_is_not_attributed(session, mp, mp2):
    mp2.login("bob")
    mp.login("alice")
    assert mp2.login("bob", scene=mp.get("/referral").json()["scene"])["attributed"] is False


def test_an_unknown_scene_is_ignored(session, mp):
    assert mp.login("alice", scene="r=ZZZZZZ")["attributed"] is False
    assert mp.login("bob", scene="not-a-scene")["attributed"] is False


def test_my_invitees_are_masked(session, mp, mp2):
    mp.login("alice")
    mp2.login("bob", scene=mp.get("/referral").json()["scene"])
    mp2.bind_phone("13887654321")
    mp2.post("/applications", {"name": "王小明"})
    invitees = mp.get("/referral/invitees").json()["invitees"]
    assert len(invitees) == 1
    assert (invitees[0]["name"], invitees[0]["phone_masked"]) == ("王*明", "138****4321")
    assert "13887654321" not in str(invitees) and "王小明" not in str(invitees)
