"""Storage: events in a Parquet lake queried with DuckDB; records (alerts, users, tokens, state) in
SQLAlchemy models migrated with Alembic (SQLite embedded, PostgreSQL scaled out)."""
