"""The keys personal data is encrypted under (AES-GCM) and hashed with for lookups (HMAC).

A value is stored as ``tw1:<key id>:<base64 of nonce and ciphertext>``: the key id names
the key that wrote it, so after a new key is configured the old one (kept among the
previous keys) still reads what it wrote until ``tawasul privacy rotate-key`` has
re-encrypted everything. Lookups (a national ID already known, the second factor) go
through a keyed hash of the normalised value, never the value itself. Files (the
documents and photos beneficiaries send) are sealed the same way: ``tw1f``, the key id,
the nonce and the ciphertext, the file's name bound to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "tw1:"
KEY_BYTES = 32
_NONCE_BYTES = 12
# A sealed file (a document or photo a beneficiary sent) starts with this, then the key
# id (8 characters), the nonce and the ciphertext.
FILE_MAGIC = b"tw1f"
_KEY_ID_BYTES = 8
_FILE_HEADER = len(FILE_MAGIC) + _KEY_ID_BYTES


class PrivacyKeyError(Exception):
    """A key that cannot be used, or data no configured key can read; ``str()`` says
    which in one line, without the key or the data."""


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"tawasul key id\x00" + key).hexdigest()[:8]


def decode_key(text: str) -> bytes:
    """A key as configured: 32 bytes in base64 (standard or URL-safe)."""
    text = text.strip()
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError):
        raise PrivacyKeyError("privacy.key: not base64") from None
    if len(key) != KEY_BYTES:
        raise PrivacyKeyError(
            f"privacy.key: {len(key)} bytes, 32 expected (base64 of 32 random bytes)"
        )
    return key


def new_key_text() -> str:
    """A fresh random key, in base64 as configured."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


class Keyring:
    """The current key (encrypts, hashes) and previous ones (read only, until rotated)."""

    def __init__(self, current: bytes, previous: Iterable[bytes] = ()) -> None:
        self._current_id = _key_id(current)
        self._keys = {_key_id(key): key for key in (*previous, current)}
        self._aead = {key_id: AESGCM(key) for key_id, key in self._keys.items()}

    @classmethod
    def from_text(cls, current: str, previous: Iterable[str] = ()) -> Keyring:
        return cls(decode_key(current), [decode_key(text) for text in previous])

    @classmethod
    def beside(cls, database_path: Path) -> Keyring:
        """The key file next to a SQLite database (``<name>.key``, mode 0600), created with
        a random key the first time; its first line is the current key, others previous."""
        path = key_file_for(database_path)
        if not path.exists():
            _create_key_file(path)
        lines = [line for line in path.read_text(encoding="ascii").split() if line]
        if not lines:
            raise PrivacyKeyError(f"{path.name}: the key file is empty")
        return cls.from_text(lines[0], lines[1:])

    @property
    def current_id(self) -> str:
        return self._current_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def check_value(self, key_id: str) -> str:
        """What the database keeps to recognise a key without holding it."""
        return hmac.new(self._keys[key_id], b"tawasul key check", hashlib.sha256).hexdigest()

    def encrypt(self, plain: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self._current_id].encrypt(nonce, plain.encode(), None)
        return f"{PREFIX}{self._current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str) -> str:
        """The plain text of a stored value; a value without the prefix is read as it is
        (written before encryption, or by hand)."""
        if not stored.startswith(PREFIX):
            return stored
        key_id, _, body = stored[len(PREFIX) :].partition(":")
        aead = self._aead.get(key_id)
        if aead is None:
            raise PrivacyKeyError(f"data encrypted under key {key_id}, which is not configured")
        try:
            raw = base64.b64decode(body)
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise PrivacyKeyError(f"data under key {key_id} does not decrypt: damaged") from None

    def seal(self, plain: bytes, context: bytes = b"") -> bytes:
        """Bytes (a file's content) encrypted under the current key, with a header naming
        it; ``context`` (the file's name) must be given again to open them."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self._current_id].encrypt(nonce, plain, context)
        return FILE_MAGIC + self._current_id.encode() + nonce + sealed

    def open(self, stored: bytes, context: bytes = b"") -> bytes:
        """The plain content of sealed bytes; bytes without the header are read as they
        are (a file kept before encryption)."""
        key_id = sealed_under(stored)
        if key_id is None:
            return stored
        aead = self._aead.get(key_id)
        if aead is None:
            raise PrivacyKeyError(f"file encrypted under key {key_id}, which is not configured")
        body = memoryview(stored)[_FILE_HEADER:]  # no copy of a large file
        try:
            return aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], context)
        except (InvalidTag, ValueError):
            raise PrivacyKeyError(f"file under key {key_id} does not decrypt: damaged") from None

    def lookup_hash(self, value: str, key_id: str | None = None) -> str:
        """The keyed hash a value is looked up by (under the current key by default)."""
        key = self._keys[key_id or self._current_id]
        lookup_key = hmac.new(key, b"tawasul lookup", hashlib.sha256).digest()
        return hmac.new(lookup_key, value.strip().encode(), hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str) -> list[str]:
        """The value's hash under every configured key: rows not yet rotated match too."""
        return [self.lookup_hash(value, key_id) for key_id in self._keys]


def sealed_under(stored: bytes) -> str | None:
    """The id of the key sealed bytes were written under; None for bytes in clear."""
    if not stored.startswith(FILE_MAGIC) or len(stored) < _FILE_HEADER + _NONCE_BYTES:
        return None
    key_id = stored[len(FILE_MAGIC) : _FILE_HEADER]
    return key_id.decode() if all(c in b"0123456789abcdef" for c in key_id) else None


def key_file_for(database_path: Path) -> Path:
    return database_path.with_name(database_path.name + ".key")


def _create_key_file(path: Path) -> None:
    """A new key file, unless another process made one first (then theirs is used)."""
    partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
    write_key_file(partial, [new_key_text()])
    try:
        os.link(partial, path)  # fails when the file exists: never two keys for one database
    except FileExistsError:
        pass
    finally:
        partial.unlink()


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write the key file atomically, readable by its owner only."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write("\n".join(keys) + "\n")
    os.chmod(partial, 0o600)
    os.replace(partial, path)
