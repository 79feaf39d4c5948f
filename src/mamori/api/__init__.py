"""The REST API (FastAPI): events, alerts, rules, ingest, health and metrics, with token auth and roles."""
