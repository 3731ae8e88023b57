"""The whole chat-command round trip with real workers: callback POST → inbox task on the
in-process runner → command → app message recorded by the simulator. Measured, not asserted
(timing belongs to bench/chat.py); the test fails only if no reply arrives at all."""

from __future__ import annotations

import time

from core import tasks
from tests.factories import make_customer, make_department, make_staff


def test_command_round_trip_reaches_the_simulator(committed, wecom_server, record_property):
    with committed() as s:
        staff = make_staff(s, department=make_department(s), wecom_userid="rt_sales", data_scope="own")
        make_customer(s, name="往返测试", phone="13912345678", owner=staff)
        s.commit()
    runner = tasks.InProcessRunner(workers=2, periodic_jobs=False)
    runner.start()
    tasks.set_runner(runner)
    driver = wecom_server.driver()
    try:
        started = time.perf_counter()
        assert driver.text_message("rt_sales", "查 13912345678").accepted
        reply = None
        deadline = time.monotonic() + 30  # a bound on waiting, not a latency requirement
        while reply is None and time.monotonic() < deadline:
            found = [m for m in wecom_server.state()["app_messages"] if m["touser"] == ["rt_sales"]]
            reply = found[0] if found else None
            if reply is None:
                time.sleep(0.005)
        elapsed_ms = (time.perf_counter() - started) * 1000
    finally:
        driver.close()
        tasks.set_runner(None)
        runner.stop()
    assert reply is not None, "no reply within 30 s"
    assert "往返测试 139****5678" in reply["content"]["content"]
    record_property("chat_round_trip_ms", round(elapsed_ms, 1))
    print(f"chat command round trip: {elapsed_ms:.1f} ms")
