"""Logon geography: a new country for a user, or impossible travel between two logons, when the user
supplies an IP geolocation database (an IP2Location CSV, IPv4 or IPv6, or a MaxMind GeoLite2
``.mmdb`` read with the optional ``maxminddb`` package: ``pip install 'mamori[geoip]'``).
:func:`open_geo_database` picks the reader from the file name; the service's ``anomaly_geo_database``
setting names the file."""

from __future__ import annotations

import bisect
import ipaddress
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from mamori.detect.anomaly import fields
from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.explain import fmt, window_text
from mamori.detect.anomaly.records import Anomaly, Explanation
from mamori.errors import MamoriError

_GEO_SCHEMA = {"ip": pl.Utf8, "country": pl.Utf8, "lat": pl.Float64, "lon": pl.Float64}
_V4_MAPPED = 0xFFFF_0000_0000  # ::ffff:0.0.0.0, where IP2Location's IPv6 files keep the IPv4 ranges
GEOIP_EXTRA = "geoip"
_LAST = pl.Schema({  # a user's last located logon
    "user": pl.String(),
    "_time": pl.Datetime("ns", "UTC"),
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "country": pl.String(),
})


def _route(user: str, a: str | None, b: str | None) -> str:
    """A user's travel between two countries, either way round (what a benign travel verdict allows)."""
    return f"{user}|{'-'.join(sorted((a or '?', b or '?')))}"


class GeoDatabase(Protocol):
    """Looks up country and coordinates for IP addresses (unknown addresses get nulls)."""

    def lookup(self, ips: list[str]) -> pl.DataFrame:
        """Columns ip, country, lat, lon for each distinct address."""
        ...


def ipv4_to_int(ips: pl.Expr) -> pl.Expr:
    """IPv4 dotted quads as integers (null for anything else)."""
    parts = ips.str.extract_groups(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
    return (
        parts.struct.field("1").cast(pl.Int64) * 16_777_216
        + parts.struct.field("2").cast(pl.Int64) * 65_536
        + parts.struct.field("3").cast(pl.Int64) * 256
        + parts.struct.field("4").cast(pl.Int64)
    )


class Ip2LocationCsv:
    """An IP2Location (LITE) CSV: ip_from, ip_to, country_code, country_name[, region, city, lat, lon].

    Both the IPv4 files (addresses as 32-bit numbers) and the IPv6 ones (128-bit numbers, the IPv4
    ranges among them as ``::ffff:a.b.c.d``) are read: IPv4 ranges go to a numpy table searched for a
    whole batch at once, the IPv6 ranges to a sorted list searched per distinct IPv6 address."""

    def __init__(self, path: Path) -> None:
        table = pl.read_csv(path, has_header=False, infer_schema=False)
        if table.width < 4:
            raise ValueError(f"{path}: expected ip_from, ip_to, country_code, country_name columns")
        cols = table.columns
        has_coords = table.width >= 8
        table = table.select(
            pl.col(cols[0]).alias("lo"),
            pl.col(cols[1]).alias("hi"),
            pl.col(cols[2]).alias("country"),
            (pl.col(cols[6]) if has_coords else pl.lit(None, pl.Utf8)).cast(pl.Float64).alias("lat"),
            (pl.col(cols[7]) if has_coords else pl.lit(None, pl.Utf8)).cast(pl.Float64).alias("lon"),
        )
        # IPv4 ranges (and IPv6's ``::ffff:a.b.c.d`` ones) are whole columns of 64-bit numbers; only the
        # true IPv6 ranges, up to 128 bits, become Python integers
        table = table.with_columns(pl.col("lat").fill_null(np.nan), pl.col("lon").fill_null(np.nan))
        fits = table.filter(pl.col("hi").str.len_chars() <= 18).with_columns(
            pl.col("lo").cast(pl.Int64), pl.col("hi").cast(pl.Int64))
        mapped = (pl.col("lo") >= _V4_MAPPED) & (pl.col("hi") <= _V4_MAPPED + 0xFFFF_FFFF)
        v4 = pl.concat([
            fits.filter(pl.col("hi") <= 0xFFFF_FFFF),
            fits.filter(mapped).with_columns(pl.col("lo") - _V4_MAPPED, pl.col("hi") - _V4_MAPPED),
        ]).sort("lo", "hi")
        self._from = v4["lo"].to_numpy()
        self._to = v4["hi"].to_numpy()
        self._country = np.array(v4["country"].to_list(), dtype=object)
        self._lat = v4["lat"].to_numpy()
        self._lon = v4["lon"].to_numpy()
        wide = pl.concat([
            fits.filter((pl.col("hi") > 0xFFFF_FFFF) & ~mapped).with_columns(pl.col("lo", "hi").cast(pl.Utf8)),
            table.filter(pl.col("hi").str.len_chars() > 18),
        ])
        v6 = sorted((int(lo), int(hi), country, lat, lon) for lo, hi, country, lat, lon in wide.iter_rows())
        self._v6 = v6
        self._v6_from = [r[0] for r in v6]

    def _lookup_v6(self, ip: str) -> tuple[str | None, float | None, float | None]:
        """Country and coordinates of one IPv6 address (an IPv4-mapped one is looked up as IPv4)."""
        try:
            address = ipaddress.IPv6Address(ip.split("%", 1)[0])
        except ValueError:
            return None, None, None
        if address.ipv4_mapped is not None:
            row = self.lookup([str(address.ipv4_mapped)]).row(0)
            return row[1], row[2], row[3]
        n = int(address)
        i = bisect.bisect_right(self._v6_from, n) - 1
        if i < 0 or not (self._v6[i][0] <= n <= self._v6[i][1]) or self._v6[i][2] in ("-", ""):
            return None, None, None
        _, _, country, lat, lon = self._v6[i]
        return country, None if np.isnan(lat) else lat, None if np.isnan(lon) else lon

    def lookup(self, ips: list[str]) -> pl.DataFrame:
        """Binary search of each address among the ranges."""
        frame = pl.DataFrame({"ip": ips}, schema={"ip": pl.Utf8}).with_columns(ipv4_to_int(pl.col("ip")).alias("n"))
        n = frame["n"].fill_null(-1).to_numpy()
        idx = np.clip(np.searchsorted(self._from, n, side="right") - 1, 0, max(len(self._from) - 1, 0))
        hit = (n >= 0) & (len(self._from) > 0) & (self._from[idx] <= n) & (n <= self._to[idx])
        raw = self._country[idx] if len(self._from) else np.full(len(n), "", dtype=object)
        country = [c if ok and c not in ("-", "") else None for c, ok in zip(raw.tolist(), hit.tolist(), strict=True)]
        lat = np.where(hit, self._lat[idx], np.nan) if len(self._from) else np.full(len(n), np.nan)
        lon = np.where(hit, self._lon[idx], np.nan) if len(self._from) else np.full(len(n), np.nan)
        out = pl.DataFrame(
            {"ip": ips, "country": country, "lat": lat, "lon": lon}, schema=_GEO_SCHEMA
        ).with_columns(pl.col("lat").fill_nan(None), pl.col("lon").fill_nan(None))
        v6 = [i for i, ip in enumerate(ips) if ":" in ip]
        if not v6:
            return out
        found = [self._lookup_v6(ips[i]) for i in v6]
        patch = pl.DataFrame(
            {"i": v6, "c6": [f[0] for f in found], "lat6": [f[1] for f in found], "lon6": [f[2] for f in found]},
            schema={"i": pl.UInt32, "c6": pl.Utf8, "lat6": pl.Float64, "lon6": pl.Float64},
        )
        return (
            out.with_row_index("i")
            .join(patch, on="i", how="left")
            .select(
                "ip",
                pl.coalesce("c6", "country").alias("country"),
                pl.coalesce("lat6", "lat").alias("lat"),
                pl.coalesce("lon6", "lon").alias("lon"),
            )
        )


class MaxMindDatabase:
    """A MaxMind GeoLite2 City or Country ``.mmdb`` file (needs the ``maxminddb`` package)."""

    def __init__(self, path: Path) -> None:
        try:
            import maxminddb
        except ImportError as exc:
            raise MamoriError(
                "reading a MaxMind .mmdb geolocation database needs the maxminddb package, not installed",
                where=str(path),
                hint=f"pip install 'mamori[{GEOIP_EXTRA}]', or give an IP2Location CSV instead",
            ) from exc
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError) as exc:
            raise MamoriError(f"not a readable MaxMind database: {exc}", where=str(path),
                              hint="give a GeoLite2 City or Country .mmdb file") from exc

    def lookup(self, ips: list[str]) -> pl.DataFrame:
        """One reader call per distinct address (addresses repeat a lot in logons)."""
        rows: list[dict[str, Any]] = []
        for ip in ips:
            try:
                rec: Any = self._reader.get(ip)
            except ValueError:
                rec = None
            rows.append(
                {
                    "ip": ip,
                    "country": _walk(rec, "country", "iso_code"),
                    "lat": _walk(rec, "location", "latitude"),
                    "lon": _walk(rec, "location", "longitude"),
                }
            )
        return pl.DataFrame(rows, schema=_GEO_SCHEMA)


def _walk(record: Any, *keys: str) -> Any:
    """A value nested in a MaxMind record (None where a level is missing or not a map)."""
    for key in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def open_geo_database(path: Path) -> GeoDatabase:
    """The geolocation database in ``path``: a MaxMind ``.mmdb`` file, else an IP2Location CSV (IPv4 or
    IPv6). Errors name the file and say what to give."""
    if not path.is_file():
        raise MamoriError("geolocation database not found", where=str(path),
                          hint="give an IP2Location CSV or a MaxMind GeoLite2 .mmdb file (anomaly_geo_database)")
    if path.suffix.lower() == ".mmdb":
        return MaxMindDatabase(path)
    try:
        return Ip2LocationCsv(path)
    except (ValueError, pl.exceptions.PolarsError) as exc:
        raise MamoriError(f"not an IP2Location CSV: {exc}", where=str(path),
                          hint="columns ip_from, ip_to, country_code, country_name[, region, city, lat, lon]") from exc


def _km(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in kilometres (haversine)."""
    p1, p2 = lat1.radians(), lat2.radians()
    dphi = p2 - p1
    dlmb = (lon2 - lon1).radians()
    a = (dphi / 2).sin() ** 2 + p1.cos() * p2.cos() * (dlmb / 2).sin() ** 2
    return 2 * 6371.0 * a.sqrt().arcsin()


class GeoLogonDetector:
    """Flags a user's logon from a country new to them, and pairs of logons whose implied speed
    exceeds ``max_kmh`` over more than ``min_km``."""

    name = "geo_logon"

    def __init__(self, database: GeoDatabase, max_kmh: float = 900.0, min_km: float = 500.0) -> None:
        self.database = database
        self.max_kmh = max_kmh
        self.min_km = min_km
        self._countries = pl.DataFrame(schema={"user": pl.Utf8, "country": pl.Utf8})
        self._last = pl.DataFrame(schema=_LAST)
        self._routes: set[str] = set()  # "user|JP-US": travel between two countries an analyst called benign
        self._start: datetime | None = None
        self._end: datetime | None = None

    def _located(self, events: pl.DataFrame) -> pl.DataFrame:
        sel = events.filter(fields.event_id_in(events, fields.LOGON_SUCCESS))
        rows = sel.select(
            fields.column(sel, fields.USER).alias("user"),
            fields.column(sel, fields.SOURCE_IP).alias("ip"),
            pl.col("_time").cast(pl.Datetime("ns", "UTC")),
            "_uid",
        ).drop_nulls(["user", "ip"])
        geo = self.database.lookup(rows.get_column("ip").unique().to_list())
        return rows.join(geo, on="ip", how="inner").drop_nulls("country")

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Remember each user's countries and last located logon."""
        located = self._located(events)
        self._countries = located.select("user", "country").unique()
        self._last = located.sort("_time").group_by("user").last().select(*_LAST)
        self._start, self._end = time_span(events)

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """New-country and impossible-travel anomalies in a batch."""
        located = self._located(events).sort("_time")
        window = window_text(self._start, self._end)
        out: list[Anomaly] = []
        known_users = self._countries.select("user").unique()
        new = (
            located.join(known_users, on="user", how="semi")
            .join(self._countries, on=["user", "country"], how="anti")
            .group_by("user", "country")
            .agg(pl.col("_time").min(), pl.col("_uid").head(20), pl.col("ip").first())
        )
        usual = self._countries.group_by("user").agg(pl.col("country").sort().str.join(", ").alias("usual"))
        for row in new.join(usual, on="user", how="left").sort("_time").iter_rows(named=True):
            out.append(
                Anomaly(
                    self.name,
                    "user",
                    row["user"],
                    row["_time"],
                    50.0,
                    1.0,
                    0.0,
                    window,
                    Explanation(
                        en=f"{row['user']} logged on from {row['country']} ({row['ip']}) for the first time; "
                        f"usual countries: {row['usual']}",
                        ja=f"{row['user']} が初めて {row['country']}（{row['ip']}）からログオン。"
                        f"通常の国: {row['usual']}",
                    ),
                    event_uids=tuple(row["_uid"]),
                    detail=(("country", row["country"]),),
                )
            )
        seq = pl.concat(
            [
                self._last.with_columns(pl.lit(None, pl.Utf8).alias("_uid")),
                located.select(*_LAST, "_uid"),
            ]
        ).sort("user", "_time")
        prev = [pl.col(c).shift(1).over("user").alias(f"prev_{c}") for c in ("_time", "lat", "lon", "_uid", "country")]
        travel = (
            seq.with_columns(prev)
            .drop_nulls(["_uid", "prev_lat", "lat"])
            .with_columns(_km(pl.col("prev_lat"), pl.col("prev_lon"), pl.col("lat"), pl.col("lon")).alias("km"))
            .with_columns(
                (
                    pl.col("km")
                    / ((pl.col("_time") - pl.col("prev__time")).dt.total_seconds() / 3600.0).clip(lower_bound=1 / 60)
                ).alias("kmh")
            )
            .filter((pl.col("km") >= self.min_km) & (pl.col("kmh") > self.max_kmh))
        )
        for row in travel.iter_rows(named=True):
            route = _route(row["user"], row["prev_country"], row["country"])
            if route in self._routes:
                continue
            hours = (row["_time"] - row["prev__time"]).total_seconds() / 3600.0
            out.append(
                Anomaly(
                    self.name,
                    "user",
                    row["user"],
                    row["_time"],
                    70.0,
                    float(row["kmh"]),
                    self.max_kmh,
                    window,
                    Explanation(
                        en=f"{row['user']} logged on {fmt(round(row['km']))} km apart within {hours:.1f} h "
                        f"({fmt(round(row['kmh']))} km/h; possible ≤ {fmt(self.max_kmh)} km/h)",
                        ja=f"{row['user']} が {hours:.1f} 時間以内に {fmt(round(row['km']))} km 離れた場所から"
                        f"ログオン（時速 {fmt(round(row['kmh']))} km。移動可能な上限は時速 {fmt(self.max_kmh)} km）",
                    ),
                    event_uids=tuple(u for u in (row["prev__uid"], row["_uid"]) if u),
                    detail=(("travel", f"{row['prev__time']:%Y-%m-%dT%H:%M}"), ("route", route.split("|", 1)[1])),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """A benign new country joins the user's usual countries; a benign travel allows the user's
        travel between those two countries from now on (a VPN exit abroad), whatever the time."""
        detail = dict(anomaly.detail)
        country = detail.get("country")
        if country:
            add = pl.DataFrame({"user": [anomaly.entity], "country": [country]})
            self._countries = pl.concat([self._countries, add]).unique()
        if detail.get("route"):
            self._routes.add(f"{anomaly.entity}|{detail['route']}")

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Countries and last positions as frames (the database path is the caller's to keep)."""
        return {"countries": self._countries, "last": self._last}, {
            "max_kmh": self.max_kmh,
            "min_km": self.min_km,
            "routes": sorted(self._routes),
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self._countries, self._last = frames["countries"], frames["last"]
        if "country" not in self._last.columns:  # saved before travel verdicts were kept
            self._last = self._last.with_columns(pl.lit(None, pl.Utf8).alias("country"))
        self.max_kmh, self.min_km = settings["max_kmh"], settings["min_km"]
        self._routes = set(settings.get("routes", ()))
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
