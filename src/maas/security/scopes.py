"""Scopes of an API key, ordered: each one implies those below it (admin > write > read > infer)."""

from __future__ import annotations

from enum import StrEnum

from maas.errors import InvalidArgument


class Scope(StrEnum):
    INFER = "infer"  # inference, model metadata and readiness (and the OpenAI routes)
    READ = "read"  # control API reads
    WRITE = "write"  # imports, aliases, tags, traffic, jobs, repository load/unload
    ADMIN = "admin"  # keys, audit, deletions, encryption

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Scope) -> bool:
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, text: str) -> Scope:
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise InvalidArgument(
                f"unknown scope {str(text)[:40]!r}: expected one of {', '.join(s.value for s in cls)}"
            ) from None


_RANK = {Scope.INFER: 0, Scope.READ: 1, Scope.WRITE: 2, Scope.ADMIN: 3}
