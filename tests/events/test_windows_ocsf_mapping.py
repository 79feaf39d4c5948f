"""Windows events get their OCSF class, activity, status and entity fields from
``events/ocsf/windows.yaml``: one small event per class, checked field by field, read the way the
service reads them (decoded JSON objects, ``winjson``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from mamori_testing import shared_data
from polars.testing import assert_frame_equal

from mamori.events.ocsf import ClassRule, builtin_tables, normalise
from mamori.sources.evtx import read_evtx_files
from mamori.sources.winjson import records_to_frame

SECURITY = {"Channel": "Security", "Provider_Name": "Microsoft-Windows-Security-Auditing", "Computer": "dc1.corp.local"}
SYSMON = {"Channel": "Microsoft-Windows-Sysmon/Operational", "Provider_Name": "Microsoft-Windows-Sysmon",
          "Computer": "ws01.corp.local"}


def ocsf(event: dict[str, Any]) -> dict[str, Any]:
    """The one event, normalised, as a row."""
    frame = records_to_frame([event], "test")
    assert frame.height == 1
    return frame.row(0, named=True)


def expect(row: dict[str, Any], **fields: str | None) -> None:
    """Compare OCSF fields (``process__pid`` stands for ``process.pid``) one by one."""
    for key, value in fields.items():
        name = key.replace("__", ".")
        assert row.get(name) == value, f"{name}: {row.get(name)!r} != {value!r}"


def test_both_windows_readers_share_the_windows_table() -> None:
    tables = builtin_tables()
    assert tables["evtx"] is tables["winjson"]
    assert tables["evtx"].origin.endswith("windows.yaml")


def test_successful_logon_is_an_authentication_logon_with_user_source_and_logon_type() -> None:
    row = ocsf({**SECURITY, "EventID": 4624, "Keywords": "0x8020000000000000", "SubjectUserName": "DC1$",
                "SubjectDomainName": "CORP", "TargetUserName": "alice", "TargetDomainName": "CORP",
                "TargetUserSid": "S-1-5-21-1-2-3-1104", "TargetLogonId": "0x1414c8", "LogonType": "10",
                "IpAddress": "10.0.0.5", "IpPort": "50123", "WorkstationName": "WS07",
                "AuthenticationPackageName": "Negotiate", "LogonProcessName": "User32 "})
    expect(row, class_uid="3002", category_uid="3", activity_id="1", type_uid="300201",
           status_id="1", status="Success", user__name="alice", user__domain="CORP",
           user__uid="S-1-5-21-1-2-3-1104", actor__user__name="DC1$", actor__user__domain="CORP",
           src_endpoint__ip="10.0.0.5", src_endpoint__port="50123", src_endpoint__hostname="WS07",
           logon_type_id="10", logon_type="Remote Interactive", session__uid="0x1414c8",
           auth_protocol="Negotiate", auth_protocol_id="99", device__hostname="dc1.corp.local",
           metadata__event_code="4624", metadata__log_name="Security",
           metadata__product__name="Microsoft Windows", metadata__product__vendor_name="Microsoft")


def test_failed_logon_is_an_authentication_failure_with_its_status_codes() -> None:
    row = ocsf({**SECURITY, "EventID": 4625, "TargetUserName": "administrator", "LogonType": "3",
                "IpAddress": "203.0.113.7", "IpPort": "-", "Status": "0xc000006d", "SubStatus": "0xc000006a",
                "AuthenticationPackageName": "NTLM"})
    expect(row, class_uid="3002", activity_id="1", status_id="2", status="Failure", status_code="0xc000006d",
           status_detail="0xc000006a", user__name="administrator", src_endpoint__ip="203.0.113.7",
           src_endpoint__port=None, logon_type_id="3", logon_type="Network", auth_protocol="NTLM",
           auth_protocol_id="1")


def test_a_dash_means_absent_in_mapped_fields() -> None:
    row = ocsf({**SECURITY, "EventID": 4624, "TargetUserName": "bob", "IpAddress": "-", "IpPort": "-",
                "WorkstationName": "-"})
    expect(row, src_endpoint__ip=None, src_endpoint__port=None, src_endpoint__hostname=None, user__name="bob")


@pytest.mark.parametrize(("event_id", "activity"), [(4634, "2"), (4647, "2"), (4648, "1"), (4776, "1")])
def test_logoff_and_explicit_or_ntlm_logons_are_authentication(event_id: int, activity: str) -> None:
    row = ocsf({**SECURITY, "EventID": event_id, "TargetUserName": "alice", "Status": "0x0"})
    expect(row, class_uid="3002", activity_id=activity, status="Success", user__name="alice")


@pytest.mark.parametrize(("status", "outcome", "status_id"), [("0x0", "Success", "1"), ("0x6", "Failure", "2")])
def test_a_kerberos_ticket_request_succeeds_only_with_status_zero(status: str, outcome: str, status_id: str) -> None:
    row = ocsf({**SECURITY, "EventID": 4768, "TargetUserName": "HD01", "IpAddress": "::ffff:172.16.66.1",
                "Status": status, "ServiceName": "krbtgt/CORP.LOCAL"})
    expect(row, class_uid="3002", activity_id="3", type_uid="300203", status=outcome, status_id=status_id,
           auth_protocol="Kerberos", auth_protocol_id="2", service__name="krbtgt/CORP.LOCAL",
           src_endpoint__ip="::ffff:172.16.66.1", user__name="HD01")


@pytest.mark.parametrize(("event_id", "activity", "outcome"), [(4769, "4", "Success"), (4770, "5", "Success"),
                                                                (4771, "6", "Failure")])
def test_kerberos_service_tickets_and_preauthentication(event_id: int, activity: str, outcome: str) -> None:
    row = ocsf({**SECURITY, "EventID": event_id, "TargetUserName": "alice", "Status": "0x0" if outcome == "Success"
                else "0x18"})
    expect(row, class_uid="3002", activity_id=activity, status=outcome, auth_protocol="Kerberos")


def test_special_privileges_at_logon_authorise_the_session() -> None:
    row = ocsf({**SECURITY, "EventID": 4672, "SubjectUserName": "admin01", "SubjectDomainName": "CORP",
                "SubjectLogonId": "0x14871d", "PrivilegeList": "SeDebugPrivilege"})
    expect(row, class_uid="3003", category_uid="3", activity_id="1", user__name="admin01", user__domain="CORP",
           session__uid="0x14871d", privileges="SeDebugPrivilege")


@pytest.mark.parametrize(("event_id", "activity"), [(4720, "1"), (4722, "2"), (4723, "3"), (4724, "4"),
                                                    (4725, "5"), (4726, "6"), (4740, "9"), (4767, "12"),
                                                    (4738, "99")])
def test_account_management_is_account_change(event_id: int, activity: str) -> None:
    row = ocsf({**SECURITY, "EventID": event_id, "SubjectUserName": "admin01", "TargetUserName": "mallory",
                "TargetSid": "S-1-5-21-1-2-3-1337"})
    expect(row, class_uid="3001", category_uid="3", activity_id=activity, user__name="mallory",
           user__uid="S-1-5-21-1-2-3-1337", actor__user__name="admin01")


@pytest.mark.parametrize(("event_id", "activity"), [(4728, "3"), (4732, "3"), (4756, "3"),
                                                    (4729, "4"), (4733, "4"), (4757, "4")])
def test_group_membership_names_the_group_and_the_member_not_the_group_as_user(event_id: int, activity: str) -> None:
    row = ocsf({**SECURITY, "EventID": event_id, "SubjectUserName": "IEUser", "TargetUserName": "Administrators",
                "TargetDomainName": "Builtin", "TargetSid": "S-1-5-32-544", "MemberName": "CN=Mallory,DC=corp",
                "MemberSid": "S-1-5-21-1-2-3-1337"})
    expect(row, class_uid="3006", activity_id=activity, group__name="Administrators", group__domain="Builtin",
           group__uid="S-1-5-32-544", user__name="CN=Mallory,DC=corp", user__uid="S-1-5-21-1-2-3-1337",
           user__domain=None, actor__user__name="IEUser")


def test_sysmon_process_creation_carries_the_process_and_its_parent() -> None:
    row = ocsf({**SYSMON, "EventID": 1, "ProcessId": "4242", "ProcessGuid": "{A-1}", "Image": "C:\\t\\mimi.exe",
                "CommandLine": "mimi.exe sekurlsa::logonpasswords", "User": "CORP\\alice",
                "IntegrityLevel": "High", "ParentProcessId": "1000", "ParentProcessGuid": "{A-0}",
                "ParentImage": "C:\\Windows\\System32\\cmd.exe", "ParentCommandLine": "cmd.exe /c mimi.exe"})
    expect(row, class_uid="1007", category_uid="1", activity_id="1", type_uid="100701",
           process__pid="4242", process__uid="{A-1}", process__file__path="C:\\t\\mimi.exe",
           process__cmd_line="mimi.exe sekurlsa::logonpasswords", process__user__name="CORP\\alice",
           process__integrity="High", process__parent_process__pid="1000", process__parent_process__uid="{A-0}",
           process__parent_process__file__path="C:\\Windows\\System32\\cmd.exe",
           process__parent_process__cmd_line="cmd.exe /c mimi.exe", actor__process__pid="1000",
           actor__process__file__path="C:\\Windows\\System32\\cmd.exe", metadata__product__name="Sysmon",
           status=None)


def test_security_process_creation_takes_the_new_process_and_its_creator() -> None:
    row = ocsf({**SECURITY, "EventID": 4688, "NewProcessId": "0x1fc", "NewProcessName": "C:\\Windows\\reg.exe",
                "CommandLine": "reg save hklm\\sam", "ProcessId": "0x278", "ParentProcessName": "C:\\Windows\\cmd.exe",
                "SubjectUserName": "alice", "TargetUserName": "-"})
    expect(row, class_uid="1007", activity_id="1", process__pid="0x1fc", process__file__path="C:\\Windows\\reg.exe",
           process__cmd_line="reg save hklm\\sam", process__parent_process__pid="0x278",
           process__parent_process__file__path="C:\\Windows\\cmd.exe", actor__process__pid="0x278",
           actor__user__name="alice", user__name=None, process__user__name=None)


@pytest.mark.parametrize(("event", "activity"), [({**SYSMON, "EventID": 5}, "2"), ({**SECURITY, "EventID": 4689}, "2"),
                                                 ({**SYSMON, "EventID": 10}, "3"), ({**SYSMON, "EventID": 8}, "4")])
def test_process_termination_access_and_injection_are_process_activity(event: dict[str, Any], activity: str) -> None:
    expect(ocsf(event), class_uid="1007", activity_id=activity)


def test_process_access_puts_the_source_as_actor_and_the_target_as_process() -> None:
    row = ocsf({**SYSMON, "EventID": 10, "SourceProcessId": "700", "SourceImage": "C:\\t\\dump.exe",
                "SourceProcessGUID": "{S}", "TargetProcessId": "640", "TargetImage": "C:\\Windows\\System32\\lsass.exe",
                "TargetProcessGUID": "{T}", "GrantedAccess": "0x1010"})
    expect(row, actor__process__pid="700", actor__process__file__path="C:\\t\\dump.exe", actor__process__uid="{S}",
           process__pid="640", process__file__path="C:\\Windows\\System32\\lsass.exe", process__uid="{T}")


def test_sysmon_network_connection_carries_both_endpoints() -> None:
    row = ocsf({**SYSMON, "EventID": 3, "Image": "C:\\t\\a.exe", "ProcessId": "42", "Protocol": "tcp",
                "SourceIp": "10.0.0.5", "SourcePort": "50000", "SourceHostname": "ws01",
                "DestinationIp": "198.51.100.4", "DestinationPort": "4444", "DestinationHostname": "evil.example"})
    expect(row, class_uid="4001", category_uid="4", activity_id="1", src_endpoint__ip="10.0.0.5",
           src_endpoint__port="50000", src_endpoint__hostname="ws01", dst_endpoint__ip="198.51.100.4",
           dst_endpoint__port="4444", dst_endpoint__hostname="evil.example", connection_info__protocol_name="tcp",
           actor__process__file__path="C:\\t\\a.exe", actor__process__pid="42")


@pytest.mark.parametrize(("event_id", "activity", "outcome"), [(5156, "1", "Success"), (5157, "5", "Failure")])
def test_filtering_platform_connections_are_network_activity(event_id: int, activity: str, outcome: str) -> None:
    row = ocsf({**SECURITY, "EventID": event_id, "Application": "\\device\\harddiskvolume1\\a.exe", "Protocol": "6",
                "SourceAddress": "10.0.0.5", "SourcePort": "50000", "DestAddress": "192.0.2.9", "DestPort": "445"})
    expect(row, class_uid="4001", activity_id=activity, status=outcome, src_endpoint__ip="10.0.0.5",
           src_endpoint__port="50000", dst_endpoint__ip="192.0.2.9", dst_endpoint__port="445",
           connection_info__protocol_num="6", connection_info__protocol_name=None,
           actor__process__file__path="\\device\\harddiskvolume1\\a.exe")


def test_sysmon_dns_query_names_the_queried_host() -> None:
    row = ocsf({**SYSMON, "EventID": 22, "QueryName": "evil.example", "QueryResults": "::ffff:198.51.100.4;",
                "Image": "C:\\t\\a.exe"})
    expect(row, class_uid="4003", category_uid="4", activity_id="1", type_uid="400301", query__hostname="evil.example",
           actor__process__file__path="C:\\t\\a.exe")


@pytest.mark.parametrize(("event_id", "activity"), [(11, "1"), (15, "1"), (23, "4"), (26, "4"), (2, "6")])
def test_sysmon_file_events_are_file_system_activity(event_id: int, activity: str) -> None:
    row = ocsf({**SYSMON, "EventID": event_id, "TargetFilename": "C:\\Users\\a\\evil.dll", "Image": "C:\\t\\a.exe"})
    expect(row, class_uid="1001", category_uid="1", activity_id=activity, file__path="C:\\Users\\a\\evil.dll",
           actor__process__file__path="C:\\t\\a.exe")


def test_named_pipes_are_files_of_the_pipe_type() -> None:
    row = ocsf({**SYSMON, "EventID": 17, "PipeName": "\\msagent_12"})
    expect(row, class_uid="1001", activity_id="1", file__path="\\msagent_12", file__type_id="6",
           file__type="Named Pipe")


@pytest.mark.parametrize(("mask", "activity"), [("0x1", "2"), ("0x2", "3"), ("0x10000", "4"), ("0x40000", "7"),
                                                ("0x800000", "99")])
def test_audited_file_access_follows_the_access_right(mask: str, activity: str) -> None:
    row = ocsf({**SECURITY, "EventID": 4663, "ObjectType": "File", "ObjectName": "C:\\secret.txt",
                "AccessMask": mask, "ProcessName": "C:\\t\\a.exe"})
    expect(row, class_uid="1001", activity_id=activity, file__path="C:\\secret.txt",
           actor__process__file__path="C:\\t\\a.exe")


def test_audited_access_to_a_process_is_a_process_open() -> None:
    row = ocsf({**SECURITY, "EventID": 4663, "ObjectType": "Process", "AccessMask": "0x10",
                "ObjectName": "\\Device\\HarddiskVolume2\\Windows\\System32\\lsass.exe"})
    expect(row, class_uid="1007", activity_id="3", file__path=None,
           process__file__path="\\Device\\HarddiskVolume2\\Windows\\System32\\lsass.exe")


@pytest.mark.parametrize(("event_id", "event_type", "class_uid", "activity", "key", "value"), [
    (12, "CreateKey", "201001", "1", "HKLM\\SOFTWARE\\Evil", None),
    (12, "DeleteKey", "201001", "4", "HKLM\\SOFTWARE\\Evil", None),
    (12, "DeleteValue", "201002", "4", None, "HKLM\\SOFTWARE\\Evil"),
    (13, "SetValue", "201002", "2", None, "HKLM\\SOFTWARE\\Evil"),
    (14, "RenameKey", "201001", "5", "HKLM\\SOFTWARE\\Evil", None),
])
def test_sysmon_registry_events_are_key_or_value_activity(event_id: int, event_type: str, class_uid: str,
                                                          activity: str, key: str | None, value: str | None) -> None:
    row = ocsf({**SYSMON, "EventID": event_id, "EventType": event_type, "TargetObject": "HKLM\\SOFTWARE\\Evil",
                "Details": "DWORD (0x00000001)"})
    expect(row, class_uid=class_uid, category_uid="1", activity_id=activity, type_uid=f"{class_uid}{int(activity):02d}",
           reg_key__path=key, reg_value__path=value)


def test_image_and_driver_loads_are_module_and_kernel_extension_activity() -> None:
    module = ocsf({**SYSMON, "EventID": 7, "Image": "C:\\t\\a.exe", "ImageLoaded": "C:\\t\\evil.dll"})
    expect(module, class_uid="1005", activity_id="1", module__file__path="C:\\t\\evil.dll",
           actor__process__file__path="C:\\t\\a.exe")
    driver = ocsf({**SYSMON, "EventID": 6, "ImageLoaded": "C:\\t\\mimidrv.sys"})
    expect(driver, class_uid="1002", activity_id="1", driver__file__path="C:\\t\\mimidrv.sys")


@pytest.mark.parametrize(("event_id", "activity"), [(4698, "1"), (4702, "2"), (4699, "3"), (4700, "4"), (4701, "5")])
def test_scheduled_task_events_are_scheduled_job_activity(event_id: int, activity: str) -> None:
    row = ocsf({**SECURITY, "EventID": event_id, "TaskName": "\\Updater", "SubjectUserName": "admin01"})
    expect(row, class_uid="1006", category_uid="1", activity_id=activity, job__name="\\Updater",
           actor__user__name="admin01")


def test_service_installed_is_a_windows_service_creation() -> None:
    row = ocsf({"Channel": "System", "Provider_Name": "Service Control Manager", "EventID": 7045, "Computer": "srv",
                "ServiceName": "spoolfool", "ImagePath": "cmd.exe /c evil", "ServiceType": "user mode service",
                "StartType": "auto start", "AccountName": "LocalSystem"})
    expect(row, class_uid="201004", category_uid="1", activity_id="1", type_uid="20100401",
           win_service__name="spoolfool", win_service__cmd_line="cmd.exe /c evil",
           win_service__service_type="user mode service", win_service__service_start_type="auto start",
           win_service__service_start_name="LocalSystem")
    security = ocsf({**SECURITY, "EventID": 4697, "ServiceName": "psexesvc", "ServiceFileName": "%SystemRoot%\\x.exe",
                     "ServiceAccount": "LocalSystem"})
    expect(security, class_uid="201004", activity_id="1", win_service__name="psexesvc",
           win_service__cmd_line="%SystemRoot%\\x.exe", win_service__service_start_name="LocalSystem")


def test_clearing_an_event_log_is_event_log_activity() -> None:
    row = ocsf({"Channel": "Security", "Provider_Name": "Microsoft-Windows-Eventlog", "EventID": 1102,
                "Computer": "pc01", "SubjectUserName": "admin01", "SubjectDomainName": "CORP"})
    expect(row, class_uid="1008", category_uid="1", activity_id="1", log_name="Security", actor__user__name="admin01",
           actor__user__domain="CORP")
    system = ocsf({"Channel": "System", "Provider_Name": "Microsoft-Windows-Eventlog", "EventID": 104,
                   "Computer": "pc01", "SubjectUserName": "admin01"})
    expect(system, class_uid="1008", activity_id="1", log_name="System")


def test_a_powershell_script_block_is_script_activity() -> None:
    row = ocsf({"Channel": "Microsoft-Windows-PowerShell/Operational", "Provider_Name": "Microsoft-Windows-PowerShell",
                "EventID": 4104, "Computer": "ws01", "ScriptBlockText": "IEX (New-Object Net.WebClient)",
                "ScriptBlockId": "27f08bda", "Path": "C:\\Users\\Public\\a.ps1"})
    expect(row, class_uid="1009", category_uid="1", activity_id="1", type_uid="100901",
           script__script_content="IEX (New-Object Net.WebClient)", script__uid="27f08bda",
           script__file__path="C:\\Users\\Public\\a.ps1", script__type="PowerShell", script__type_id="2",
           file__path=None)


def test_a_defender_detection_is_a_detection_finding() -> None:
    row = ocsf({"Channel": "Microsoft-Windows-Windows Defender/Operational", "EventID": 1116, "Computer": "ws01",
                "Threat Name": "Trojan:PowerShell/Powersploit.M", "Detection ID": "{5112}", "Severity ID": "5",
                "Process Name": "C:\\Windows\\powershell.exe", "Detection User": "WS01\\IEUser",
                "Path": "file:_C:\\AtomicRedTeam\\Get-Keystrokes.ps1"})
    expect(row, class_uid="2004", category_uid="2", activity_id="1",
           finding_info__title="Trojan:PowerShell/Powersploit.M", finding_info__uid="{5112}", severity_id="5",
           actor__process__file__path="C:\\Windows\\powershell.exe",
           actor__user__name="WS01\\IEUser", file__path="C:\\AtomicRedTeam\\Get-Keystrokes.ps1",
           metadata__product__name="Microsoft Defender Antivirus")


def test_remote_desktop_authentication_names_user_and_source() -> None:
    row = ocsf({"Channel": "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational", "EventID": 1149,
                "Computer": "srv", "Param1": "administrator", "Param2": "corp", "Param3": "10.0.2.16"})
    expect(row, class_uid="3002", activity_id="1", status="Success", user__name="administrator", user__domain="corp",
           src_endpoint__ip="10.0.2.16", logon_type_id="10")


def test_an_event_id_without_a_rule_keeps_the_defaults() -> None:
    row = ocsf({"Channel": "Application", "EventID": 1040, "Computer": "ws01", "Provider_Name": "MsiInstaller"})
    expect(row, class_uid="0", category_uid="0", activity_id="0", type_uid="0", status=None, status_id=None,
           metadata__event_code="1040", device__hostname="ws01", metadata__log_provider="MsiInstaller")


def test_a_sysmon_event_id_means_nothing_on_another_channel() -> None:
    sysmon = ocsf({**SYSMON, "EventID": 1, "Image": "C:\\t\\a.exe"})
    system = ocsf({"Channel": "System", "EventID": 1, "Computer": "ws01", "Image": "C:\\t\\a.exe",
                   "Provider_Name": "Microsoft-Windows-Kernel-General"})
    rpc = ocsf({"EventID": 6, "Computer": "ws01", "Provider_Name": "Microsoft-Windows-RPC"})  # no channel at all
    assert (sysmon["class_uid"], system["class_uid"], rpc["class_uid"]) == ("1007", "0", "0")
    assert system["process.file.path"] is None


def test_the_audit_result_keywords_give_the_status_of_other_security_events() -> None:
    failure = ocsf({**SECURITY, "EventID": 5145, "Keywords": "0x8010000000000000", "ShareName": "\\\\*\\IPC$",
                    "RelativeTargetName": "lsarpc", "IpAddress": "172.16.66.1"})
    expect(failure, class_uid="4006", status="Failure", status_id="2", share="\\\\*\\IPC$", file__path="lsarpc",
           src_endpoint__ip="172.16.66.1")
    nxlog = ocsf({**SECURITY, "EventID": 5136, "EventType": "AUDIT_SUCCESS", "ObjectDN": "CN=x,DC=corp",
                  "ObjectClass": "groupPolicyContainer"})
    expect(nxlog, class_uid="3004", activity_id="3", status="Success", entity__name="CN=x,DC=corp",
           entity__type="groupPolicyContainer")


def test_every_json_shape_of_an_event_gets_the_same_ocsf_fields() -> None:
    data = {"TargetUserName": "administrator", "IpAddress": "203.0.113.7", "LogonType": "3"}
    rendering = {"Event": {"System": {"EventID": 4625, "Channel": "Security", "Computer": "dc1",
                                      "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}},
                           "EventData": data}}
    winlogbeat = {"winlog": {"channel": "Security", "event_id": 4625, "computer_name": "dc1",
                             "provider_name": "Microsoft-Windows-Security-Auditing", "event_data": data}}
    flat = {"EventID": 4625, "Channel": "Security", "Hostname": "dc1",
            "SourceName": "Microsoft-Windows-Security-Auditing", **data}
    frame = records_to_frame([rendering, winlogbeat, flat], "shapes")
    names = ["class_uid", "activity_id", "status", "user.name", "src_endpoint.ip", "logon_type_id",
             "device.hostname", "metadata.log_provider"]
    rows = frame.select(names).rows()
    assert rows[0] == rows[1] == rows[2] == ("3002", "1", "Failure", "administrator", "203.0.113.7", "3", "dc1",
                                             "Microsoft-Windows-Security-Auditing")


def test_ids_worked_out_once_per_combination_equal_ids_worked_out_per_event() -> None:
    """Without regex rules the ids are computed per distinct (channel, event id, ...) and joined back;
    a rule with a regex (here one that never holds) makes them computed event by event instead."""
    files = sorted(shared_data("evtx-attack-samples", "Credential Access").rglob("*.evtx"))
    frame = next(iter(read_evtx_files(files))).frame
    table = builtin_tables()["evtx"]
    never = ClassRule(when=(), match=(("EventID", "^never$"),), values=(("class_uid", "1"),))
    per_event = replace(table, classes=(*table.classes[:-1], (*table.classes[-1], never)))
    keyed = normalise(frame, "evtx", {"evtx": table})
    unkeyed = normalise(frame, "evtx", {"evtx": per_event})
    assert_frame_equal(keyed, unkeyed)
    assert keyed.get_column("class_uid").n_unique() > 5
