"""storage.keyring refuses what it cannot use, in one line that names neither the key
nor the data: a key that is not base64, an empty key file, values and files written
under a key that is not configured, and damaged ones."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from storage.keyring import Keyring, PrivacyKeyError, decode_key, key_file_for


def keyring() -> Keyring:
    return Keyring(os.urandom(32))


def test_a_key_that_is_not_base64_is_refused() -> None:
    with pytest.raises(PrivacyKeyError, match="not base64"):
        decode_key("a")  # one character more than a multiple of four: no padding fits


def test_an_empty_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    database = tmp_path / "tawasul.db"
    key_file_for(database).write_text("\n  \n", encoding="ascii")
    with pytest.raises(PrivacyKeyError, match="the key file is empty"):
        Keyring.beside(database)
    assert key_file_for(database).read_text(encoding="ascii").strip() == ""


def test_a_value_under_a_key_not_configured_is_refused_without_the_data() -> None:
    stored = keyring().encrypt("فاطمة أحمد")
    with pytest.raises(PrivacyKeyError, match="not configured") as refused:
        keyring().decrypt(stored)
    assert stored.split(":")[2] not in str(refused.value)


def test_a_damaged_value_is_refused() -> None:
    keys = keyring()
    prefix, key_id, body = keys.encrypt("1012345678").split(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    damaged = f"{prefix}:{key_id}:{base64.b64encode(bytes(raw)).decode()}"
    with pytest.raises(PrivacyKeyError, match="damaged"):
        keys.decrypt(damaged)
    with pytest.raises(PrivacyKeyError, match="damaged"):
        keys.decrypt(f"{prefix}:{key_id}:@@")  # not base64 at all


def test_a_sealed_file_under_another_key_or_damaged_is_refused() -> None:
    keys = keyring()
    sealed = keys.seal(b"%PDF a lease", b"lease.pdf")
    assert keys.open(sealed, b"lease.pdf") == b"%PDF a lease"
    with pytest.raises(PrivacyKeyError, match="not configured"):
        keyring().open(sealed, b"lease.pdf")
    with pytest.raises(PrivacyKeyError, match="damaged"):
        keys.open(sealed, b"another name.pdf")  # the name is bound to the content
