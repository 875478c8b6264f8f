"""Password policy (NIST SP 800-63B): length, not composition rules, and no easily guessed passwords.

A new password must have at least 15 characters and must not be a common or derivable one: a
known breached or default password (even lengthened by repetition), a single repeated character or
short repeated pattern, a keyboard walk or a sequence, or the user's own name or the product's.
"""

from __future__ import annotations

import unicodedata

MIN_LENGTH = 15
MAX_LENGTH = 1024  # Bounds the argon2 input; far beyond any passphrase.

# The most common passwords of breach corpora and default credentials (lowercase). A long password
# built from one of them by repetition or a few added characters is refused too.
COMMON = frozenset("""
123456 123456789 12345678 12345 1234567 1234567890 password qwerty abc123 111111 123123 admin letmein
welcome monkey dragon football iloveyou 000000 sunshine princess 1q2w3e4r qwertyuiop passw0rd master
shadow baseball superman trustno1 hello michael jesus ninja mustang access batman login starwars
whatever freedom zaq12wsx qazwsx changeme default secret root toor elastic kibana opensearch strongroom
administrator guest test testing pass pa55word p@ssw0rd p@ssword qwerty123 password1 password123
welcome1 admin123 root123 abcd1234 aaaaaa asdfgh asdfghjkl zxcvbnm 654321 987654321 666666 888888
121212 112233 159753 147258369 5201314 woaini 1314520 woaini1314 aini1314 qq123456 wang1234
""".split())

KEYBOARD_ROWS = ("`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./",
                 "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/", "qazwsxedcrfvtgbyhnujmikolp",
                 "1234567890qwertyuiopasdfghjklzxcvbnm")  # the letter rows read one after another
ALPHABETS = ("abcdefghijklmnopqrstuvwxyz", "0123456789")


class PasswordPolicyError(ValueError):
    pass


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password).casefold()


def _repeated_unit(text: str) -> str:
    """The shortest string whose repetition (possibly cut short) makes `text`."""
    for size in range(1, len(text) // 2 + 1):
        unit = text[:size]
        if (unit * (len(text) // size + 1))[:len(text)] == text:
            return unit
    return text


def _walk(text: str) -> bool:
    """A run along a keyboard row or an alphabet, forwards or backwards (allowing wrap-around)."""
    for line in KEYBOARD_ROWS + ALPHABETS:
        for source in (line, line[::-1]):
            doubled = source * 4
            if text in doubled:
                return True
    return False


def check_password(password: str, *, user: str | None = None) -> None:
    """Raises PasswordPolicyError (with a message that never repeats the password) or returns."""
    if not isinstance(password, str):
        raise PasswordPolicyError("the password must be a string")
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"passwords must be at least [{MIN_LENGTH}] characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"passwords must be at most [{MAX_LENGTH}] characters long")
    text = _normalize(password)
    unit = _repeated_unit(text)
    if len(unit) <= 4:
        raise PasswordPolicyError("the password is a short pattern repeated; choose a passphrase")
    if unit in COMMON or _walk(unit) or _walk(text):
        raise PasswordPolicyError("the password is too common or too easy to guess")
    stripped = text.strip("0123456789!@#$%^&*.-_ ")
    if stripped in COMMON or _repeated_unit(stripped) in COMMON:
        raise PasswordPolicyError("the password is too common or too easy to guess")
    for word in filter(None, (user, "strongroom", "elasticsearch", "password")):
        base = _normalize(word)
        if len(base) >= 4 and base in text and len(text) - len(base) < 8:
            raise PasswordPolicyError("the password is too close to the user name or the product name")
