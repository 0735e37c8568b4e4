"""The envelope cipher: round trips, and every way of tampering with a sealed stream is caught."""

from __future__ import annotations

import io

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from maas.errors import FailedPrecondition, IntegrityError
from maas.security import envelope
from maas.security.envelope import CHUNK, HEADER, TAG
from maas.security.key_provider import KeyRing, key_id

KEK = AESGCM.generate_key(256)
KID = key_id(KEK)


def keys(kid: str) -> bytes:
    if kid != KID:
        raise FailedPrecondition(f"no key {kid}")
    return KEK


def seal(data: bytes) -> bytes:
    return b"".join(envelope.seal([data], KID, KEK))


def unseal(raw: bytes, lookup: envelope.KeyLookup = keys) -> bytes:
    return b"".join(envelope.unseal(io.BytesIO(raw), lookup))


def records(raw: bytes) -> list[bytes]:
    body = raw[HEADER:]
    return [body[i:i + CHUNK + TAG] for i in range(0, len(body), CHUNK + TAG)]


DATA = bytes(range(256)) * (CHUNK // 256 * 3 + 100)  # three full chunks and a partial fourth


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, len(DATA)])
def test_round_trip_at_chunk_edges(size: int) -> None:
    data = DATA[:size]
    raw = seal(data)
    assert unseal(raw) == data
    assert len(raw) == HEADER + len(data) + TAG * max(1, -(-size // CHUNK))


def test_each_blob_gets_a_fresh_data_key_and_id() -> None:
    a, b = seal(b"same"), seal(b"same")
    assert a != b and a[:HEADER] != b[:HEADER]
    assert b"same" not in a


def test_a_flipped_bit_anywhere_is_detected() -> None:
    raw = bytearray(seal(DATA[: CHUNK + 10]))
    for at in (HEADER + 5, HEADER + CHUNK + TAG + 3, len(raw) - 1):
        bad = bytearray(raw)
        bad[at] ^= 0x40
        with pytest.raises(IntegrityError):
            unseal(bytes(bad))


def test_truncation_is_detected_even_at_a_chunk_boundary() -> None:
    raw = seal(DATA)
    for cut in (len(raw) - 1, HEADER + 2 * (CHUNK + TAG), HEADER + CHUNK + TAG, HEADER + 3):
        with pytest.raises(IntegrityError):
            unseal(raw[:cut])


def test_reordered_or_duplicated_chunks_are_detected() -> None:
    raw = seal(DATA)
    r = records(raw)
    with pytest.raises(IntegrityError):
        unseal(raw[:HEADER] + r[1] + r[0] + b"".join(r[2:]))
    with pytest.raises(IntegrityError):
        unseal(raw[:HEADER] + r[0] + r[0] + b"".join(r[2:]))


def test_a_chunk_from_another_blob_is_detected() -> None:
    a, b = seal(DATA), seal(DATA)  # same plaintext, same key: only the blob id tells them apart
    ra, rb = records(a), records(b)
    with pytest.raises(IntegrityError):
        unseal(a[:HEADER] + ra[0] + rb[1] + b"".join(ra[2:]))


def test_wrong_or_missing_key_is_a_clear_error() -> None:
    raw = seal(b"secret")
    other = AESGCM.generate_key(256)

    def wrong(kid: str) -> bytes:
        return other  # a key ring that claims the id but holds another key: the header cannot be trusted

    with pytest.raises(IntegrityError, match="data key"):
        unseal(raw, wrong)

    def missing(kid: str) -> bytes:
        raise FailedPrecondition(f"master key {kid} is not available")

    with pytest.raises(FailedPrecondition, match=KID):
        unseal(raw, missing)


def test_rewrap_changes_only_the_header() -> None:
    raw = seal(DATA[:1000])
    new = AESGCM.generate_key(256)
    head = envelope.rewrap_header(raw[:HEADER], keys, key_id(new), new)
    moved = head + raw[HEADER:]
    assert moved[HEADER:] == raw[HEADER:] and envelope.header_key_id(moved) == key_id(new)
    assert unseal(moved, lambda kid: new) == DATA[:1000]
    with pytest.raises(FailedPrecondition):
        unseal(moved)  # the old key no longer opens it


def test_plaintext_is_not_an_envelope() -> None:
    with pytest.raises(IntegrityError):
        unseal(b"just some plaintext bytes that are long enough to fill a header, and then some more")


def test_key_rings_parse_and_reject_bad_keys() -> None:
    ring = KeyRing.single(KEK)
    assert KeyRing.parse(ring.dumps(), "x").keys == {KID: KEK}
    import base64

    assert KeyRing.parse(base64.b64encode(KEK).decode(), "env").current == KID
    from maas.errors import InvalidArgument

    for bad in ("not base64!", base64.b64encode(b"short").decode(), '{"current": "x", "keys": {}}'):
        with pytest.raises(InvalidArgument):
            KeyRing.parse(bad, "env")


def test_the_name_is_bound_to_the_last_chunk() -> None:
    raw = b"".join(envelope.seal([DATA[:5000]], KID, KEK, lambda: b"name-a"))
    assert b"".join(envelope.unseal(io.BytesIO(raw), keys, b"name-a")) == DATA[:5000]
    with pytest.raises(IntegrityError):
        b"".join(envelope.unseal(io.BytesIO(raw), keys, b"name-b"))
