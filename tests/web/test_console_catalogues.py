"""Every console string exists in Japanese and English, and templates use only keys the catalogues have."""

from __future__ import annotations

import re
from importlib import resources

from mamori.cases.workflow import SEVERITIES, STATUSES
from mamori.detect.attack import LEVELS
from mamori.store.records import ALERT_STATUSES, ROLES
from mamori.web.i18n import catalogue, negotiate, translator
from mamori.web.routes.alerts import BULK_ACTIONS
from mamori.web.routes.incidents import CHANGE_FIELDS, CHANGES

KEY_CALL = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]+)['"]""")
ERROR_KEY = re.compile(r"""(?:page_error\(\s*\d+,\s*|"key":\s*)['"]([a-z0-9_.]+)['"]""")
PREFIX_CALL = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]+\.)['"]\s*~""")


def _templates() -> dict[str, str]:
    folder = resources.files("mamori.web") / "templates"
    return {item.name: item.read_text("utf-8") for item in folder.iterdir() if item.name.endswith(".html")}


def _python_sources() -> dict[str, str]:
    folder = resources.files("mamori.web")
    found = {}
    for base in (folder, folder / "routes"):
        for item in base.iterdir():
            if item.name.endswith(".py"):
                found[item.name] = item.read_text("utf-8")
    return found


def test_japanese_and_english_catalogues_have_the_same_keys() -> None:
    assert set(catalogue("ja")) == set(catalogue("en"))
    assert len(catalogue("en")) > 150


def test_every_key_a_template_or_route_names_exists_in_both_catalogues() -> None:
    keys = set(catalogue("en"))
    used: set[str] = set()
    for text in [*_templates().values(), *_python_sources().values()]:
        used |= set(KEY_CALL.findall(text)) | set(ERROR_KEY.findall(text))
    literal_errors = {"login.failed", "login.locked", "login.throttled", "password.wrong", "password.mismatch",
                      "password.short"}
    missing = sorted(k for k in used | literal_errors if k not in keys and not k.endswith("."))
    assert not missing
    assert len(used) > 120 and {"error.csrf", "error.no_incident", "error.not_found"} <= used


def test_every_dynamic_key_family_covers_every_value() -> None:
    keys = set(catalogue("ja"))
    families = {"level.": LEVELS, "severity.": SEVERITIES, "incident_status.": STATUSES,
                "alert_status.": ALERT_STATUSES, "role.": ROLES, "alerts.action.": BULK_ACTIONS,
                "alerts.done.": BULK_ACTIONS, "incident.done.": (*CHANGES, "evidence"),
                "playbooks.done.": ("approve", "reject"), "lang.": ("ja", "en"),
                "timeline_kind.": ("alert", "event", "change", "note"), "change_field.": CHANGE_FIELDS,
                "run_status.": ("running", "waiting", "succeeded", "failed", "rejected", "pending",
                                "waiting_approval", "retrying", "skipped")}
    used_prefixes = {p for text in _templates().values() for p in PREFIX_CALL.findall(text)}
    assert used_prefixes <= set(families) | {"entity."}
    missing = [prefix + value for prefix, values in families.items() for value in values
               if prefix + value not in keys]
    assert not missing


def test_japanese_strings_are_japanese() -> None:
    ja, en = catalogue("ja"), catalogue("en")
    assert ja["nav.incidents"] == "インシデント"
    alike = ("lang.", "app.name", "common.id", "incidents.sla", "dashboard.mtta", "dashboard.mttr")
    same = [k for k in ja if ja[k] == en[k] and not k.startswith(alike)]
    assert len(same) < 5, same


def test_browser_language_decides_before_login() -> None:
    assert negotiate("ja-JP,ja;q=0.9,en;q=0.8") == "ja"
    assert negotiate("en-US,en;q=0.9,ja;q=0.5") == "en"
    assert negotiate("fr-FR, ja;q=0.3") == "ja"
    assert negotiate("de-DE") == "en"
    assert negotiate(None) == "en"


def test_times_show_in_jst_for_japanese_readers_by_default() -> None:
    assert translator("ja").time("2026-11-29T00:30:00+00:00") == "2026-11-29 09:30 JST"
    assert translator("en").time("2026-11-29T00:30:00Z") == "2026-11-29 00:30 UTC"
    assert translator("en", "Asia/Tokyo").time("2026-11-29T00:30:00Z", seconds=True) == "2026-11-29 09:30:00 JST"
    assert translator("ja").time(None) == ""
