"""Encryption of provider API keys at rest.

Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under MultiFernet: the first master
key encrypts, every listed key decrypts. Rotating the master key without downtime:
prepend a new key and roll the registry (old rows still decrypt), run
`synthtasks-provider-registry rotate-master-key` (re-encrypts every row with the new
key), then drop the old key from the list."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class KeyUnreadable(Exception):
    """Raised when a stored key decrypts with none of the configured master keys."""


class KeyVault:
    def __init__(self, master_keys: str) -> None:
        keys = [k.strip() for k in master_keys.split(",") if k.strip()]
        if not keys:
            raise ValueError("SYNTHTASKS_REGISTRY_MASTER_KEYS must hold at least one Fernet key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise ValueError("SYNTHTASKS_REGISTRY_MASTER_KEYS holds a malformed Fernet key") from None

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise KeyUnreadable("a stored API key cannot be decrypted with the configured master keys") from None

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext encrypted under the primary (first) key."""
        return self._fernet.rotate(bytes(token))


def key_hint(api_key: str) -> str:
    """Enough to recognise a key, never enough to use it: `sk-…9f2c`."""
    if not api_key:
        return ""
    if len(api_key) < 12:
        return "…" + api_key[-2:]
    prefix = api_key[:3]
    return f"{prefix}…{api_key[-4:]}"
