"""渠道活码 pages served by the bot at /wecom/channels: admins and managers, CSRF, create/edit/delete."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from bot.models_channel import ChannelCode
from core.settings import get_settings
from crm import auth_service
from tests.factories import make_staff

PAGE = "/wecom/channels"


def login(committed, role: str, wecom_userid: str | None = None) -> tuple[httpx.Client, str, int]:
    with committed() as s:
        staff = make_staff(s, role=role, wecom_userid=wecom_userid, display_name=f"{role}员工")
        token, row = auth_service.open_session(s, staff)
        csrf, staff_id = row.csrf_token, staff.id
        s.commit()
    client = httpx.Client(timeout=20, follow_redirects=False)
    client.cookies.set(get_settings().session_cookie_name, token)
    return client, csrf, staff_id


def codes(committed):
    with committed() as s:
        return s.scalars(select(ChannelCode).order_by(ChannelCode.id)).all()


def test_anonymous_visitors_are_sent_to_login(committed, wecom_server):
    response = httpx.get(wecom_server.base_url + PAGE)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"


def test_salespeople_may_not_open_the_page(committed, wecom_server):
    client, _, _ = login(committed, "sales", "s1")
    assert client.get(wecom_server.base_url + PAGE).status_code == 403


def test_a_form_without_the_csrf_token_is_refused(committed, wecom_server):
    client, _, staff_id = login(committed, "admin", "a1")
    response = client.post(wecom_server.base_url + PAGE, data={"name": "x", "channel": "y", "staff_ids": str(staff_id),
                                                               "csrf_token": "forged"})
    assert response.status_code == 403
    assert codes(committed) == [] and wecom_server.calls("add_contact_way") == []


def test_manager_creates_edits_and_deletes_a_code(committed, wecom_server):
    client, csrf, staff_id = login(committed, "manager", "m1")
    base = wecom_server.base_url + PAGE
    response = client.post(base, data={"csrf_token": csrf, "name": "地推-徐汇", "channel": "地推", "state": "dt_xh",
                                       "staff_ids": str(staff_id), "daily_cap": "30", "skip_verify": "on",
                                       "welcome_text": "欢迎咨询"})
    assert response.status_code == 303 and "error" not in response.headers["location"]
    [code] = codes(committed)
    assert code.config_id and code.daily_cap == 30 and code.welcome_text == "欢迎咨询"
    page = client.get(base)
    assert "地推-徐汇" in page.text and f"{PAGE}/{code.id}/qr.png" in page.text and f'value="{csrf}"' in page.text
    assert "/console/static/console.css" in page.text
    edit = client.get(f"{base}/{code.id}")
    assert edit.status_code == 200 and "dt_xh" in edit.text
    response = client.post(f"{base}/{code.id}", data={"csrf_token": csrf, "name": "地推-徐汇2", "channel": "地推",
                                                      "state": "dt_xh", "staff_ids": str(staff_id)})
    assert response.status_code == 303 and "error" not in response.headers["location"]
    assert codes(committed)[0].name == "地推-徐汇2" and codes(committed)[0].daily_cap is None
    assert wecom_server.calls("update_contact_way")[-1]["body"]["config_id"] == code.config_id
    response = client.post(f"{base}/{code.id}/delete", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert codes(committed)[0].deleted_at is not None
    assert code.config_id not in wecom_server.state()["ways"]


def test_bad_input_comes_back_as_a_chinese_error(committed, wecom_server):
    client, csrf, staff_id = login(committed, "admin", "a2")
    response = client.post(wecom_server.base_url + PAGE, data={"csrf_token": csrf, "name": "x", "channel": "y",
                                                               "state": "有中文", "staff_ids": str(staff_id)})
    assert response.status_code == 303 and "error=" in response.headers["location"]
    assert codes(committed) == []


def test_a_code_shows_its_qr_drawn_here_and_downloads_it_and_a_poster_with_the_staff_name(committed, wecom_server):
    import segno

    from bot import channel_qr

    client, csrf, _ = login(committed, "manager", "m9")
    with committed() as s:
        sales = make_staff(s, role="sales", wecom_userid="s9", display_name="王小明")
        s.commit()
        sales_id = sales.id
    base = wecom_server.base_url + PAGE
    made = client.post(base, data={"csrf_token": csrf, "name": "门店海报", "channel": "门店", "campaign": "徐汇门店",
                            "state": "md_xh", "staff_ids": str(sales_id)})
    assert "error" not in made.headers["location"], made.headers["location"]
    [code] = codes(committed)
    edit = client.get(f"{base}/{code.id}").text
    assert f'<img src="{PAGE}/{code.id}/qr.png"' in edit and "王小明" in edit and ">s9<" not in edit
    image = client.get(f"{base}/{code.id}/qr.png?download=true")
    assert image.headers["content-type"] == "image/png" and "attachment" in image.headers["content-disposition"]
    assert image.content == channel_qr.png(code.qr_code) != channel_qr.png(code.qr_code + "x")
    assert segno.make(code.qr_code, error="m").designator  # the link is what the image encodes
    poster = client.get(f"{base}/{code.id}/poster.svg")
    assert poster.headers["content-type"].startswith("image/svg+xml")
    assert "您的专属顾问 王小明" in poster.text and "徐汇门店" in poster.text
    assert "A&amp;B&lt;" in channel_qr.poster_svg("https://x", title="A&B<", staff_line="y")
    assert httpx.get(f"{base}/{code.id}/qr.png").status_code == 303  # anonymous: to the login page
