"""Check digits of structured personal identifiers: My Number (個人番号) and payment cards (Luhn).

A check digit is what separates a real identifier from any 12- or 16-digit number (an order id, a
timestamp), so redaction flags only numbers that pass it.
"""

from __future__ import annotations


def my_number_check_digit(first_eleven: str) -> int:
    """The check digit of a My Number from its first 11 digits (Cabinet Office ordinance, art. 5).

    With P(n) the n-th digit counted from the right of the 11 and Q(n) = n + 1 for n <= 6 and n - 5
    for n >= 7, the remainder r of sum(P(n) * Q(n)) by 11 gives 0 when r <= 1, else 11 - r.
    """
    if len(first_eleven) != 11 or not first_eleven.isdigit():
        raise ValueError("a My Number check digit needs exactly 11 digits")
    total = 0
    for n, char in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(char) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_my_number(digits: str) -> bool:
    """Tell whether 12 digits form a valid My Number (the last digit is the right check digit)."""
    return len(digits) == 12 and digits.isdigit() and my_number_check_digit(digits[:11]) == int(digits[11])


def luhn_valid(digits: str) -> bool:
    """Tell whether a digit string passes the Luhn check used by payment card numbers."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


_CARD_PREFIXES = ("4", "5", "2", "34", "37", "35", "36", "30", "38", "39", "6")


def is_card_number(digits: str) -> bool:
    """Tell whether digits look like a payment card: 13-19 digits, a known brand prefix, Luhn-valid."""
    return 13 <= len(digits) <= 19 and digits.startswith(_CARD_PREFIXES) and luhn_valid(digits)
