"""Bilingual (Japanese and English) sentences for anomalies, written from the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mamori.detect.anomaly.records import Explanation


def fmt(value: float) -> str:
    """A number as people read it: integers without decimals, large values with separators."""
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.2f}"


def window_days(start: datetime | None, end: datetime | None) -> int:
    """The whole days a baseline window spans (at least 1), 0 before there is a baseline: how many days
    an explanation says the typical value was learned over."""
    if start is None or end is None:
        return 0
    return max(round((end - start).total_seconds() / 86400), 1)


def window_text(start: datetime | None, end: datetime | None) -> str:
    """A baseline window as ``YYYY-MM-DD..YYYY-MM-DD (N days)``; empty before there is a baseline."""
    if start is None or end is None:
        return ""
    return f"{start:%Y-%m-%d}..{end:%Y-%m-%d} ({window_days(start, end)} days)"


def volume(
    entity: str,
    metric_en: str,
    metric_ja: str,
    observed: float,
    typical: float,
    bucket: tuple[str, str],
    days: int,
    peer: str,
    season: tuple[str, str] = ("", ""),
) -> Explanation:
    """A volume spike: observed value against the entity's (or its peers') 99th percentile in the
    season (local hours and kind of day, zone named) the bucket falls in; ``bucket`` and ``season``
    are (English, Japanese)."""
    who_en = f" of peer group {peer}" if peer else ""
    who_ja = f"ピアグループ {peer} の" if peer else ""
    when_en = f", {season[0]}" if season[0] else ""
    when_ja = f"、{season[1]}" if season[1] else ""
    return Explanation(
        en=f"{entity} {metric_en}: {fmt(observed)} in {bucket[0]}; typical ≤ {fmt(typical)}, "
        f"the 99th percentile of the last {days} days{who_en}{when_en}",
        ja=f"{entity} の{metric_ja}が {bucket[1]} に {fmt(observed)}。通常は {fmt(typical)} 以下"
        f"（{who_ja}過去 {days} 日間の99パーセンタイル{when_ja}）",
    )


def first_seen(
    entity: str, what_en: str, what_ja: str, items: list[str], days: int, peers_seen: int, peer: str = ""
) -> Explanation:
    """Something never seen for this entity in the baseline window, and how many of the new items its
    peer group (named, when it has one) showed."""
    shown = ", ".join(items[:5]) + (f" (+{len(items) - 5})" if len(items) > 5 else "")
    group_en = f" ({peer})" if peer else ""
    group_ja = f"（{peer}）" if peer else ""
    peers_en = (f"; {peers_seen} of them seen among its peers{group_en}" if peers_seen
                else f"; none seen among its peers{group_en}")
    peers_ja = (f"。うち {peers_seen} 件はピアグループ{group_ja}で既知" if peers_seen
                else f"。ピアグループ{group_ja}でも未知")
    return Explanation(
        en=f"{entity}: {len(items)} {what_en} not seen in the last {days} days: {shown}{peers_en}",
        ja=f"{entity} が過去 {days} 日間で初めての{what_ja} {len(items)} 件: {shown}{peers_ja}",
    )


def spraying(source: str, users: int, attempts: float, typical: float, minutes: int) -> Explanation:
    """Password spraying: many users, few attempts each, from one source."""
    return Explanation(
        en=f"{source} failed to log on as {users} different users in {minutes} minutes "
        f"({fmt(attempts)} attempts per user); typical ≤ {fmt(typical)} users per source",
        ja=f"{source} から {minutes} 分間に {users} 人の異なるユーザーでログオン失敗"
        f"（ユーザーあたり {fmt(attempts)} 回）。通常は送信元あたり {fmt(typical)} 人以下",
    )


def beaconing(host: str, dest: str, count: int, period: float, jitter: float, peers: int) -> Explanation:
    """Beaconing: periodic connections with low jitter to a destination few hosts talk to."""
    return Explanation(
        en=f"{host} connected to {dest} {count} times every {fmt(period)} s (jitter {jitter:.1%}); "
        f"{peers} host(s) in the organisation talk to it",
        ja=f"{host} が {dest} へ {fmt(period)} 秒ごとに {count} 回接続（ゆらぎ {jitter:.1%}）。"
        f"この宛先と通信するホストは組織内で {peers} 台",
    )


def off_hours(user: str, hour: int, share: float, days: int, timezone: str, workday: bool | None) -> Explanation:
    """A logon at a local hour the user is almost never active, the zone named; ``workday`` says which
    kind of day the share was taken over (None: every day, when the user's own kind of day was thin)."""
    days_en = {True: " on workdays", False: " on weekends", None: ""}[workday]
    days_ja = {True: "平日の", False: "週末の", None: ""}[workday]
    return Explanation(
        en=f"{user} logged on at {hour:02d}:00-{hour:02d}:59 {timezone}; in the last {days} days "
        f"{share:.1%} of their logons{days_en} fell within an hour of that time",
        ja=f"{user} が {hour:02d}時台（{timezone}）にログオン。過去 {days} 日間で{days_ja}この時間帯（前後1時間）の"
        f"ログオンは {share:.1%}",
    )


def vector_outlier(
    entity: str,
    local: str,
    model: tuple[str, str],
    score: float,
    threshold: float,
    features: list[tuple[str, str, float, float, float]],
    season: tuple[str, str],
    window: str,
) -> Explanation:
    """An entity-hour an unsupervised model (``model``: English and Japanese name) scored above its
    threshold, naming the features behind the score, each as (name, Japanese name, observed, typical,
    share of the score): typical is the entity's own 99th percentile per hour in the season."""
    parts_en = "; ".join(f"{en} {fmt(obs)} (typical ≤ {fmt(typ)}, {share:.0%} of the score)"
                         for en, _, obs, typ, share in features)
    parts_ja = "、".join(f"{ja} {fmt(obs)}（通常は {fmt(typ)} 以下、スコアの {share:.0%}）"
                         for _, ja, obs, typ, share in features)
    return Explanation(
        en=f"{entity} behaved unlike its baseline in the hour from {local} ({model[0]} score {score:.1f}, "
        f"alert threshold {threshold:.1f}): {parts_en}; typical is its 99th percentile per hour, "
        f"{season[0]}, baseline {window}",
        ja=f"{entity} の {local} からの1時間の振る舞いがベースラインと異なる（{model[1]}スコア {score:.1f}、"
        f"しきい値 {threshold:.1f}）: {parts_ja}。通常値は1時間あたりの99パーセンタイル（{season[1]}、"
        f"ベースライン {window}）",
    )


def share_text(part: float, whole: float) -> str:
    """A share as a percentage people can compare: ``0.09%``, ``<0.01%`` for a trace, ``0%`` for none."""
    if whole <= 0 or part <= 0:
        return "0%"
    share = part / whole
    return "<0.01%" if share < 0.0001 else f"{share:.2%}"


@dataclass(frozen=True)
class RarityFacts:
    """The numbers behind a rare value: how often the entity and its peers showed it in the baseline
    window (before this batch), against their totals and the entity's typical value."""

    entity: str
    entity_type: str  # "host" or "user"
    what: tuple[str, str]  # what the value is (English, Japanese): "process", "プロセス"
    events: tuple[str, str]  # what the counts count: "process starts", "プロセス起動"
    value: str
    now: int  # times in this batch
    count: int  # times the entity showed it in the window
    total: int  # the entity's events of this kind in the window
    typical: float  # how often the entity's typical value (weighted median) was seen
    days: int
    peer: str
    peer_count: int  # times the other members of the peer group showed it
    peer_total: int
    peers_with: int  # other members that showed it
    peer_size: int  # other members


_ENTITY_JA = {"host": ("ホスト", "台"), "user": ("ユーザー", "人")}


def rarity(f: RarityFacts) -> Explanation:
    """A value rare for the entity and among its peers: its count and share for the entity (against the
    count of the entity's typical value) and its share of the peer group's events."""
    kind_ja, unit_ja = _ENTITY_JA.get(f.entity_type, (f.entity_type, ""))
    own = share_text(f.count, f.total)
    peers = share_text(f.peer_count, f.peer_total)
    return Explanation(
        en=f"{f.what[0]} {f.value} on {f.entity_type} {f.entity} ({f.now} time(s) now) is rare: "
        f"{f.count} time(s) in the last {f.days} days on this {f.entity_type}, {own} of its {fmt(f.total)} "
        f"{f.events[0]} (typical: its usual {f.what[0]} {fmt(f.typical)} times); {peers} of the "
        f"{fmt(f.peer_total)} {f.events[0]} of its peer group {f.peer} ({f.peers_with} of {f.peer_size} "
        f"other {f.entity_type}s showed it)",
        ja=f"{kind_ja} {f.entity} で{f.what[1]} {f.value} はまれ（今回 {f.now} 回）: この{kind_ja}では過去 "
        f"{f.days} 日間に {f.count} 回、{f.events[1]} {fmt(f.total)} 件の {own}（通常の{f.what[1]}は "
        f"{fmt(f.typical)} 回）。ピアグループ {f.peer} では{f.events[1]} {fmt(f.peer_total)} 件の {peers}"
        f"（他の {f.peer_size} {unit_ja}中 {f.peers_with} {unit_ja}）",
    )
