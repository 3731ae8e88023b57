"""The kernel: settings, database and unit of work, money, clock, errors, PII vault, audit log,
outbox and task app, auth primitives. Imports nothing of ours."""
