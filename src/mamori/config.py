"""One settings object for the service: embedded defaults, then a TOML file, then ``MAMORI_*`` variables.

Every field has a default that works out of the box (``./mamori-data``, 127.0.0.1, SQLite), so
``mamori serve`` needs no configuration. A TOML file may set any field at top level or under a
``[serve]`` table; an environment variable ``MAMORI_<FIELD>`` (upper case) wins over both.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mamori.errors import MamoriError


@dataclass(frozen=True)
class Settings:
    """Everything the SOC service reads at start; ports set to 0 pick a free port, -1 disables."""

    data_dir: Path = Path("mamori-data")
    host: str = "127.0.0.1"
    port: int = 8844
    syslog_udp_port: int = 5514
    syslog_tcp_port: int = 5514
    syslog_tls_port: int = -1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: syslog TLS senders must show a certificate this CA file signed
    database_url: str = ""  # empty: SQLite in data_dir
    rules: tuple[Path, ...] = ()
    placeholders: Path | None = None  # YAML of values for the rules' |expand placeholders (detect.sigma.placeholders)
    tail: tuple[Path, ...] = ()  # files or folders to follow (EVTX drop folders included)
    tail_source: str = ""  # reader for tailed files; empty: detect
    # text encoding of tailed files: one name, or "utf-8, /var/log/fw=cp932, D:/logs=utf-16" (PATH=ENCODING per
    # tailed path, a bare name for the rest); "auto": a byte-order mark's, else UTF-8 or CP932 line by line
    tail_encoding: str = "utf-8"
    batch_rows: int = 20_000
    # a batch closes this long after its first event arrived: under 20,000 events/s, 0.4 s kept the p99 alert
    # latency at 0.8-1.2 s where 0.5 s gave 1.0-1.3 s (paired 2-minute runs); shorter batches cost more per event
    batch_seconds: float = 0.4
    # worker processes parsing and rule-matching the next batches while the service stores one (0: inline)
    parse_processes: int = dataclasses.field(default_factory=lambda: min(2, os.cpu_count() or 1))
    spool_max_bytes: int = 256 * 1024 * 1024  # unprocessed spool above this: inputs are slowed or told to retry
    spool_segment_bytes: int = 64 * 1024 * 1024
    spool_keep_seconds: float = 300.0  # consumed spool kept this long (then its HTTP keys go to the ledger)
    idempotency_keep_seconds: float = 86_400.0  # an HTTP Idempotency-Key is answered 'accepted before' this long
    max_line_bytes: int = 64 * 1024
    max_body_bytes: int = 16 * 1024 * 1024
    retention_days: int = 30
    retention_bytes_per_source: int = 0  # 0: no size limit
    retention_by_source: str = ""  # days kept per source over retention_days, e.g. "fortigate=7, winevtx=365"
    alert_throttle_seconds: float = 3600.0
    default_timezone: str = "UTC"
    print_token: bool = True
    intel_feeds: Path | None = None  # feeds YAML (TAXII, MISP, CSV/text lists, STIX files) polled while serving
    taxii_partners: str = ""  # comma-separated user names that are TLP partners (may receive TLP:AMBER)
    grouping_rules: Path | None = None  # alert-to-incident grouping YAML; None: mamori/cases/data/grouping.yaml
    playbooks: Path | None = None  # a folder of response playbook YAML files run on case events
    anomaly_interval_seconds: float = 300.0  # UEBA rounds over the newly stored events (0: off)
    anomaly_baseline_days: int = 28  # stored history the behaviour baselines are built from
    # the organisation's clock for the behaviour baselines' seasons (local office hours, workdays and
    # weekends, and the times explanations give): an IANA name; built first for Japanese organisations
    anomaly_timezone: str = "Asia/Tokyo"
    # an IP geolocation database switching on logon geography (new country, impossible travel): an
    # IP2Location CSV (IPv4 or IPv6) or a MaxMind GeoLite2 .mmdb (needs `pip install 'mamori[geoip]'`)
    anomaly_geo_database: Path | None = None
    # unsupervised models over host and user behaviour vectors, comma-separated: ecod (batch, refitted
    # with the baselines), half_space (streaming half-space trees); empty: none
    anomaly_vector_models: str = "ecod,half_space"
    # each vector model's false-alarm budget per entity kind (host, user) and day: its threshold is the score
    # that many of the baseline's entity-hours a day reach
    anomaly_vector_alerts_per_day: float = 0.25
    # detector thresholds over the defaults, "detector.parameter=value, ...": a detector family (spraying,
    # rarity, volume...) or one detector's name, e.g. "spraying.min_users=10, rarity.max_peer_share=0.001"
    anomaly_thresholds: str = ""

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL of the records database (SQLite in the data folder unless set)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'mamori.db'}"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _convert(name: str, value: Any, where: str) -> Any:
    kind = str(_FIELDS[name].type)
    if isinstance(value, dict) and kind == "str":  # a TOML table of entries (tail_encoding): "*" names the rest
        value = ", ".join(str(v) if k == "*" else f"{k}={v}" for k, v in value.items())
    try:
        if kind.startswith("tuple"):
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)
            return tuple(Path(str(v)) for v in items if str(v))
        if kind.startswith("Path"):
            return Path(str(value)) if str(value) else None
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
        return str(value)
    except (TypeError, ValueError) as exc:
        raise MamoriError(f"setting {name!r} has a bad value {value!r}: {exc}", where=where,
                          hint=f"give {name} as {kind}") from exc


def retention_by_source(settings: Settings) -> dict[str, int]:
    """The ``retention_by_source`` setting as source -> days (``"fortigate=7, winevtx=365"``); an error
    naming the setting and the entry otherwise."""
    days: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in settings.retention_by_source.split(","))):
        source, _, value = entry.partition("=")
        try:
            kept = int(value)
        except ValueError:
            kept = -1
        if not source.strip() or kept < 0:
            raise MamoriError(f"retention_by_source: {entry!r} is not source=days", where="retention_by_source",
                              hint='e.g. retention_by_source = "fortigate=7, winevtx=365" (0: keep for ever)')
        days[source.strip()] = kept
    return days


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings: defaults, then the TOML file ``path``, then ``MAMORI_*`` variables, then
    ``overrides`` (command-line options); unknown keys in the file are an error naming the key."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise MamoriError(f"cannot read the configuration: {exc}", where=str(path)) from exc
        table = document.get("serve", document)
        for key, value in table.items():
            if key == "serve" and isinstance(value, dict):
                continue
            if key not in _FIELDS:
                raise MamoriError(f"unknown setting {key!r}", where=str(path),
                                  hint=f"known settings: {', '.join(sorted(_FIELDS))}")
            values[key] = _convert(key, value, str(path))
    environment = os.environ if env is None else env
    for key in _FIELDS:
        variable = f"MAMORI_{key.upper()}"
        if variable in environment:
            values[key] = _convert(key, environment[variable], variable)
    for key, value in overrides.items():
        if value is not None:
            values[key] = _convert(key, value, f"--{key.replace('_', '-')}") if key in _FIELDS else value
    return Settings(**values)


def settings_dict(settings: Settings) -> dict[str, Any]:
    """The settings as plain values (paths as text), for display and for a child process."""
    out: dict[str, Any] = {}
    for key, item in dataclasses.asdict(settings).items():
        if isinstance(item, tuple):
            out[key] = [str(v) for v in item]
        elif isinstance(item, Path):
            out[key] = str(item)
        else:
            out[key] = item
    return out


__all__ = ["Settings", "load_settings", "settings_dict"]
