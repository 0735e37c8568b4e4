"""Turning a growing list of token ids into text deltas: a delta is held back while it ends in an incomplete
UTF-8 character or could be the start of a stop string, and text is cut before a stop string once it appears."""

from __future__ import annotations

from collections.abc import Callable, Sequence


class TextStream:
    def __init__(self, decode: Callable[[Sequence[int]], str], stop: Sequence[str]) -> None:
        self._decode = decode
        self._stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.emitted = ""
        self.stopped = False

    def add(self, token: int) -> str:
        """Append a token; -> the text that is now certain (may be empty). Sets `stopped` on a stop string."""
        self.ids.append(token)
        text = self._decode(self.ids)
        for s in self._stop:
            at = text.find(s, max(0, len(self.emitted) - len(s)))
            if at != -1:
                self.stopped = True
                return self._take(text[:at])
        if text.endswith("\ufffd"):
            return ""
        hold = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        return self._take(text[: len(text) - hold])

    def flush(self) -> str:
        """At the end: whatever was held back (a stop-string prefix that never completed)."""
        if self.stopped:
            return ""
        return self._take(self._decode(self.ids))

    def _take(self, text: str) -> str:
        if not text.startswith(self.emitted) or len(text) <= len(self.emitted):
            return ""
        delta = text[len(self.emitted):]
        self.emitted = text
        return delta
