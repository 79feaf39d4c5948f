"""The Sigma correlation specification's chain example (failed logins, then a successful one) and logon
logs to run it on, shared by the correlation tests of the engine, the hunt and the service."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from mamori.hunt import discover, read_share
from mamori.sources.base import ReadOptions

# the example of the Sigma correlation specification (2.0, "Failed Logins Followed by Successful
# Login"), with a threshold of 3 instead of 10 to keep the events few
SPEC_EXAMPLE = """
title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
status: experimental
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 3
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
"""
OUTER = "b180ead8-d58f-40b2-ae54-c8940995b9b6"
INNER = "a8418a5a-5fc4-46b5-b23b-6c73beb19d41"
FAILED = "53ba33fd-3a50-4468-a5ef-c583635cfa92"
SUCCESS = "4d0a2c83-c62c-4ed4-b475-c7e23a9269b8"
def logon_log(tmp_path: Path, logons: list[tuple[int, int, str]], name: str = "logons") -> Path:
    events = [{"EventID": event_id, "Channel": "Security", "Computer": "dc1", "User": user,
               "TimeCreated_SystemTime": f"2024-05-01T00:{s // 60:02d}:{s % 60:02d}Z"} for event_id, s, user in logons]
    log = tmp_path / f"{name}.jsonl"
    log.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    return log


def spec_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "mr_failed_then_success.yml").write_text(SPEC_EXAMPLE)
    return rules


BRUTE_FORCE = [(4625, 1, "bob"), (4625, 5, "bob"), (4625, 9, "bob"), (4624, 30, "bob"),
               (4625, 40, "amy"), (4624, 50, "amy")]


def frames(log: Path) -> list[pl.DataFrame]:
    files, _ = discover([log], None)
    return [result.frame for result, _ in read_share(files, ReadOptions()) if result.frame.height]
