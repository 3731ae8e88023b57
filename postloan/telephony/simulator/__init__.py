"""The built-in call-center simulator (``/_tel_sim``): click-to-call and batch dial lists over the JSON
protocol of :mod:`postloan.telephony.provider` (Bearer API key checked), a result callback per call signed
as a real call center would (:mod:`postloan.telephony.signing`) and sent over HTTP to our callback
endpoint, recordings to play, and a console page (外呼模拟器) to answer, miss or refuse a call, and to send
duplicate or forged callbacks.
"""

from __future__ import annotations


def is_active() -> bool:
    """Whether calls go to the simulator (no real call center configured)."""
    from postloan.telephony import config

    return config.simulated()
