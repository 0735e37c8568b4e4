"""HTTP `Range` on artifact downloads (RFC 9110 §14), so a large model file can be fetched in parts or resumed.

Only a single `bytes=` range is honoured; a header this module cannot read is ignored (the whole file is sent,
as the RFC allows), and a range that starts past the end is 416 with `Content-Range: bytes */size`.
"""

from __future__ import annotations

from starlette.responses import Response

from maas.numbers import is_ascii_int


def single_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(first, last) inclusive for a satisfiable range; None to send the whole file; "unsatisfiable"."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[len("bytes="):].strip().partition("-")
    if not sep or (first and not is_ascii_int(first)) or (last and not is_ascii_int(last)):
        return None
    if not first:  # a suffix: the last N bytes
        if not last or int(last) == 0:
            return "unsatisfiable"
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, end


def ranged_response(data: bytes, range_header: str | None, headers: dict[str, str]) -> Response:
    """`data` whole (200) or the asked part (206), always saying that ranges are accepted."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    chosen = single_range(range_header, len(data))
    if chosen == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}"})
    if chosen is None:
        return Response(data, media_type="application/octet-stream", headers=headers)
    assert not isinstance(chosen, str)
    first, last = chosen
    return Response(data[first:last + 1], status_code=206, media_type="application/octet-stream",
                    headers={**headers, "Content-Range": f"bytes {first}-{last}/{len(data)}"})
