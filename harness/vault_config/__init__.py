"""The team's Vault configuration: their Helm values judged and made runnable here
(`values.py`), and seed data written as the runbook's `vault kv put` lines (`seed.py`)."""
