"""Parse speed of every log source on generated lines, one core: lines (or events) per second through
the whole read path (file -> decode -> parse -> core columns -> OCSF fields).

Run: .venv/bin/python benchmarks/sources_speed.py [--lines 1000000] [--only syslog,cef]
Polars is held to one thread (POLARS_MAX_THREADS=1) so the figures are per core. Goals: text sources
>= 100,000 lines/s, JSON sources >= 150,000 events/s.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mamori.sources.base import ReadOptions
from mamori.sources.registry import all_sources

JSON_SOURCES = {"cloudtrail", "azure", "m365", "okta", "gcp_audit", "suricata", "k8s_audit", "github_audit",
                "journald", "ocsf", "zeek_json"}


def _ip(r: random.Random) -> str:
    return f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _user(r: random.Random) -> str:
    return r.choice(["root", "admin", "tanaka", "sato", "deploy", "backup", "oracle", "user1"])


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _stamp(r: random.Random) -> str:
    clock = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
    return f"{r.choice(MONTHS)} {r.randint(1, 28):2d} {clock}"


def gen_syslog(r: random.Random) -> str:
    """One generated syslog record."""
    kind = r.random()
    if kind < 0.4:
        return (f"{_stamp(r)} web{r.randint(1, 9)} sshd[{r.randint(100, 99999)}]: Failed password for "
                f"{'invalid user ' if r.random() < .5 else ''}{_user(r)} from {_ip(r)} port {r.randint(1024, 65535)} ssh2")  # noqa: E501 (sample-data template)
    if kind < 0.6:
        return f"{_stamp(r)} web1 sshd[{r.randint(100, 99999)}]: Accepted publickey for {_user(r)} from {_ip(r)} port 22 ssh2"  # noqa: E501 (sample-data template)
    if kind < 0.8:
        return (f"<86>1 2024-05-0{r.randint(1, 9)}T10:00:00.{r.randint(100, 999)}+09:00 db{r.randint(1, 9)} sudo "
                f"{r.randint(1, 9999)} - - {_user(r)} : TTY=pts/0 ; PWD=/home ; USER=root ; COMMAND=/usr/bin/id")
    return f"{_stamp(r)} gw kernel: IPTABLES DROP IN=eth0 OUT= SRC={_ip(r)} DST={_ip(r)} LEN=60 PROTO=TCP SPT=5 DPT=22"


def gen_auditd(r: random.Random) -> str:
    """One generated auditd record."""
    serial = r.randint(1, 10**6)
    if r.random() < .5:
        return (f"type=SYSCALL msg=audit(1700000000.{r.randint(100, 999)}:{serial}): arch=c000003e syscall=59 "
                f"success=yes exit=0 a0=55d a1=55e a2=55f a3=0 items=2 ppid=1 pid={r.randint(2, 9999)} auid=1000 "
                f'uid=0 comm="curl" exe="/usr/bin/curl" key="exec"')
    return f'type=EXECVE msg=audit(1700000000.{r.randint(100, 999)}:{serial}): argc=3 a0="curl" a1="-s" a2="http://{_ip(r)}/x"'


def gen_cef(r: random.Random) -> str:
    """One generated cef record."""
    return (f"CEF:0|Vendor|Firewall|1.0|{r.randint(100, 999)}|Connection blocked|{r.randint(1, 10)}|"
            f"rt={1700000000000 + r.randint(0, 10**6)} src={_ip(r)} dst={_ip(r)} spt={r.randint(1024, 65535)} "
            f"dpt={r.choice([22, 80, 443, 3389])} proto=TCP act=blocked suser={_user(r)} msg=Policy Deny all "
            f"cs1Label=Rule Name cs1=deny-{r.randint(1, 99)}")


def gen_leef(r: random.Random) -> str:
    """One generated leef record."""
    return (f"LEEF:1.0|Vendor|Product|1.0|{r.randint(1, 99)}|src={_ip(r)}\tdst={_ip(r)}\tsrcPort={r.randint(1, 65535)}"
            f"\tdstPort=443\tusrName={_user(r)}\tdevTime={1700000000000 + r.randint(0, 10**6)}\tsev=5")


def gen_fortigate(r: random.Random) -> str:
    """One generated fortigate record."""
    return (f'date=2024-05-02 time=10:{r.randint(10, 59)}:55 devname="FGT-01" devid="FGT60F" '
            f"eventtime={1714614715000000000 + r.randint(0, 10**9)} tz=\"+0900\" logid=\"0000000013\" type=\"traffic\" "
            f'subtype="forward" level="notice" vd="root" srcip={_ip(r)} srcport={r.randint(1024, 65535)} '
            f'srcintf="port1" dstip={_ip(r)} dstport={r.choice([53, 80, 443])} dstintf="wan1" proto=6 '
            f'action="{r.choice(["accept", "deny", "close"])}" policyid={r.randint(1, 99)} service="HTTPS" '
            f'user="{_user(r)}" sentbyte={r.randint(1, 10**6)} rcvdbyte={r.randint(1, 10**6)} duration=3')


def gen_paloalto(r: random.Random) -> str:
    """One generated paloalto record."""
    return (f"1,2024/01/03 13:15:29,026701002040,TRAFFIC,end,2816,2024/01/03 13:15:{r.randint(10, 59)},{_ip(r)},"
            f"{_ip(r)},0.0.0.0,0.0.0.0,rule{r.randint(1, 9)},corp\\{_user(r)},,ssl,vsys1,trust,untrust,ethernet1/1,"
            f"ethernet1/2,Forward,2024/01/03 13:15:29,{r.randint(1, 10**6)},1,{r.randint(1024, 65535)},443,0,0,0x400019,"  # noqa: E501 (sample-data template)
            f"tcp,allow,5000,1000,4000,20,2024/01/03 13:14:59,30,any,,7000,0x0,10.0.0.0-10.255.255.255,Japan,,10,10,"
            f"tcp-fin")


def gen_cisco_asa(r: random.Random) -> str:
    """One generated cisco_asa record."""
    if r.random() < .5:
        return (f"<166>Jun 07 2025 17:31:57: %ASA-6-302013: Built inbound TCP connection {r.randint(1, 10**6)} for "
                f"outside:{_ip(r)}/{r.randint(1024, 65535)} ({_ip(r)}/51000) to inside:{_ip(r)}/443 ({_ip(r)}/443)")
    return (f"<164>Jun 07 2025 17:31:57: %ASA-4-106023: Deny tcp src outside:{_ip(r)}/{r.randint(1024, 65535)} dst "
            f'inside:{_ip(r)}/22 by access-group "outside_in" [0x0, 0x0]')


def gen_checkpoint(r: random.Random) -> str:
    """One generated checkpoint record."""
    return (f'syslog[action:"{r.choice(["Accept", "Drop"])}"; ifdir:"inbound"; ifname:"eth1"; origin:"{_ip(r)}"; '
            f'time:"{1617710462 + r.randint(0, 10**5)}"; dst:"{_ip(r)}"; proto:"6"; rule:"{r.randint(1, 200)}"; '
            f'rule_name:"Rule {r.randint(1, 200)}"; s_port:"{r.randint(1024, 65535)}"; service:"443"; src:"{_ip(r)}"; ]')  # noqa: E501 (sample-data template)


def gen_juniper(r: random.Random) -> str:
    """One generated juniper record."""
    return (f"<14>1 2024-03-01T10:00:00.000+09:00 srx RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.26 "
            f'source-address="{_ip(r)}" source-port="{r.randint(1024, 65535)}" destination-address="{_ip(r)}" '
            f'destination-port="443" service-name="junos-https" policy-name="allow-web"] session created')


def gen_squid(r: random.Random) -> str:
    """One generated squid record."""
    return (f"{1700000000 + r.randint(0, 10**6)}.{r.randint(100, 999)} {r.randint(1, 9999):6d} {_ip(r)} "
            f"TCP_MISS/200 {r.randint(100, 10**6)} GET http://cdn{r.randint(1, 99)}.example.com/path/{r.randint(1, 10**6)}"  # noqa: E501 (sample-data template)
            f".js?v={r.randint(1, 99)} - HIER_DIRECT/{_ip(r)} application/javascript")


def gen_webaccess(r: random.Random) -> str:
    """One generated webaccess record."""
    return (f'{_ip(r)} - - [10/Oct/2024:13:{r.randint(10, 59)}:36 +0900] "GET /app/{r.randint(1, 10**5)}'
            f'?id={r.randint(1, 999)} HTTP/1.1" {r.choice([200, 302, 404, 500])} {r.randint(100, 10**5)} '
            f'"https://www.example.jp/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120"')


def gen_bind(r: random.Random) -> str:
    """One generated bind record."""
    return (f"29-Jan-2024 10:00:{r.randint(10, 59)}.123 queries: info: client @0x7f{r.randint(10, 99)} {_ip(r)}#"
            f"{r.randint(1024, 65535)} (h{r.randint(1, 10**5)}.example.jp): query: h{r.randint(1, 10**5)}.example.jp "
            f"IN {r.choice(['A', 'AAAA', 'TXT'])} +E(0)K (10.0.0.53)")


def gen_windns(r: random.Random) -> str:
    """One generated windns record."""
    return (f"6/5/2013 10:20:{r.randint(10, 59)} AM 0E70 PACKET  00000000033397A0 UDP Rcv {_ip(r)}    5b47   Q "
            f"[0001   D   NOERROR] A      (3)www(7)example{r.randint(1, 999)}(3)com(0)")


def gen_esxi(r: random.Random) -> str:
    """One generated esxi record."""
    return (f"<166>1 2024-02-01T08:00:00.000Z esx01 Hostd - - - info hostd[{r.randint(1000, 9999999)}] "
            f"[Originator@6876 sub=Vimsvc.ha-eventmgr opID=esxui-{r.randint(1, 9999)}] Event {r.randint(1, 10**6)} : "
            f"User {_user(r)}@{_ip(r)} logged in as pyvmomi")


def gen_openvpn(r: random.Random) -> str:
    """One generated openvpn record."""
    return (f"2024-09-05 14:39:{r.randint(10, 59)} {_user(r)}/{_ip(r)}:{r.randint(1024, 65535)} TLS: soft reset "
            f"sec=3289/3289 bytes=781236/-1 pkts=3065/0")


def gen_keyvalue(r: random.Random) -> str:
    """One generated keyvalue record."""
    return (f'device="SFW" date=2020-05-16 time=02:54:39 timezone="+11" device_name="SG330" log_id=0509016160 '
            f'log_type="Firewall" log_component="Firewall Rule" status="Deny" src_ip={_ip(r)} dst_ip={_ip(r)} '
            f'dst_port={r.randint(1, 65535)} protocol="TCP" user_name="{_user(r)}"')


def gen_sysmon_linux(r: random.Random) -> str:
    """One generated sysmon_linux record."""
    return ('<Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593}"/><EventID>1</EventID><Version>5</Version>'
            '<TimeCreated SystemTime="2021-10-14T11:07:39.523940000Z"/><EventRecordID>3</EventRecordID>'
            '<Execution ProcessID="2345" ThreadID="2345"/><Channel>Linux-Sysmon/Operational</Channel>'
            f'<Computer>host{r.randint(1, 99)}</Computer></System><EventData><Data Name="RuleName">-</Data>'
            '<Data Name="UtcTime">2021-10-14 11:07:39.530</Data><Data Name="ProcessGuid">{e5b6}</Data>'
            f'<Data Name="ProcessId">{r.randint(2, 99999)}</Data><Data Name="Image">/usr/bin/curl</Data>'
            f'<Data Name="CommandLine">curl -s http://{_ip(r)}/x</Data><Data Name="User">root</Data>'
            '<Data Name="ParentImage">/usr/bin/bash</Data></EventData></Event>')


def gen_zeek(r: random.Random) -> str:
    """One generated zeek record."""
    return (f"{1320279566 + r.randint(0, 10**6)}.452687\tC{r.randint(10**8, 10**9)}\t{_ip(r)}\t{r.randint(1024, 65535)}"
            f"\t{_ip(r)}\t53\tudp\th{r.randint(1, 10**5)}.example.co.jp\tA\tNOERROR\t93.184.216.34\tF")


ZEEK_HEADER = ("#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\t"
               "query\tqtype_name\trcode_name\tanswers\trejected\n")


def gen_cloudtrail(r: random.Random) -> str:
    """One generated cloudtrail record."""
    return ('{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AID","arn":"arn:aws:iam::1:user/'
            f'{_user(r)}","accountId":"1","userName":"{_user(r)}"}},"eventTime":"2024-04-01T00:00:{r.randint(10, 59)}Z",'  # noqa: E501 (sample-data template)
            '"eventSource":"s3.amazonaws.com","eventName":"' + r.choice(["GetObject", "PutObject", "ListBuckets"])
            + f'","awsRegion":"ap-northeast-1","sourceIPAddress":"{_ip(r)}","userAgent":"aws-cli/2",'
            '"requestParameters":{"bucketName":"logs","key":"a/b"},"responseElements":null,'
            f'"requestID":"{r.randint(1, 10**9)}","eventID":"{r.randint(1, 10**9)}","readOnly":true,'
            '"eventType":"AwsApiCall","recipientAccountId":"1"}')


def gen_azure(r: random.Random) -> str:
    """One generated azure record."""
    return (f'{{"time":"2024-01-01T00:00:{r.randint(10, 59)}.1234567Z","resourceId":"/tenants/t/providers/Microsoft.aadiam",'  # noqa: E501 (sample-data template)
            '"operationName":"Sign-in activity","category":"SignInLogs","tenantId":"t","resultType":"'
            + r.choice(["0", "50126"]) + f'","callerIpAddress":"{_ip(r)}","properties":{{"userPrincipalName":'
            f'"{_user(r)}@example.jp","appDisplayName":"Azure Portal","status":{{"errorCode":0}},'
            '"deviceDetail":{"trustType":""},"authenticationRequirement":"singleFactorAuthentication"}}')


def gen_m365(r: random.Random) -> str:
    """One generated m365 record."""
    return (f'{{"CreationTime":"2020-09-29T08:59:{r.randint(10, 59)}","Id":"{r.randint(1, 10**9)}","Operation":"'
            + r.choice(["UserLoggedIn", "FileAccessed", "MailItemsAccessed"]) + '","OrganizationId":"o",'
            f'"RecordType":15,"ResultStatus":"Succeeded","UserKey":"k","UserType":0,"Workload":"AzureActiveDirectory",'
            f'"ClientIP":"{_ip(r)}","UserId":"{_user(r)}@example.jp"}}')


def gen_okta(r: random.Random) -> str:
    """One generated okta record."""
    return (f'{{"actor":{{"id":"00u1","type":"User","alternateId":"{_user(r)}@example.jp"}},"client":{{"ipAddress":'
            f'"{_ip(r)}"}},"eventType":"user.session.start","outcome":{{"result":"SUCCESS"}},'
            f'"published":"2024-01-01T01:02:{r.randint(10, 59)}.456Z","uuid":"{r.randint(1, 10**9)}"}}')


def gen_gcp_audit(r: random.Random) -> str:
    """One generated gcp_audit record."""
    return (f'{{"protoPayload":{{"methodName":"storage.objects.get","serviceName":"storage.googleapis.com",'
            f'"authenticationInfo":{{"principalEmail":"{_user(r)}@example.jp"}},"requestMetadata":{{"callerIp":'
            f'"{_ip(r)}"}}}},"resource":{{"type":"gcs_bucket"}},"timestamp":"2024-05-01T00:00:{r.randint(10, 59)}Z",'
            f'"insertId":"{r.randint(1, 10**9)}","logName":"projects/p/logs/x"}}')


def gen_suricata(r: random.Random) -> str:
    """One generated suricata record."""
    return (f'{{"timestamp":"2024-01-07T19:54:{r.randint(10, 59)}.712927+0000","flow_id":{r.randint(1, 10**15)},'
            f'"event_type":"flow","src_ip":"{_ip(r)}","src_port":{r.randint(1024, 65535)},"dest_ip":"{_ip(r)}",'
            '"dest_port":443,"proto":"TCP","flow":{"pkts_toserver":5,"bytes_toserver":500,"state":"closed"}}')


def gen_k8s_audit(r: random.Random) -> str:
    """One generated k8s_audit record."""
    return (f'{{"kind":"Event","auditID":"{r.randint(1, 10**9)}","verb":"get","user":{{"username":"{_user(r)}"}},'
            f'"sourceIPs":["{_ip(r)}"],"objectRef":{{"resource":"pods","namespace":"default"}},'
            f'"responseStatus":{{"code":200}},"requestReceivedTimestamp":"2024-03-03T03:03:{r.randint(10, 59)}.33Z"}}')


def gen_github_audit(r: random.Random) -> str:
    """One generated github_audit record."""
    return (f'{{"@timestamp":{1685465626150 + r.randint(0, 10**6)},"_document_id":"{r.randint(1, 10**9)}",'
            f'"action":"repo.access","actor":"{_user(r)}","org":"o","repo":"o/r"}}')


def gen_journald(r: random.Random) -> str:
    """One generated journald record."""
    return (f'{{"__CURSOR":"s={r.randint(1, 10**9)}","__REALTIME_TIMESTAMP":"{1717200000000000 + r.randint(0, 10**9)}",'
            f'"_HOSTNAME":"web01","SYSLOG_IDENTIFIER":"sshd","_PID":"99","PRIORITY":"6",'
            f'"MESSAGE":"Failed password for {_user(r)} from {_ip(r)} port 22 ssh2"}}')


def gen_ocsf(r: random.Random) -> str:
    """One generated ocsf record."""
    return (f'{{"class_uid":3002,"category_uid":3,"activity_id":1,"type_uid":300201,"time":{1731328594225 + r.randint(0, 10**6)},'  # noqa: E501 (sample-data template)
            f'"user":{{"name":"{_user(r)}"}},"src_endpoint":{{"ip":"{_ip(r)}"}},"metadata":{{"version":"1.3.0"}}}}')


def gen_zeek_json(r: random.Random) -> str:
    """One generated zeek_json record."""
    return (f'{{"_path":"dns","ts":{1320279566 + r.randint(0, 10**6)}.45,"uid":"C{r.randint(1, 10**9)}","id.orig_h":"{_ip(r)}",'  # noqa: E501 (sample-data template)
            f'"id.orig_p":{r.randint(1024, 65535)},"id.resp_h":"10.0.0.53","id.resp_p":53,"query":"h{r.randint(1, 99)}.jp",'  # noqa: E501 (sample-data template)
            '"qtype_name":"A","rcode_name":"NOERROR"}')


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    name[4:]: fn for name, fn in globals().items() if name.startswith("gen_") and callable(fn)
}


def write_sample(name: str, lines: int, folder: Path) -> Path:
    """Write ``lines`` generated lines of source ``name`` (from 500 distinct templates, repeated)."""
    r = random.Random(7)
    distinct = [GENERATORS[name](r) for _ in range(500)]
    path = folder / f"{name}.log"
    block = ("\n".join(distinct) + "\n").encode()
    with path.open("wb") as handle:
        if name == "zeek":
            handle.write(ZEEK_HEADER.encode())
        for _ in range(lines // 500):
            handle.write(block)
        rest = lines % 500
        if rest:
            handle.write(("\n".join(distinct[:rest]) + "\n").encode())
    return path


def measure(name: str, lines: int, folder: Path) -> tuple[int, int, float, float]:
    """Read the generated file with its source; return (events, problems, wall seconds, CPU seconds).
    CPU seconds (all threads of the process; Polars holds one) are the per-core cost even on a busy
    machine, where wall time also counts the time other processes held the core."""
    path = write_sample(name, lines, folder)
    source = "zeek" if name == "zeek_json" else name
    spec = all_sources()[source]
    started = time.perf_counter()
    cpu_started = time.process_time()
    events = problems = 0
    for result in spec.read(path, ReadOptions(default_year=2024)):
        events += result.frame.height
        problems += len(result.problems)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    path.unlink()
    return events, problems, elapsed, cpu


def main() -> int:
    """Print events/s per source; exit 1 if any source misses its goal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--only", help="comma-separated source names")
    args = parser.parse_args()
    names = [n for n in GENERATORS if not args.only or n in args.only.split(",")]
    print(f"{'source':14} {'kind':5} {'events':>9} {'bad':>4} {'wall s':>7} {'cpu s':>7} {'ev/s wall':>10} "
          f"{'ev/s cpu':>10}  goal (on cpu time)")
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            events, problems, elapsed, cpu = measure(name, args.lines, Path(tmp))
            kind = "json" if name in JSON_SOURCES else "text"
            goal = 150_000 if kind == "json" else 100_000
            rate = events / elapsed if elapsed else 0.0
            cpu_rate = events / cpu if cpu else 0.0
            ok = cpu_rate >= goal
            missed += not ok
            print(f"{name:14} {kind:5} {events:>9} {problems:>4} {elapsed:7.2f} {cpu:7.2f} {rate:>10,.0f} "
                  f"{cpu_rate:>10,.0f}  {'ok' if ok else 'MISSED'} ({goal:,})", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
