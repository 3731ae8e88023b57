"""Loan servicing (贷后): repayments and reversals, penalty interest and bill rollover, overdue buckets.
(Collections work lives in ``postloan``, which joins servicing through ``events``' hook lists.) Modules by use case:

- ``arithmetic`` — pure: penalty interest, buckets, the write-off split
- ``state`` — the loan's state recomputed from its repayments (the one writer of penalty / status / bucket)
- ``loans`` — data-scoped reads
- ``repayments`` — booking and reversal (an amount above what is due becomes a prepayment when chosen, or is kept
  as overpayment credit 溢缴款)
- ``posting`` — the shared posting of a payment or waiver (allocations, state, events, closure)
- ``prepayments`` — the prepayment quote on any date, partial prepayment and payoff
- ``versions`` — schedule versions (every version kept)
- ``waivers`` — 减免 with maker-checker and per-role limits
- ``corrections`` — backdated correction: every later transaction written off again after a reversal
- ``refunds`` — the money of a reversed repayment given back (a failed attempt retried), or part or all of an
  overpayment credit (through ``payments`` or paid out by finance)
- ``restructures`` — extension (展期) and restructure (重组: new periods, a new rate, the overdue capitalised) of
  the principal not yet due, maker-checker
- ``book_import`` — an existing loan book (loans, schedules, paid amounts) imported from a spreadsheet
- ``rollover`` — the periodic bill rollover (per loan)
- ``cob`` — the nightly close of business (set-based, restartable, catch-up)
- ``reminders`` — repayment reminder rows and their dispatch to the channels
- ``events`` — task names and hook lists for downstream packages
"""
