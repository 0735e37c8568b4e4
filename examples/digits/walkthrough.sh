#!/usr/bin/env bash
# The digits walk-through, step by step (README.md in this folder shows each step's output).
# Run it from this folder with the maas virtual environment active; MAAS_HOME, MAAS_HTTP_PORT and
# MAAS_GRPC_PORT choose where the registry lives and which ports the server takes (default 8000/8001).
set -euo pipefail
HTTP="127.0.0.1:${MAAS_HTTP_PORT:-8000}"

# 1. Train the tutorial's Keras CNN and save it as digits.h5 (plus test data, a JSON request and a PNG).
python train_keras.py

# 2. Import it: converted to ONNX, checked against Keras on sample inputs, registered as digits:1.
maas import digits.h5 --name digits

# 3. Evaluate it on held-out digits, through the same runtime the server uses.
maas eval digits:1 --data digits28-test.npz

# 4. Quantize to int8 (a new version, digits:2, whose lineage names digits:1), refusing any accuracy loss
#    above one point, and compare the two.
maas optimize digits:1 --quantize static --calibration digits28-calibration.npz \
  --data digits28-test.npz --max-accuracy-drop 0.01
maas compare digits:1 digits:2 --data digits28-test.npz

# 5. Point production at the version you want served by default.
maas alias set digits production 2

# 6. Serve (REST on :8000, gRPC on :8001) and wait until it is ready.
maas serve & SERVER=$!
trap 'kill $SERVER; wait $SERVER' EXIT
until curl -sf "http://$HTTP/v2/health/ready" >/dev/null; do sleep 0.5; done

# 7. A JSON request with the digit as a tensor…
curl -s -X POST "http://$HTTP/v2/models/digits/infer" -H 'Content-Type: application/json' -d @request.json
echo

# 8. …and the same digit as a PNG (binary tensor extension: JSON header, then the raw BYTES tensor).
LEN=$(python png_request.py digit.png)
curl -s -X POST "http://$HTTP/v2/models/digits/infer" -H 'Content-Type: application/octet-stream' \
  -H "Inference-Header-Content-Length: $LEN" --data-binary @png-request.bin
echo

# 9. Triton's own clients, over HTTP and gRPC.
python client.py
