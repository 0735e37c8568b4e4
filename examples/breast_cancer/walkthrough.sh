#!/usr/bin/env bash
# The breast cancer walk-through: train with a search, inspect the version, serve it, ask it about one patient.
# Run it from this folder with the maas virtual environment active; MAAS_HOME, MAAS_HTTP_PORT and
# MAAS_GRPC_PORT choose where the registry lives and which ports the server takes (default 8000/8001).
set -euo pipefail
HTTP="127.0.0.1:${MAAS_HTTP_PORT:-8000}"

# 1. Train gradient boosting with an 8-trial Optuna search scored by 5-fold CV; registered as breast-cancer:1.
maas train train.yaml

# 2. The version's whole record: signature, labels, test metrics, CV score, the search, the config it came from.
maas versions show breast-cancer:1

# 3. Serve (REST on :8000, gRPC on :8001) and wait until it is ready.
maas serve & SERVER=$!
trap 'kill $SERVER; wait $SERVER' EXIT
until curl -sf "http://$HTTP/v2/health/ready" >/dev/null; do sleep 0.5; done

# 4. A JSON request with one row of the 30 features…
python request.py 0
curl -sf -X POST "http://$HTTP/v2/models/breast-cancer/infer" -H 'Content-Type: application/json' \
  -d @request.json -o response.json
cat response.json
echo

# 5. …and the answer: the predicted class and the probability of each class.
python answer.py
