"""What the bench says: the claims table, verdicts, collected series, the report and its plots."""
