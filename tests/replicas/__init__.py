"""End-to-end tests with several `python -m gateway serve` replicas sharing
PostgreSQL (the ledger) and Redis (the limits)."""
