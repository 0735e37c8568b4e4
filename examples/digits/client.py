"""The same digit through Triton's own Python clients, over HTTP and gRPC, as a tensor and as a PNG."""

import os

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

http_url = f"127.0.0.1:{os.environ.get('MAAS_HTTP_PORT', '8000')}"
grpc_url = f"127.0.0.1:{os.environ.get('MAAS_GRPC_PORT', '8001')}"
digit = np.load("digits28-test.npz")["x"][:1]  # FP32 [1, 28, 28, 1]

with httpclient.InferenceServerClient(http_url) as client:
    inp = httpclient.InferInput("input_layer", list(digit.shape), "FP32")
    inp.set_data_from_numpy(digit, binary_data=True)
    result = client.infer("digits", [inp], outputs=[httpclient.InferRequestedOutput("labels")])
    print("http tensor:", [b.decode() for b in result.as_numpy("labels")[0]])

client = grpcclient.InferenceServerClient(grpc_url)
png = np.array([open("digit.png", "rb").read()], dtype=np.object_)
inp = grpcclient.InferInput("input_layer", [1], "BYTES")
inp.set_data_from_numpy(png)
result = client.infer("digits", [inp], outputs=[grpcclient.InferRequestedOutput("labels")])
print("grpc png:   ", [b.decode() for b in result.as_numpy("labels")[0]])
client.close()
