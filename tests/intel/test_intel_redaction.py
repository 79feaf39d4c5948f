"""Redaction of personal information (APPI): recall on a planted corpus, check digits, the report."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from mamori.intel.identifiers import is_card_number, is_my_number, luhn_valid, my_number_check_digit
from mamori.intel.redact import STRUCTURED, PiiKind, RedactionPolicy, Redactor

DATA = Path(__file__).parent / "data"
FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def my_number(rng: random.Random, *, valid: bool = True) -> str:
    head = "".join(rng.choice("0123456789") for _ in range(11))
    check = my_number_check_digit(head)
    return head + str(check if valid else (check + rng.randint(1, 9)) % 10)


def card(rng: random.Random) -> tuple[str, str]:
    prefix, length, layout = rng.choice(
        [
            ("4", 16, (4, 4, 4, 4)),
            ("51", 16, (4, 4, 4, 4)),
            ("55", 16, (4, 4, 4, 4)),
            ("35", 16, (4, 4, 4, 4)),
            ("37", 15, (4, 6, 5)),
            ("34", 15, (4, 6, 5)),
            ("36", 14, (4, 6, 4)),
        ]
    )
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    digits = next(body + d for d in "0123456789" if luhn_valid(body + d))
    return digits, _layout(rng, digits, layout)


def _layout(rng: random.Random, digits: str, groups: tuple[int, ...]) -> str:
    sep = rng.choice(["", " ", "-"])
    parts, at = [], 0
    for size in groups:
        parts.append(digits[at : at + size])
        at += size
    return sep.join(parts)


def phone(rng: random.Random) -> str:
    def n(k: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(k))

    forms = [
        f"03-{n(4)}-{n(4)}",
        f"06-{n(4)}-{n(4)}",
        f"045-{n(3)}-{n(4)}",
        f"0776-{n(2)}-{n(4)}",
        f"090-{n(4)}-{n(4)}",
        f"080{n(8)}",
        f"070 {n(4)} {n(4)}",
        f"0120-{n(3)}-{n(3)}",
        f"050-{n(4)}-{n(4)}",
        f"+81-3-{n(4)}-{n(4)}",
        f"+81 90 {n(4)} {n(4)}",
        f"(03){n(4)}-{n(4)}",
        f"03({n(4)}){n(4)}",
        f"0{rng.choice('123456789')}{n(8)}",
    ]
    text = rng.choice(forms)
    return text.translate(FULL_WIDTH) if rng.random() < 0.1 and "+" not in text else text


def email(rng: random.Random) -> str:
    local = rng.choice(["taro.yamada", "h-sato", "k_tanaka+soc", "info", "user123", "m.suzuki.2024"])
    domain = rng.choice(["example.co.jp", "mail.example.jp", "example.com", "ne.example.ne.jp", "gov.example.go.jp"])
    return f"{local}{rng.randint(0, 99)}@{domain}"


JA = [
    "お客様の電話番号は{phone}です。",
    "マイナンバー:{my}を確認しました。",
    "連絡先 {email} までご連絡ください。",
    "カード番号{card}で決済が行われた。",
    "個人番号({my})と携帯({phone})がログに残っていた。",
    "送信元アドレス{email}から、電話{phone}の記載があるメール。",
    "決済カード {card} と個人番号 {my} が流出した可能性。",
]
EN = [
    "Please call {phone} to confirm.",
    "Card: {card} (expired).",
    "Contact {email} for the report.",
    "My Number {my} was found in the HR export.",
    "The caller gave {phone} and asked for {email}.",
    "Leaked record: card={card}; my_number={my}; tel={phone}",
]


def corpus(seed: int = 7, size: int = 600) -> list[tuple[str, dict[str, list[str]]]]:
    """Japanese and English sentences with planted identifiers, and what was planted where."""
    rng = random.Random(seed)
    texts = []
    for _ in range(size):
        template = rng.choice(JA + EN)
        planted: dict[str, list[str]] = defaultdict(list)
        values = {}
        for key, maker in (("phone", phone), ("email", email)):
            values[key] = maker(rng)
        values["my"] = my_number(rng)
        if rng.random() < 0.3:
            values["my"] = _layout(rng, values["my"], (4, 4, 4))
        if rng.random() < 0.1:
            values["my"] = values["my"].translate(FULL_WIDTH)
        values["card"] = card(rng)[1]
        for key, kind in (("phone", "phone"), ("email", "email"), ("my", "my_number"), ("card", "card")):
            if "{" + key + "}" in template:
                planted[kind].append(values[key])
        texts.append((template.format(**values), dict(planted)))
    return texts


def test_my_number_check_digit_matches_the_published_algorithm() -> None:
    assert my_number_check_digit("12345678901") == 8
    assert is_my_number("123456789018")
    assert not is_my_number("123456789012")
    assert not is_my_number("12345678901")


def test_card_numbers_need_a_brand_prefix_and_luhn() -> None:
    assert is_card_number("4111111111111111")
    assert is_card_number("378282246310005")
    assert not is_card_number("4111111111111112")
    assert not is_card_number("123456789012")


def test_structured_identifiers_are_found_with_at_least_99_percent_recall() -> None:
    redactor = Redactor()
    planted_count: dict[str, int] = defaultdict(int)
    found_count: dict[str, int] = defaultdict(int)
    for text, planted in corpus():
        findings = redactor.find(text)
        for kind, values in planted.items():
            for value in values:
                planted_count[kind] += 1
                start = text.index(value)
                if any(f.kind == kind and f.start <= start and f.end >= start + len(value) for f in findings):
                    found_count[kind] += 1
    assert set(planted_count) == {str(k) for k in STRUCTURED}
    for kind, total in planted_count.items():
        assert total >= 100, kind
        assert found_count[kind] / total >= 0.99, (kind, found_count[kind], total)


def test_twelve_digit_numbers_with_a_wrong_check_digit_are_not_my_numbers() -> None:
    rng = random.Random(11)
    redactor = Redactor()
    for _ in range(500):
        wrong = my_number(rng, valid=False)
        for shown in (wrong, _layout(rng, wrong, (4, 4, 4)), wrong.translate(FULL_WIDTH)):
            findings = redactor.find(f"請求番号 {shown} を照合してください (ref {shown}).")
            assert not [f for f in findings if f.kind == PiiKind.MY_NUMBER], shown


def test_the_handwritten_corpus_is_redacted_and_every_finding_is_reported() -> None:
    redactor = Redactor(RedactionPolicy(internal_domains=("corp.example.jp",)))
    for line in (DATA / "redaction_handwritten.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        result = redactor.redact(case["text"])
        reported = {(str(f.kind), f.text) for f in result.findings}
        for kind, values in case["planted"].items():
            for value in values:
                assert (kind, value) in reported, (kind, value, reported)
                assert value not in result.text
        assert len(result.findings) == sum(len(v) for v in case["planted"].values()), reported


def test_internal_users_and_addresses_are_pseudonymised_consistently() -> None:
    policy = RedactionPolicy(internal_users=("tanaka.taro",), internal_networks=("10.0.0.0/8", "fd00::/8"))
    redactor = Redactor(policy)
    text = r"CORP\suzuki logged on from 10.20.30.40 and fd00::1; tanaka.taro then hit 10.20.30.40 and 8.8.8.8"
    result = redactor.redact(text)
    kinds = [str(f.kind) for f in result.findings]
    assert kinds == ["internal_user", "internal_ip", "internal_ip", "internal_user", "internal_ip"]
    ip_tokens = {f.replacement for f in result.findings if f.text == "10.20.30.40"}
    assert len(ip_tokens) == 1 and "8.8.8.8" in result.text and "10.20.30.40" not in result.text


def test_in_an_indicator_pattern_external_iocs_stay_but_numbers_and_internal_ones_go() -> None:
    redactor = Redactor(RedactionPolicy(internal_networks=("192.168.0.0/16",), internal_domains=("corp.example.jp",)))
    pattern = "[email-addr:value = 'phish@evil.example' OR email-addr:value = 'ceo@corp.example.jp']"
    result = redactor.redact(pattern, ioc_field=True)
    assert "phish@evil.example" in result.text and "ceo@corp.example.jp" not in result.text


def test_nothing_but_the_planted_identifiers_is_flagged_in_the_generated_corpus() -> None:
    redactor = Redactor()
    extra: list[tuple[PiiKind, str]] = []
    for text, planted in corpus():
        values = {v for vs in planted.values() for v in vs}
        extra.extend((f.kind, f.text) for f in redactor.find(text) if f.text not in values)
    assert extra == []
