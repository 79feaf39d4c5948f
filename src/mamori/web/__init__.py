"""The console: server-rendered pages (Jinja2 + htmx) under ``/console``, sessions for people, translations."""
