"""The NIST SP 800-63B password policy: length, and no common or derivable passwords."""

from __future__ import annotations

import pytest

from strongroom.security.passwords import PasswordPolicyError, check_password


@pytest.mark.parametrize("password", [
    "short-but-ok",  # under 15 characters
    "passwordpasswordpassword", "Password123!!!!!!", "qwertyqwertyqwerty", "aaaaaaaaaaaaaaaaaaaa",
    "0123456789012345", "9876543210987654", "qwertyuiopasdfgh", "asdfghjklzxcvbnm", "1qaz2wsx3edc4rfv",
    "abcdefghijklmnop", "strongroom2026!!", "x" * 1025,
])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(PasswordPolicyError) as caught:
        check_password(password)
    assert password not in str(caught.value)


def test_the_user_name_does_not_make_a_password() -> None:
    with pytest.raises(PasswordPolicyError):
        check_password("analyst-zhang-2026", user="analyst-zhang")


@pytest.mark.parametrize("password", ["correct horse battery staple", "浦东新区的一个很长的口令短语啊", "Tr0ub4dor&3-is-not-it"])
def test_passphrases_are_accepted_without_composition_rules(password: str) -> None:
    check_password(password, user="someone")
