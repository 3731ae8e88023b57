"""Risk rules (风控规则): a safe expression language, rule sets per product, credit providers, evaluation.

- ``expressions``: parse (ast, allow-listed nodes) and evaluate rule conditions and credit-limit formulas.
- ``rules``: rule sets saved as immutable versions, every expression checked at save time.
- ``facts``: the facts rules can use; ``FactsProvider`` lets the application module count recent applications.
- ``credit``: ``CreditProvider`` and the deterministic ``FakeCreditProvider``.
- ``evaluate``: run a product's rules for a customer, store the evaluation (masked inputs), dry runs.
"""
