"""Find and remove personal information (APPI) from text before threat intelligence leaves Mamori.

Structured identifiers are found by pattern and confirmed by their check digits: My Number (12
digits, check digit), payment cards (Luhn), Japanese phone numbers (digit count by format) and
e-mail addresses. Postal addresses, people's names (by honorific, label or a configured list), and
internal user names and IP addresses (as configured) are found too. Each finding is either replaced
by ``[REDACTED:<kind>]`` or pseudonymised with a keyed hash, so the same value gets the same token
everywhere in a share; every finding is returned so the sender can review it before publishing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from mamori.intel.identifiers import is_card_number, is_my_number


class PiiKind(StrEnum):
    """Kinds of personal information the redactor knows."""

    CARD = "card"
    MY_NUMBER = "my_number"
    EMAIL = "email"
    PHONE = "phone"
    INTERNAL_IP = "internal_ip"
    POSTAL_ADDRESS = "postal_address"
    INTERNAL_USER = "internal_user"
    NAME = "name"


STRUCTURED = frozenset({PiiKind.CARD, PiiKind.MY_NUMBER, PiiKind.EMAIL, PiiKind.PHONE})


@dataclass(frozen=True)
class RedactionPolicy:
    """What counts as personal here, and what to do with it.

    ``pseudonymise`` kinds get a stable keyed token (so analysts can still correlate); the others
    are replaced by a plain marker. In IOC fields (a STIX ``pattern``) an external e-mail address or
    IP is the indicator itself and is kept; internal ones and numbers are still removed.
    """

    pseudonymise: frozenset[PiiKind] = frozenset({PiiKind.INTERNAL_USER, PiiKind.INTERNAL_IP})
    secret: str = "mamori"
    internal_users: tuple[str, ...] = ()
    internal_networks: tuple[str, ...] = ()
    internal_domains: tuple[str, ...] = ()
    known_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One piece of personal information: its kind, where it is, and what replaces it."""

    kind: PiiKind
    start: int
    end: int
    text: str
    replacement: str

    @property
    def preview(self) -> str:
        """A masked form for review, showing only enough to recognise the value."""
        value = self.text
        if len(value) <= 4:
            return "*" * len(value)
        return value[:2] + "*" * (len(value) - 4) + value[-2:]


@dataclass(frozen=True)
class Redacted:
    """A text with its personal information replaced, and the findings."""

    text: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)


# One-for-one character folding (keeps offsets): full-width digits, signs and dashes to ASCII.
_FOLD = str.maketrans(
    "０１２３４５６７８９＋－−‐‑–—―ー（）＠．　",
    "0123456789+--------()@. ",
)

_PREFECTURES = (
    "北海道|東京都|京都府|大阪府|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|千葉県|"
    "神奈川県|新潟県|富山県|石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|滋賀県|兵庫県|奈良県|和歌山県|"
    "鳥取県|島根県|岡山県|広島県|山口県|徳島県|香川県|愛媛県|高知県|福岡県|佐賀県|長崎県|熊本県|大分県|宮崎県|"
    "鹿児島県|沖縄県"
)
_CARD = re.compile(
    r"(?<![\d-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"
    r"|\d{4}[ -]?\d{6}[ -]?\d{4,5}|\d{13,19})(?![\d])"
)
_MY_NUMBER = re.compile(r"(?<![\d-])\d{4}([ -]?)\d{4}\1\d{4}(?![\d]|-\d)")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])")
_PHONE = re.compile(
    r"(?<![\d+])(?:\+81[ -]?(?:\(0\))?[ -]?\d{1,4}|\(0\d{1,4}\)|0\d{1,4})"
    r"[ -]?(?:\(\d{1,4}\)|\d{1,4})[ -]?\d{3,4}(?![\d])"
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_POSTAL = re.compile(
    r"〒 ?\d{3}-?\d{4}(?:[ ]?(?:" + _PREFECTURES + r")[^\s、。,，)」』]{1,40})?"
    r"|(?:"
    + _PREFECTURES
    + r")[^\s、。,，)」』]{2,40}?(?:\d+(?:-\d+){1,2}|\d+丁目[^\s、。,，)」』]{0,12}|\d+番地?\d*号?)"
    r"|\b\d{1,5}(?:-\d{1,5}){0,2} (?:[A-Z][a-z]+ ){1,3}"
    r"(?:Street|St\.|Avenue|Ave\.|Road|Rd\.|Boulevard|Blvd\.|"
    r"Lane|Drive|Dr\.|Way)(?:, [A-Z][a-z]+(?:-[a-z]+)?)*(?:,? \d{3}-\d{4}|,? \d{5})?"
    r"|\b\d{1,4}-\d{1,4}(?:-\d{1,4})? [A-Z][a-z]+(?:-[a-z]+)?, [A-Z][a-z]+-(?:ku|shi|cho|machi|gun)"
    r"(?:, [A-Z][a-z]+)*(?:,? \d{3}-\d{4})?"
)
_NAME_JA = re.compile(
    r"(?:(?<=氏名[:： ])|(?<=名前[:： ])|(?<=担当[:： ])|(?<=担当者[:： ]))"
    r"[^\s、。,，:：]{1,6}(?:[ ][^\s、。,，:：]{1,6})?"
    r"|[一-龯々]{1,4}(?:[ ][一-龯々]{1,4})?(?=さん|様|さま|氏|殿|くん|部長|課長|係長|主任)"
    r"|[ァ-ヴー]{2,10}(?=さん|様|氏)"
)
_NAME_EN = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.? [A-Z][a-z]+(?: [A-Z][a-z]+)?"
    r"|(?<=[Nn]ame: )[A-Z][a-z]+(?: [A-Z][a-z]+)?"
)
_DOMAIN_USER = re.compile(r"\b[A-Z][A-Z0-9-]{1,15}\\([A-Za-z0-9._-]{2,64})")

_PRIORITY = {kind: rank for rank, kind in enumerate(PiiKind)}
# Words that take an honorific but are not names (お客様, 皆さん, 各位...).
_NOT_NAMES = frozenset({"客", "皆", "各", "神", "王", "殿", "仏", "奥", "先", "貴", "皆様", "担当", "関係者", "利用者"})


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _phone_ok(text: str) -> bool:
    digits = _digits(text)
    if text.startswith("+81"):
        rest = digits[2:]
        rest = rest[1:] if rest.startswith("0") else rest
        return len(rest) in (9, 10)
    return digits.startswith("0") and len(digits) in (10, 11) and not digits.startswith("00")


class Redactor:
    """Finds personal information under a policy; built once, used for many texts."""

    def __init__(self, policy: RedactionPolicy | None = None) -> None:
        self.policy = policy or RedactionPolicy()
        self._networks = [ipaddress.ip_network(n, strict=False) for n in self.policy.internal_networks]
        self._domains = tuple(d.lower().lstrip("@.") for d in self.policy.internal_domains)
        words = sorted({*self.policy.internal_users}, key=len, reverse=True)
        self._users = (
            re.compile(r"(?<![\w.-])(?:" + "|".join(map(re.escape, words)) + r")(?![\w-])", re.IGNORECASE)
            if words
            else None
        )
        names = sorted({*self.policy.known_names}, key=len, reverse=True)
        self._names = re.compile("|".join(map(re.escape, names)), re.IGNORECASE) if names else None

    def _internal_ip(self, text: str) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def _internal_email(self, text: str) -> bool:
        domain = text.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self._domains)

    def _candidates(self, folded: str, ioc_field: bool) -> Iterable[tuple[PiiKind, int, int]]:
        checks: list[tuple[PiiKind, re.Pattern[str], Callable[[re.Match[str]], bool]]] = [
            (PiiKind.CARD, _CARD, lambda m: is_card_number(_digits(m.group(0)))),
            (PiiKind.MY_NUMBER, _MY_NUMBER, lambda m: is_my_number(_digits(m.group(0)))),
            (PiiKind.EMAIL, _EMAIL, lambda m: not ioc_field or self._internal_email(m.group(0))),
            (PiiKind.PHONE, _PHONE, lambda m: _phone_ok(m.group(0))),
            (PiiKind.INTERNAL_IP, _IPV4, lambda m: self._internal_ip(m.group(0))),
            (PiiKind.INTERNAL_IP, _IPV6, lambda m: self._internal_ip(m.group(0))),
            (PiiKind.POSTAL_ADDRESS, _POSTAL, lambda m: not ioc_field),
        ]
        if not ioc_field:
            checks += [
                (PiiKind.NAME, _NAME_JA, lambda m: m.group(0).strip() not in _NOT_NAMES),
                (PiiKind.NAME, _NAME_EN, lambda m: True),
            ]
            if self._names is not None:
                checks.append((PiiKind.NAME, self._names, lambda m: True))
        if self._users is not None:
            checks.append((PiiKind.INTERNAL_USER, self._users, lambda m: True))
        for kind, pattern, accept in checks:
            for match in pattern.finditer(folded):
                if accept(match):
                    yield kind, match.start(), match.end()
        for match in _DOMAIN_USER.finditer(folded):
            yield PiiKind.INTERNAL_USER, match.start(1), match.end(1)

    def replacement(self, kind: PiiKind, value: str) -> str:
        """What replaces a value: a stable keyed token for pseudonymised kinds, else a marker."""
        if kind in self.policy.pseudonymise:
            digest = hmac.new(self.policy.secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256)
            return f"[{kind}:{digest.hexdigest()[:10]}]"
        return f"[REDACTED:{kind}]"

    def find(self, text: str, *, ioc_field: bool = False) -> list[Finding]:
        """All personal information in a text, without overlaps, in reading order."""
        folded = text.translate(_FOLD)
        taken: list[tuple[int, int]] = []
        findings: list[Finding] = []
        for kind, start, end in sorted(self._candidates(folded, ioc_field), key=lambda c: (_PRIORITY[c[0]], c[1])):
            if start == end or any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            value = text[start:end]
            findings.append(Finding(kind, start, end, value, self.replacement(kind, value)))
        return sorted(findings, key=lambda f: f.start)

    def redact(self, text: str, *, ioc_field: bool = False) -> Redacted:
        """The text with every finding replaced, and the findings."""
        findings = self.find(text, ioc_field=ioc_field)
        if not findings:
            return Redacted(text)
        parts: list[str] = []
        cursor = 0
        for finding in findings:
            parts.append(text[cursor : finding.start])
            parts.append(finding.replacement)
            cursor = finding.end
        parts.append(text[cursor:])
        return Redacted("".join(parts), tuple(findings))


def redact_text(text: str, policy: RedactionPolicy | None = None) -> Redacted:
    """Redact one text under a policy (a convenience over ``Redactor``)."""
    return Redactor(policy).redact(text)
