from datetime import UTC, date, datetime, timedelta

import pytest

from core import clock


def test_now_is_aware_utc():
    assert clock.now().tzinfo is UTC


def test_business_date_is_shanghai():
    # 2026-01-01 17:30 UTC is already 2 January in Shanghai.
    with clock.frozen(datetime(2026, 1, 1, 17, 30, tzinfo=UTC)):
        assert clock.today() == date(2026, 1, 2)
    assert clock.business_date(datetime(2026, 1, 1, 15, 59, tzinfo=UTC)) == date(2026, 1, 1)


def test_frozen_clock_advances_only_when_told():
    start = datetime(2026, 3, 1, tzinfo=UTC)
    clock.freeze(start)
    assert clock.now() == start
    clock.advance(timedelta(hours=5))
    assert clock.now() == start + timedelta(hours=5)
    clock.unfreeze()
    assert clock.now() != start + timedelta(hours=5)


def test_start_of_business_day_is_midnight_shanghai():
    assert clock.start_of_business_day(date(2026, 5, 1)) == datetime(2026, 4, 30, 16, 0, tzinfo=UTC)


def test_naive_datetimes_are_refused_by_the_database_type():
    from core.db import UTCDateTime

    with pytest.raises(ValueError):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)  # noqa: DTZ001
