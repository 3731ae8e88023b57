"""Referral: referrers, attribution, commission rules, ledger, payouts.

Entry points for the other packages (they may import referral; referral never imports them):

* ``referral.attribution.attribute(session, customer_id, code_or_id, source="miniprogram"|"wecom"|"manual",
  at=None)`` - first touch wins; refuses self-referrals and loops (``SelfReferral``, ``ReferralLoop``) and
  unknown codes (``ReferrerNotFound``) before writing anything. Mini-program scenes and WeCom channel codes.
* ``referral.mine`` - for the mini-program: ``referrer_for_customer``, ``my_invitees`` (masked),
  ``my_ledger``, ``my_balance``, ``withdraw``, ``my_withdrawals``.
* ``referral.ledger.accrue_for_disbursement(...)`` - runs from lending's ``ON_LOAN_DISBURSED`` hook
  (registered by ``referral.tasks``); ``reverse_for_loan`` for refunds, voids and cancellations;
  ``record_service_fee_collected`` and ``accrue_bounty`` for fees and events collected later.
* ``referral.bounties`` - the first-application and visit bounties, run from lending's
  ``ON_APPLICATION_STARTED`` and crm's ``ON_VISIT_ARRIVED`` hooks (also registered by ``referral.tasks``).
"""
