"""Job parameters and results kept sealed with the artifacts' envelope when the home is encrypted.

A sealed record is stored as `{"maas.sealed/v1": base64(envelope)}` in place of the JSON object; records
written before encryption was enabled are read as they are.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from maas.security import envelope
from maas.security.key_provider import KeyProvider

FIELD = "maas.sealed/v1"


class RecordSealer:
    def __init__(self, keys: KeyProvider | None) -> None:
        self.keys = keys

    def seal(self, record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None or self.keys is None:
            return record
        kid, kek = self.keys.current()
        sealed = b"".join(envelope.seal([json.dumps(record).encode()], kid, kek))
        return {FIELD: base64.b64encode(sealed).decode("ascii")}

    def open(self, stored: dict[str, Any] | None) -> dict[str, Any] | None:
        if not (isinstance(stored, dict) and set(stored) == {FIELD}):
            return stored
        if self.keys is None:
            from maas.errors import FailedPrecondition

            raise FailedPrecondition("this job record is encrypted but encryption is off in this home")
        raw = base64.b64decode(stored[FIELD])
        plain = b"".join(envelope.unseal(io.BytesIO(raw), self.keys.lookup))
        record: dict[str, Any] = json.loads(plain)
        return record
