"""Finance's hooks into lending: a disbursed loan puts its agreement's settlement on the 待结算 list.

``lending.loan_disbursed`` has one body (lending's); finance joins its unit of work through the
in-process hook list ``lending.disbursement.ON_LOAN_DISBURSED`` (registered when this module is imported,
which ``core.plugins.load_tasks`` does in every web process and worker, and ``finance.cli`` in every
``scrm`` command), exactly as referral does.

Importing it also registers the payment purpose ``finance.fee`` (:mod:`finance.payment_purposes`) with payments.
"""

from __future__ import annotations

from finance import (
    payment_purposes,  # noqa: F401 - registers the payment purpose finance.fee
    settlements,
)


def register_hooks() -> bool:
    from lending import disbursement

    if settlements.on_loan_disbursed not in disbursement.ON_LOAN_DISBURSED:
        disbursement.ON_LOAN_DISBURSED.append(settlements.on_loan_disbursed)
    return True


register_hooks()
