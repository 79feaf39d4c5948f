"""A synthetic organisation for UEBA tests and benchmarks: four weeks of authentication, process and
network events for 200 users and 50 hosts, with five attacks injected in the last week.

The organisation keeps Japanese hours: every time of day below is on its local clock (``timezone``,
Asia/Tokyo by default), stored as UTC like any event.

Normal life: each user belongs to a department (its peer group), works office hours on weekdays from
a primary workstation (shared in shifts: hot-desking), logs on over the network to the department's
servers, mistypes a password now and then, starts ordinary programs; every host polls the update
server hourly and browses a pool of popular external sites. Rare new tools appear about once a day.

Injected (all in the fourth week): lateral movement (one user logging on to 14 hosts in ten minutes),
an off-hours logon from a host the user never used, password spraying from one source, beaconing
from a workstation to a rare destination (preceded by look-ups of algorithmically generated names),
and a data-exfiltration spike from a server.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from mamori.events import schema

_NS_PER_S = 1_000_000_000
_OFFICE_PROGRAMS = (
    r"C:\Windows\explorer.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
    r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
    r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
    r"C:\Users\Public\Teams\current\Teams.exe",
    r"C:\Windows\System32\notepad.exe",
    r"C:\Windows\System32\cmd.exe",
)
_OFFICE_WEIGHTS = (0.1, 0.3, 0.2, 0.12, 0.12, 0.1, 0.04, 0.02)
_SERVER_PROGRAMS = (
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\System32\inetsrv\w3wp.exe",
    r"C:\Program Files\Microsoft SQL Server\sqlservr.exe",
    r"C:\Windows\System32\taskhostw.exe",
)
_DOMAINS = tuple(
    f"{sub}.{name}"
    for name in (
        "google.com",
        "microsoft.com",
        "office365.com",
        "windowsupdate.com",
        "yahoo.co.jp",
        "nikkei.com",
        "rakuten.co.jp",
        "amazon.co.jp",
        "github.com",
        "slack.com",
        "zoom.us",
        "salesforce.com",
        "cloudflare.com",
        "akamaihd.net",
        "line.me",
        "docomo.ne.jp",
        "mizuho-bank.co.jp",
        "corp-intra.jp",
        "wikipedia.org",
        "youtube.com",
        "linkedin.com",
        "dropbox.com",
        "adobe.com",
        "apple.com",
    )
    for sub in ("www", "api", "login")
)
_RARE_TOOLS = (
    r"C:\Program Files\7-Zip\7zFM.exe",
    r"C:\Program Files\Zoom\bin\Zoom.exe",
    r"C:\Program Files\Adobe\Acrobat\Acrobat.exe",
    r"C:\Program Files\Notepad++\notepad++.exe",
    r"C:\Program Files\PuTTY\putty.exe",
    r"C:\Program Files\WinSCP\WinSCP.exe",
    r"C:\Program Files\VideoLAN\VLC\vlc.exe",
)


@dataclass(frozen=True)
class Injection:
    """One injected attack: what it is, the entity that shows it and when."""

    kind: str
    entity_type: str
    entity: str
    start: datetime
    end: datetime
    event_uids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Scenario:
    """The generated events, the attacks injected into them and where the training weeks end."""

    events: pl.DataFrame
    injections: tuple[Injection, ...]
    train_end: datetime
    end: datetime
    users: tuple[str, ...]
    hosts: tuple[str, ...]
    departments: dict[str, str]
    timezone: str = "Asia/Tokyo"  # the organisation's clock: office hours are local hours


class _Rows:
    """Columns of generated events, appended in bulk (numpy arrays), turned into one frame at the end."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, **columns: np.ndarray | str) -> None:
        n = max(len(v) for v in columns.values() if isinstance(v, np.ndarray))
        self.parts.append(
            {k: (np.full(n, v, dtype=object) if isinstance(v, str) else np.asarray(v)) for k, v in columns.items()}
        )

    def frame(self) -> pl.DataFrame:
        frames = []
        for part in self.parts:
            data: dict[str, pl.Series] = {}
            for k, v in part.items():
                if k == "t":
                    data[k] = pl.Series(k, v.astype(np.int64))
                else:
                    data[k] = pl.Series(k, v.astype(str) if v.dtype != object else v, dtype=pl.Utf8)
            frames.append(pl.DataFrame(data))
        return pl.concat(frames, how="diagonal")


def _ip(host_index: np.ndarray) -> np.ndarray:
    return np.char.add("10.1.0.", (np.asarray(host_index) + 10).astype(str))


def generate_scenario(
    seed: int = 7,
    users: int = 200,
    hosts: int = 50,
    days: int = 28,
    start: datetime | None = None,
    timezone: str = "Asia/Tokyo",
) -> Scenario:
    """Generate the scenario deterministically from ``seed``; the last seven days hold the attacks.
    Days start at local midnight in ``timezone`` (a zone without daylight saving keeps every day 24 h)."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 3, 2, tzinfo=ZoneInfo(timezone))  # a Monday
    t0 = int(start.timestamp()) * _NS_PER_S
    n_servers = max(hosts // 5, 3)
    n_ws = hosts - n_servers
    host_names = np.array([f"ws{i + 1:02d}" for i in range(n_ws)] + [f"srv{i + 1:02d}" for i in range(n_servers)])
    user_names = np.array([f"user{i + 1:03d}" for i in range(users)], dtype=object)
    user_names[17] = "taro"
    user_names[42] = "hanako"
    n_dept = 8
    dept = np.arange(users) % n_dept
    primary_ws = np.arange(users) % n_ws
    dept_servers = [(n_ws + d % n_servers, n_ws + (d + 3) % n_servers) for d in range(n_dept)]
    rows = _Rows()
    day_ns = 86_400 * _NS_PER_S
    hour_ns = 3600 * _NS_PER_S

    for day in range(days):
        weekday = (start + timedelta(days=day)).weekday()
        base = t0 + day * day_ns
        working = rng.random(users) < (0.95 if weekday < 5 else 0.03)
        u = np.flatnonzero(working)
        # interactive logon at the workstation around 09:00
        t_logon = base + (rng.normal(9.0, 0.5, len(u)) * hour_ns).astype(np.int64)
        rows.add(
            t=t_logon,
            host=host_names[primary_ws[u]],
            kind="auth",
            EventID="4624",
            LogonType="2",
            TargetUserName=user_names[u],
            IpAddress=_ip(primary_ws[u]),
        )
        # network logons to department servers during the day
        k = rng.integers(1, 5, len(u))
        uu = np.repeat(u, k)
        srv = np.array(
            [dept_servers[dept[i]][j] for i, j in zip(uu, rng.integers(0, 2, len(uu)), strict=True)], dtype=np.int64
        )
        t_net = base + (rng.uniform(9.5, 17.5, len(uu)) * hour_ns).astype(np.int64)
        rows.add(
            t=t_net,
            host=host_names[srv],
            kind="auth",
            EventID="4624",
            LogonType="3",
            TargetUserName=user_names[uu],
            IpAddress=_ip(primary_ws[uu]),
        )
        # an occasional mistyped password (sometimes twice)
        fail = u[rng.random(len(u)) < 0.06]
        fail = np.repeat(fail, rng.integers(1, 3, len(fail)))
        rows.add(
            t=base + (rng.uniform(8.5, 17.5, len(fail)) * hour_ns).astype(np.int64),
            host=host_names[primary_ws[fail]],
            kind="auth",
            EventID="4625",
            LogonType="2",
            TargetUserName=user_names[fail],
            IpAddress=_ip(primary_ws[fail]),
        )
        # processes on workstations
        k = rng.poisson(12, len(u))
        pu = np.repeat(u, k)
        img = rng.choice(len(_OFFICE_PROGRAMS), len(pu), p=_OFFICE_WEIGHTS)
        parent = np.where(img == 0, r"C:\Windows\System32\userinit.exe", _OFFICE_PROGRAMS[0]).astype(object)
        rows.add(
            t=base + (rng.uniform(9.0, 18.0, len(pu)) * hour_ns).astype(np.int64),
            host=host_names[primary_ws[pu]],
            kind="process",
            EventID="1",
            Image=np.array(_OFFICE_PROGRAMS, dtype=object)[img],
            ParentImage=parent,
            User=user_names[pu],
        )
        # now and then a new tool is installed somewhere
        if rng.random() < 0.7:
            who = rng.integers(0, users)
            rows.add(
                t=np.array([base + int(rng.uniform(10, 16) * hour_ns)]),
                host=host_names[primary_ws[who]],
                kind="process",
                EventID="1",
                Image=np.array([_RARE_TOOLS[rng.integers(0, len(_RARE_TOOLS))]], dtype=object),
                ParentImage=_OFFICE_PROGRAMS[0],
                User=np.array([user_names[who]], dtype=object),
            )
        # server processes all day
        sh = np.repeat(np.arange(n_ws, hosts), 48)
        rows.add(
            t=base + (rng.uniform(0, 24, len(sh)) * hour_ns).astype(np.int64),
            host=host_names[sh],
            kind="process",
            EventID="1",
            Image=np.array(_SERVER_PROGRAMS, dtype=object)[rng.integers(0, len(_SERVER_PROGRAMS), len(sh))],
            ParentImage=r"C:\Windows\System32\services.exe",
            User="SYSTEM",
        )
        # name look-ups from workstations
        k = rng.poisson(15, len(u))
        du = np.repeat(u, k)
        rows.add(
            t=base + (rng.uniform(9.0, 18.0, len(du)) * hour_ns).astype(np.int64),
            host=host_names[primary_ws[du]],
            kind="dns",
            EventID="22",
            QueryName=np.array(_DOMAINS, dtype=object)[rng.integers(0, len(_DOMAINS), len(du))],
        )
        # hourly update check from every host (periodic but popular: not beaconing)
        hh = np.repeat(np.arange(hosts), 24)
        hr = np.tile(np.arange(24), hosts)
        rows.add(
            t=base + hr * hour_ns + (hh * 37 % 3600) * _NS_PER_S + rng.integers(0, 3, len(hh)) * _NS_PER_S,
            host=host_names[hh],
            kind="net",
            dst="10.0.0.5",
            port="443",
            bytes=rng.integers(800, 1200, len(hh)),
        )
        # browsing from workstations of users at work
        k = rng.poisson(40, len(u))
        bu = np.repeat(u, k)
        site = np.minimum(rng.zipf(1.6, len(bu)), 40)
        rows.add(
            t=base + (rng.uniform(9.0, 18.0, len(bu)) * hour_ns).astype(np.int64),
            host=host_names[primary_ws[bu]],
            kind="net",
            dst=np.char.add("93.184.216.", site.astype(str)),
            port="443",
            bytes=rng.lognormal(9.0, 1.2, len(bu)).astype(np.int64),
        )
        # server replication traffic (large but steady)
        sh = np.repeat(np.arange(n_ws, hosts), 24)
        rows.add(
            t=base + np.tile(np.arange(24), n_servers) * hour_ns + 600 * _NS_PER_S,
            host=host_names[sh],
            kind="net",
            dst="10.0.0.9",
            port="445",
            bytes=rng.lognormal(17.0, 0.3, len(sh)).astype(np.int64),
        )

    normal_parts = len(rows.parts)
    injections = _inject(rows, rng, start, t0, day_ns, hour_ns, host_names, user_names, primary_ws, days)
    for part, injection in zip(rows.parts[normal_parts:], injections, strict=True):
        part["injected"] = np.full(len(part["t"]), injection.kind, dtype=object)
    events = _finish(rows.frame(), host_names)
    injected = events.filter(pl.col("injected").is_not_null()).group_by("injected").agg(pl.col(schema.UID))
    uids = dict(zip(injected["injected"].to_list(), injected[schema.UID].to_list(), strict=True))
    injections = tuple(replace(i, event_uids=frozenset(uids[i.kind])) for i in injections)
    events = events.drop("injected")
    train_end = (start + timedelta(days=days - 7)).astimezone(UTC)
    return Scenario(
        events=events,
        injections=injections,
        train_end=train_end,
        end=(start + timedelta(days=days)).astimezone(UTC),
        users=tuple(str(x) for x in user_names),
        hosts=tuple(str(x) for x in host_names),
        departments={str(user_names[i]): f"dept{dept[i] + 1}" for i in range(users)},
        timezone=timezone,
    )


def _inject(
    rows: _Rows,
    rng: np.random.Generator,
    start: datetime,
    t0: int,
    day_ns: int,
    hour_ns: int,
    host_names: np.ndarray,
    user_names: np.ndarray,
    primary_ws: np.ndarray,
    days: int,
) -> tuple[Injection, ...]:
    def at(day: int, hours: float) -> int:
        return t0 + day * day_ns + int(hours * hour_ns)

    def when(t: int) -> datetime:
        return datetime.fromtimestamp(t / _NS_PER_S, tz=UTC)

    week4 = days - 7
    out: list[Injection] = []
    # 1. lateral movement: taro logs on to 14 hosts in ten minutes from his workstation
    taro = 17
    targets = np.array([h for h in range(len(host_names)) if h != primary_ws[taro]])[
        rng.permutation(len(host_names) - 1)[:14]
    ]
    t = at(week4 + 1, 14.0) + np.sort(rng.integers(0, 600, 14)) * 1_000_000_000
    rows.add(
        t=t,
        host=host_names[targets],
        kind="auth",
        EventID="4624",
        LogonType="3",
        TargetUserName="taro",
        IpAddress=_ip(primary_ws[np.array([taro] * 14)]),
    )
    out.append(Injection("lateral_movement", "user", "taro", when(int(t[0])), when(int(t[-1]))))
    # 2. off-hours logon from a host hanako never used
    hanako = 42
    new_host = (primary_ws[hanako] + 11) % len(primary_ws)
    t1 = at(week4 + 2, 3.2)
    rows.add(
        t=np.array([t1]),
        host=np.array([host_names[new_host]]),
        kind="auth",
        EventID="4624",
        LogonType="10",
        TargetUserName="hanako",
        IpAddress="10.1.0.250",
    )
    out.append(Injection("offhours_new_host", "user", "hanako", when(t1), when(t1)))
    # 3. password spraying: one source, 80 users, one attempt each, over 20 minutes
    victims = rng.permutation(len(user_names))[:80]
    t = at(week4 + 3, 11.0) + np.sort(rng.integers(0, 1200, 80)) * 1_000_000_000
    dc = len(host_names) - 1
    rows.add(
        t=t,
        host=np.array([host_names[dc]] * 80),
        kind="auth",
        EventID="4625",
        LogonType="3",
        TargetUserName=user_names[victims],
        IpAddress="10.1.0.201",
    )
    out.append(Injection("password_spraying", "source_ip", "10.1.0.201", when(int(t[0])), when(int(t[-1]))))
    # 4. beaconing: ws12 calls a rare destination every five minutes with a few seconds of jitter
    n = 144
    t = at(week4 + 4, 0.0) + (np.arange(n) * 300 + rng.integers(-4, 5, n)) * 1_000_000_000
    rows.add(
        t=t,
        host=np.array(["ws12"] * n),
        kind="net",
        dst="198.51.100.23",
        port="443",
        bytes=rng.integers(300, 420, n),
    )
    out.append(Injection("beaconing", "host", "ws12", when(int(t[0])), when(int(t[-1]))))
    # 4b. the same implant resolves algorithmically generated names before it settles on one
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    dga = np.array(["".join(rng.choice(letters, 14)) + ".com" for _ in range(20)], dtype=object)
    t = at(week4 + 4, 0.0) - np.arange(20, 0, -1) * 20 * 1_000_000_000
    rows.add(t=t, host=np.array(["ws12"] * 20), kind="dns", EventID="22", QueryName=dga)
    out.append(Injection("dga_lookups", "host", "ws12", when(int(t[0])), when(int(t[-1]))))
    # 5. exfiltration: a server sends about 3 GB to an outside address in half an hour
    srv = "srv05"
    t = at(week4 + 5, 20.0) + np.arange(10) * 180 * 1_000_000_000
    rows.add(
        t=t,
        host=np.array([srv] * 10),
        kind="net",
        dst="203.0.113.80",
        port="443",
        bytes=rng.integers(280_000_000, 320_000_000, 10),
    )
    out.append(Injection("exfiltration", "host", srv, when(int(t[0])), when(int(t[-1]))))
    return tuple(out)


def _finish(frame: pl.DataFrame, host_names: np.ndarray) -> pl.DataFrame:
    """Turn generated columns into the event model: core columns, Windows and OCSF field names."""
    ip_of = {str(h): f"10.1.0.{i + 10}" for i, h in enumerate(host_names)}
    frame = frame.sort("t").with_row_index("_offset")
    kind = pl.col("kind")
    source = pl.when(kind == "net").then(pl.lit("netflow")).otherwise(pl.lit("evtx"))
    out = frame.select(
        pl.col("t").cast(pl.Datetime("ns", "UTC")).alias(schema.TIME),
        source.alias(schema.SOURCE),
        pl.col("host").alias(schema.HOST),
        pl.lit("scenario").alias(schema.ORIGIN),
        pl.col("_offset").cast(pl.Int64).alias(schema.OFFSET),
        pl.col("EventID"),
        pl.col("LogonType"),
        pl.col("TargetUserName"),
        pl.col("IpAddress"),
        pl.col("Image"),
        pl.col("ParentImage"),
        pl.col("QueryName"),
        pl.col("User"),
        pl.col("host").replace_strict(ip_of, default=None).alias("src_endpoint.ip"),
        pl.col("dst").alias("dst_endpoint.ip"),
        pl.col("port").alias("dst_endpoint.port"),
        pl.col("bytes").alias("traffic.bytes_out"),
        pl.col("injected"),
    )
    out = out.with_columns(
        pl.concat_str(
            [pl.col(schema.SOURCE), pl.col(schema.ORIGIN), pl.col(schema.OFFSET).cast(pl.Utf8)], separator="|"
        )
        .hash(seed=0)
        .cast(pl.Utf8)
        .alias(schema.UID),
        pl.concat_str(
            [
                pl.col(schema.HOST),
                pl.col("EventID"),
                pl.col("TargetUserName"),
                pl.col("Image"),
                pl.col("dst_endpoint.ip"),
            ],
            separator=" ",
            ignore_nulls=True,
        ).alias(schema.RAW),
    )
    return out.select([*schema.CORE_COLUMNS, *[c for c in out.columns if c not in schema.CORE_SCHEMA]])
