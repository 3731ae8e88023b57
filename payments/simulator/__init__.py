"""The built-in WeChat Pay simulator (``/_pay_sim``): JSAPI orders, queries, refunds, bills and
withholding, answers signed with its own platform key, notifications signed and encrypted the way
WeChat Pay sends them, and a console page (支付模拟器) to succeed, fail or delay a payment and send
notifications (duplicates and forged ones included).
"""

from __future__ import annotations


def is_active() -> bool:
    """Whether payments go to the simulator (no real WeChat Pay merchant configured).

    Production must refuse to start when this is true (wired into core's startup checks at merge)."""
    from payments import config

    return config.simulated()
