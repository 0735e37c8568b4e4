"""atheris target: the REST infer body codec (JSON, and JSON header + binary tensors) and the raw tensor
parser. Any exception other than the codec's own InvalidArgument is a finding. Run by
tests/unit/protocol/test_auth_fuzz_codec.py for a bounded time; by hand: `python rest_body_target.py -runs=N`."""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["maas"]):
    from maas.errors import InvalidArgument
    from maas.protocol import raw_tensor, rest_codec

DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
             "FP64", "BYTES", "BF16", "fp32", ""]


def structured(fdp: atheris.FuzzedDataProvider) -> tuple[bytes, str | None]:
    """A body that looks like a real request, so the fuzzer gets past the JSON parser quickly."""
    inputs = []
    for i in range(fdp.ConsumeIntInRange(0, 3)):
        shape = [fdp.ConsumeIntInRange(-2, 6) for _ in range(fdp.ConsumeIntInRange(0, 3))]
        item: dict[str, object] = {"name": f"x{i}", "datatype": fdp.PickValueInList(DATATYPES), "shape": shape}
        choice = fdp.ConsumeIntInRange(0, 3)
        if choice == 0:
            item["data"] = [fdp.ConsumeFloat() for _ in range(fdp.ConsumeIntInRange(0, 8))]
        elif choice == 1:
            item["data"] = [fdp.ConsumeInt(8) for _ in range(fdp.ConsumeIntInRange(0, 8))]
        elif choice == 2:
            item["parameters"] = {"binary_data_size": fdp.ConsumeIntInRange(-1, 64)}
        inputs.append(item)
    doc = {"inputs": inputs, "outputs": [{"name": "y", "parameters": {"binary_data": fdp.ConsumeBool()}}]}
    head = json.dumps(doc).encode()  # NaN and Infinity literals included: the codec must refuse them
    tail = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256))
    return head + tail, str(len(head)) if tail or fdp.ConsumeBool() else None


def test_one(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    try:
        if mode == 0:
            header = fdp.ConsumeUnicodeNoSurrogates(6) if fdp.ConsumeBool() else None
            rest_codec.decode_request(fdp.ConsumeBytes(fdp.remaining_bytes()), "m", None, header)
        elif mode == 1:
            body, header = structured(fdp)
            rest_codec.decode_request(body, "m", "1", header)
        else:
            datatype = fdp.PickValueInList(DATATYPES)
            shape = tuple(fdp.ConsumeIntInRange(0, 1 << 20) for _ in range(fdp.ConsumeIntInRange(0, 4)))
            raw_tensor.decode_raw(fdp.ConsumeBytes(fdp.remaining_bytes()), datatype, shape, "x")
    except InvalidArgument:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
