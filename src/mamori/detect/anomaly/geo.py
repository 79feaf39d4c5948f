"""Logon geography: a new country for a user, or impossible travel between two logons, when the user
supplies an IP geolocation database (an IP2Location CSV, or a MaxMind GeoLite2 ``.mmdb`` read with
the optional ``maxminddb`` package)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from mamori.detect.anomaly import fields
from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.explain import fmt, window_text
from mamori.detect.anomaly.records import Anomaly, Explanation

_GEO_SCHEMA = {"ip": pl.Utf8, "country": pl.Utf8, "lat": pl.Float64, "lon": pl.Float64}


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
    """An IP2Location (LITE) CSV: ip_from, ip_to, country_code, country_name[, region, city, lat, lon]."""

    def __init__(self, path: Path) -> None:
        table = pl.read_csv(path, has_header=False, infer_schema=False)
        if table.width < 4:
            raise ValueError(f"{path}: expected ip_from, ip_to, country_code, country_name columns")
        cols = table.columns
        self._from = table[cols[0]].cast(pl.Int64).to_numpy()
        self._to = table[cols[1]].cast(pl.Int64).to_numpy()
        order = np.argsort(self._from)
        self._from, self._to = self._from[order], self._to[order]
        self._country = table[cols[2]].to_numpy()[order]
        has_coords = table.width >= 8
        self._lat = table[cols[6]].cast(pl.Float64).to_numpy()[order] if has_coords else np.full(len(order), np.nan)
        self._lon = table[cols[7]].cast(pl.Float64).to_numpy()[order] if has_coords else np.full(len(order), np.nan)

    def lookup(self, ips: list[str]) -> pl.DataFrame:
        """Binary search of each address among the ranges."""
        frame = pl.DataFrame({"ip": ips}, schema={"ip": pl.Utf8}).with_columns(ipv4_to_int(pl.col("ip")).alias("n"))
        n = frame["n"].fill_null(-1).to_numpy()
        idx = np.clip(np.searchsorted(self._from, n, side="right") - 1, 0, max(len(self._from) - 1, 0))
        hit = (n >= 0) & (len(self._from) > 0) & (self._from[idx] <= n) & (n <= self._to[idx])
        raw = self._country[idx] if len(self._from) else np.full(len(n), "", dtype=object)
        country = [c if ok and c not in ("-", "") else None for c, ok in zip(raw.tolist(), hit.tolist(), strict=True)]
        return pl.DataFrame(
            {
                "ip": ips,
                "country": country,
                "lat": np.where(hit, self._lat[idx], np.nan),
                "lon": np.where(hit, self._lon[idx], np.nan),
            },
            schema=_GEO_SCHEMA,
        ).with_columns(pl.col("lat").fill_nan(None), pl.col("lon").fill_nan(None))


class MaxMindDatabase:
    """A MaxMind GeoLite2 City or Country ``.mmdb`` file (needs the ``maxminddb`` package)."""

    def __init__(self, path: Path) -> None:
        try:
            import maxminddb  # type: ignore[import-not-found]
        except ImportError as exc:  # pragma: no cover - depends on the optional package
            raise ImportError(f"{path}: reading .mmdb files needs `pip install maxminddb`") from exc
        self._reader = maxminddb.open_database(str(path))

    def lookup(self, ips: list[str]) -> pl.DataFrame:
        """One reader call per distinct address (addresses repeat a lot in logons)."""
        rows: list[dict[str, Any]] = []
        for ip in ips:
            try:
                rec = self._reader.get(ip) or {}
            except ValueError:
                rec = {}
            loc = rec.get("location", {})
            rows.append(
                {
                    "ip": ip,
                    "country": rec.get("country", {}).get("iso_code"),
                    "lat": loc.get("latitude"),
                    "lon": loc.get("longitude"),
                }
            )
        return pl.DataFrame(rows, schema=_GEO_SCHEMA)


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
        self._last = pl.DataFrame(
            schema={"user": pl.Utf8, "_time": pl.Datetime("ns", "UTC"), "lat": pl.Float64, "lon": pl.Float64}
        )
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
        self._last = located.sort("_time").group_by("user").last().select("user", "_time", "lat", "lon")
        self._start, self._end = time_span(events)

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """New-country and impossible-travel anomalies in a batch."""
        located = self._located(events).sort("_time")
        window = window_text(self._start, self._end) if self._start and self._end else ""
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
                located.select("user", "_time", "lat", "lon", "_uid"),
            ]
        ).sort("user", "_time")
        prev = [pl.col(c).shift(1).over("user").alias(f"prev_{c}") for c in ("_time", "lat", "lon", "_uid")]
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
                    detail=(("travel", f"{row['prev__time']:%Y-%m-%dT%H:%M}"),),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """A benign new country joins the user's usual countries."""
        country = dict(anomaly.detail).get("country")
        if country:
            add = pl.DataFrame({"user": [anomaly.entity], "country": [country]})
            self._countries = pl.concat([self._countries, add]).unique()

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Countries and last positions as frames (the database path is the caller's to keep)."""
        return {"countries": self._countries, "last": self._last}, {
            "max_kmh": self.max_kmh,
            "min_km": self.min_km,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self._countries, self._last = frames["countries"], frames["last"]
        self.max_kmh, self.min_km = settings["max_kmh"], settings["min_km"]
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
