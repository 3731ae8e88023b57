"""Referral: referrers, attribution, commission rules, ledger, payouts."""
