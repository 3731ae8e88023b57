"""Loan servicing (贷后): repayments and reversals, penalty interest and bill rollover, overdue buckets,
collections. Modules by use case:

- ``arithmetic`` — pure: penalty interest, buckets, the write-off split
- ``state`` — the loan's state recomputed from its repayments (the one writer of penalty / status / bucket)
- ``loans`` — data-scoped reads
- ``repayments`` — booking and reversal
- ``rollover`` — the periodic bill rollover
- ``collections`` — queue, assignment, actions, promises to pay, phone reveal
- ``events`` — task names and hook lists for downstream packages
"""
