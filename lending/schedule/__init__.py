"""The schedule engine: exact repayment schedules, prepayment, comprehensive annualised cost and its cap."""
