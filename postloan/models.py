"""Every table of the post-loan package (core.plugins imports this for the metadata)."""

from postloan.telephony.models import DialBatch, DoNotCall, TelephonyCall, TelephonyCallback  # noqa: F401
