"""The finance center (财务中心): the facilitator's own money.

Service agreements (签单) with 合同确认 and amendments, deposits (定金) with refunds, voids and
short-term loans to the customer, the case officer's work list (做单中心), settlement (结算) after
disbursement with discounts, split payments, added fees and rebates (返点), vouchers, 结单, and the
double-entry ledger under all of it (:mod:`finance.ledger`): every money movement is one balanced,
append-only journal entry; a month is locked by period close (月结).

Layering: ``finance`` may import ``lending``, ``crm``, ``payments`` and ``core``; ``referral`` and the
channels import it, never the other way round.
"""
