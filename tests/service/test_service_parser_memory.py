"""A parser process's memory stays bounded under a stream of mixed Windows events: nearly every batch
of such a stream has a column set of its own (its few rare events bring rare fields), and the OCSF
normalisation plan is made per column set, so only a few plans are kept, with the same fields."""

from __future__ import annotations

from polars.testing import assert_frame_equal

from mamori.events import ocsf
from mamori.sources.winjson import records_to_frame

LOGON = {"EventID": "4624", "Channel": "Security", "Provider_Name": "Microsoft-Windows-Security-Auditing",
         "Computer": "ws01.corp.example", "TargetUserName": "alice", "LogonType": "3", "IpAddress": "10.0.0.5"}
PROCESS = {"EventID": "1", "Channel": "Microsoft-Windows-Sysmon/Operational", "Provider_Name":
           "Microsoft-Windows-Sysmon", "Computer": "ws02.corp.example", "User": "CORP\\bob",
           "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all",
           "ParentImage": "C:\\Windows\\explorer.exe"}


def test_batches_each_with_new_columns_keep_a_bounded_number_of_plans_and_the_same_fields() -> None:
    table = ocsf.table_for("winjson")
    assert table is not None
    rare = sorted(ocsf._table_columns(table) - {*LOGON, *PROCESS, "_time", "EventTime"})
    batches = 3 * ocsf.PLANS_KEPT
    assert len(rare) >= batches
    events = [[LOGON, PROCESS, {**PROCESS, rare[n]: f"value{n}"}] for n in range(batches)]
    ocsf._plan.cache_clear()
    streamed = []
    for batch in events:
        streamed.append(records_to_frame(batch, "syslog+tcp://10.0.0.9"))
        assert ocsf._plan.cache_info().currsize <= ocsf.PLANS_KEPT
    assert ocsf._plan.cache_info().misses == batches  # every batch had columns of its own
    for batch, frame in zip(events, streamed, strict=True):
        ocsf._plan.cache_clear()  # each batch alone, its plan made afresh
        assert_frame_equal(frame, records_to_frame(batch, "syslog+tcp://10.0.0.9"))
    assert streamed[0].row(0, named=True)["user.name"] == "alice"
    assert streamed[0].row(1, named=True)["process.file.path"] == "C:\\Windows\\System32\\whoami.exe"
