"""Writes request.json: one row of the breast cancer features as a KServe v2 JSON request."""

import json
import sys

from sklearn.datasets import load_breast_cancer

row = int(sys.argv[1]) if len(sys.argv) > 1 else 0
data = load_breast_cancer()
features = [round(float(v), 6) for v in data.data[row]]
request = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, len(features)], "data": features}]}
with open("request.json", "w") as f:
    json.dump(request, f)
print(f"wrote request.json (row {row}, a {data.target_names[data.target[row]]} tumour)")
