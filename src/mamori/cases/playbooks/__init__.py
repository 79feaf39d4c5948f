"""Response playbooks: YAML files with a trigger, conditions and ordered actions, run on case events.

The runner (``PlaybookRunner``) subscribes to the service's ``CaseBus``; the functions below are what
the REST API and the console use to read the run log, decide approvals and read the lists.
"""

from __future__ import annotations

from mamori.cases.playbooks.actions.lists import list_entries
from mamori.cases.playbooks.history import approvals, count_runs, get_run, list_runs, pending_approvals
from mamori.cases.playbooks.loader import load_folder, parse_playbook
from mamori.cases.playbooks.model import Library, Playbook, Refusal
from mamori.cases.playbooks.runner import PlaybookRunner, approve, reject

__all__ = ["Library", "Playbook", "PlaybookRunner", "Refusal", "approvals", "approve", "count_runs", "get_run",
           "list_entries",
           "list_runs", "load_folder", "parse_playbook", "pending_approvals", "reject"]
