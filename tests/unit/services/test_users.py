"""The unknown-user path of a login costs what a known user's does."""

from __future__ import annotations

from argon2 import PasswordHasher

from casescope.services import users


def test_the_unknown_user_hash_has_the_parameters_of_real_hashes() -> None:
    hasher = PasswordHasher()
    assert not hasher.check_needs_rehash(users._DUMMY_HASH)
    assert not users.password_matches(users._DUMMY_HASH, "a password someone typed")
    assert hasher.verify(users._DUMMY_HASH, "casescope-no-such-user")
