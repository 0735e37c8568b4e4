"""Which REST bodies the infer route decodes (and answers it encodes) off the event loop (#19): JSON numbers
when there are many, never a binary tensor, which is read in place."""

from __future__ import annotations

import json

import numpy as np

from maas.protocol import rest_codec
from maas.server.infer_route import OFFLOAD_BYTES, _costly_decode
from maas.serving.contract import InferenceRequest, InferenceResponse, InferTensor, RequestedOutput


def _binary_body(datatype: str, nbytes: int) -> tuple[bytes, str]:
    header = json.dumps({"inputs": [{"name": "x", "shape": [nbytes // 4], "datatype": datatype,
                                     "parameters": {"binary_data_size": nbytes}}]}).encode()
    return header + b"\0" * nbytes, str(len(header))


def test_a_large_json_body_is_decoded_off_the_loop_and_a_small_one_on_it() -> None:
    assert _costly_decode(b"x" * OFFLOAD_BYTES, None)
    assert not _costly_decode(b"x" * (OFFLOAD_BYTES - 1), None)


def test_a_large_binary_tensor_is_decoded_on_the_loop() -> None:
    body, header_len = _binary_body("FP32", 602_112)  # a 3x224x224 image
    assert not _costly_decode(body, header_len)
    assert rest_codec.decode_request(body, "m", None, header_len).inputs[0].data.nbytes == 602_112


def test_large_binary_strings_or_a_large_json_header_go_off_the_loop() -> None:
    body, header_len = _binary_body("BYTES", OFFLOAD_BYTES)
    assert _costly_decode(body, header_len)
    assert _costly_decode(b"x" * (2 * OFFLOAD_BYTES), str(OFFLOAD_BYTES))
    assert _costly_decode(b"x" * OFFLOAD_BYTES, "not a number")  # the decoder refuses it, wherever it runs
    assert _costly_decode(b"x" * OFFLOAD_BYTES, "²")  # not an ASCII number: no int() of it here


def _response(n: int) -> InferenceResponse:
    data = np.zeros(n, np.float32)
    return InferenceResponse("m", "1", [InferTensor("y", "FP32", (n,), data)])


def test_only_outputs_written_as_json_count_as_costly_to_encode() -> None:
    big = _response(OFFLOAD_BYTES)  # 4 bytes per element
    as_json = InferenceRequest(model_name="m", model_version=None, inputs=[])
    assert rest_codec.json_output_bytes(big, as_json) == 4 * OFFLOAD_BYTES
    binary = InferenceRequest(model_name="m", model_version=None, inputs=[],
                              outputs=[RequestedOutput("y", {"binary_data": True})])
    assert rest_codec.json_output_bytes(big, binary) == 0
    everything_binary = InferenceRequest(model_name="m", model_version=None, inputs=[],
                                         parameters={"binary_data_output": True})
    assert rest_codec.json_output_bytes(big, everything_binary) == 0
