"""Bilingual (Japanese and English) sentences for anomalies, written from the same numbers."""

from __future__ import annotations

from datetime import datetime

from mamori.detect.anomaly.records import Explanation


def fmt(value: float) -> str:
    """A number as people read it: integers without decimals, large values with separators."""
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.2f}"


def window_text(start: datetime, end: datetime) -> str:
    """A baseline window as ``YYYY-MM-DD..YYYY-MM-DD (N days)``."""
    days = max(round((end - start).total_seconds() / 86400), 1)
    return f"{start:%Y-%m-%d}..{end:%Y-%m-%d} ({days} days)"


def volume(
    entity: str,
    metric_en: str,
    metric_ja: str,
    observed: float,
    typical: float,
    bucket: str,
    days: int,
    peer: str,
) -> Explanation:
    """A volume spike: observed value against the entity's (or its peers') 99th percentile."""
    who_en = f" (peer group {peer})" if peer else ""
    who_ja = f"（ピアグループ {peer}）" if peer else ""
    return Explanation(
        en=f"{entity} {metric_en}: {fmt(observed)} in {bucket}; typical ≤ {fmt(typical)}, "
        f"the 99th percentile of the last {days} days{who_en}",
        ja=f"{entity} の{metric_ja}が {bucket} に {fmt(observed)}。通常は {fmt(typical)} 以下"
        f"（過去 {days} 日間の99パーセンタイル）{who_ja}",
    )


def first_seen(entity: str, what_en: str, what_ja: str, items: list[str], days: int, peers_seen: int) -> Explanation:
    """Something never seen for this entity in the baseline window."""
    shown = ", ".join(items[:5]) + (f" (+{len(items) - 5})" if len(items) > 5 else "")
    peers_en = f"; {peers_seen} of them seen among its peers" if peers_seen else "; none seen among its peers"
    peers_ja = f"。うち {peers_seen} 件はピアグループで既知" if peers_seen else "。ピアグループでも未知"
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


def off_hours(user: str, hour: int, share: float, days: int) -> Explanation:
    """A logon at an hour the user is almost never active."""
    return Explanation(
        en=f"{user} logged on at {hour:02d}:00-{hour:02d}:59 UTC; in the last {days} days "
        f"{share:.1%} of their logons fell within an hour of that time",
        ja=f"{user} が {hour:02d}時台（UTC）にログオン。過去 {days} 日間でこの時間帯（前後1時間）の"
        f"ログオンは {share:.1%}",
    )
