"""Outsourcing (委外): collection cases assigned to external agencies with a commission rate, recalled at
any time; agency users work their agency's cases in a restricted portal (masked data, every access in the
audit log)."""
