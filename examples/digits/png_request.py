"""Wraps a PNG in a KServe v2 binary-extension request body: prints the JSON header's length for the
`Inference-Header-Content-Length` header and writes the body to png-request.bin."""

import json
import struct
import sys

png = open(sys.argv[1] if len(sys.argv) > 1 else "digit.png", "rb").read()
tensor = struct.pack("<I", len(png)) + png  # a BYTES element: 4-byte little-endian length, then the bytes
header = json.dumps({
    "inputs": [{"name": "input_layer", "shape": [1], "datatype": "BYTES",
                "parameters": {"binary_data_size": len(tensor)}}],
    "outputs": [{"name": "labels"}, {"name": "topk_scores"}],
}).encode()
open("png-request.bin", "wb").write(header + tensor)
print(len(header))
