"""Lending: products, schedule engine, risk rules, application workflow, contracts, disbursement, servicing."""
