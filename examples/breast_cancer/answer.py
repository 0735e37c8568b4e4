"""Reads a KServe v2 response (response.json) and prints the predicted class and its probabilities by name."""

import json
from pathlib import Path

from sklearn.datasets import load_breast_cancer

names = [str(n) for n in load_breast_cancer().target_names]  # the version's labels, in class-index order
outputs = {o["name"]: o["data"] for o in json.loads(Path("response.json").read_text())["outputs"]}
probs = outputs["probabilities"]
print(f"predicted: {names[outputs['label'][0]]}  probabilities: "
      + ", ".join(f"{n} {p:.3f}" for n, p in zip(names, probs, strict=True)))
