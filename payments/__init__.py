"""Payments: money moving through providers (WeChat Pay JSAPI from the mini-program, withholding 代扣
under the customer's authorisation), signed notifications (inbox), refunds, reconciliation, the
WeChat Pay adapter and the payment simulator. Imports only ``core``.

It knows nothing of what is paid for. An order carries a *purpose* and an *obligation reference*
that the purpose's owner understands; the owner registers the function that applies the money:

    # in the owning domain, imported by its tasks module so that web and worker processes both have it
    from payments import purposes

    def apply_fee(session, settlement: purposes.Settlement) -> str:
        # book the money (idempotent on settlement.out_trade_no); only flush; raise an AppError to refuse
        entry = ledger.post_fee_payment(session, agreement_id=int(settlement.obligation_ref.split(":")[1]),
                                        amount=settlement.amount, reference=settlement.out_trade_no, ...)
        return f"finance_entry:{entry.id}"

    purposes.register("finance.fee", "服务费", apply_fee)

Registered today: ``lending.installment`` (``lending.payment_purposes``: a loan's current bill booked as
a repayment through lending's servicing, write-off order kept) and ``finance.fee``
(``finance.payment_purposes``: an agreement's deposit 定金, or the WeChat part of a charged settlement,
received and posted; refunds of a deposit through ``on_refund``). Then:

- ``payments.checkout.start_jsapi(session, purpose=…, obligation_ref=…, customer_id=…, amount=…,
  description=…, openid=…)`` → (order, the signed ``wx.requestPayment`` parameters);
- ``payments.withholding.request(session, purpose=…, obligation_ref=…, customer_id=…, amount=…,
  description=…)`` → a withholding order under the customer's authorisation (submitted by a task).

The applier runs in the same transaction that marks the payment applied; if it refuses (raises an
``AppError``), the money is held for review (status ``review``) and a person refunds or applies it.

Modules: ``provider`` (the interface), ``wechatpay`` (the adapter on ``wechatpayv3``), ``notify_crypto``
(notification verification), ``inbox`` (store once, process once), ``orders`` (state machine, results,
refunds), ``checkout`` (JSAPI), ``withholding`` (authorisations, debits, retries), ``reconciliation``
(daily bill), ``refunds`` (refunds and their notifications), ``bill_format``, ``purposes``, ``config`` (real or simulated), ``tasks``; the HTTP edge is
``web`` (notification endpoint) and ``simulator/``.
"""
