"""The key-encryption key of this test session.

The keyring schema is one per database, and it remembers the first
key-encryption key it was used with, so every test of a session seals with
this one. Each session makes its own: nothing here is a secret to keep.
"""

from __future__ import annotations

from mastery_events.keyring import new_key_encryption_key

KEY_ENCRYPTION_KEY = new_key_encryption_key()
