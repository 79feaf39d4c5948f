"""The console: server-rendered pages (Jinja2 + htmx) under ``/console``, sessions for people, translations.

``mamori serve`` serves it at ``http://127.0.0.1:8844/console/``. A person logs in with a user name (the
users of ``mamori users add``, whose role bounds what they may do) and a console password set with
``mamori users passwd NAME``. Pages: dashboard, alerts, incidents (timeline, entity graph, notes,
evidence, approvals, reports), event search, rules, playbooks and approvals, preferences (language,
time zone, password). Every string is in ``locales/ja.yaml`` and ``locales/en.yaml``; charts are SVG
drawn on the server; htmx is served from the installed ``django-htmx`` package, and every page also
works without JavaScript.
"""
