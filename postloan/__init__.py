"""Post-loan collections (贷后催收): cases, allocation, scripts, telephony, outsourcing.

Named ``postloan`` because a top-level ``collections`` package would shadow the standard library's."""
