"""Cold load of a ~100 MB model from an encrypted home vs a plaintext one (target: encrypted ≤ +20%).

Each sample is a fresh process (nothing cached in it) that opens the registry, reads and verifies the model
(decrypting it when the home is encrypted), builds the onnxruntime session from the bytes, as `maas serve`
does, and answers one inference. Samples of the kinds alternate, so drift in the machine hits both alike.

    .venv/bin/python bench/cold_load.py              # ~100 MB, 7 samples each
    .venv/bin/python bench/cold_load.py --mb 200 --samples 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    import onnxruntime as ort
    from maas.registry import Registry
    from maas.serving.runtime import OnnxRuntime
    t_import = time.perf_counter()
    with Registry.open(sys.argv[1]) as reg:
        v = reg.get("big")
        t_open = time.perf_counter()
        data = reg.read_artifact(v)
        t_read = time.perf_counter()
        rt = OnnxRuntime(data, intra_op_threads=1)
        del data
        t_session = time.perf_counter()
        out = rt.run({"x": np.ones((1, rt.inputs[0].shape[1]), dtype=np.float32)})
        t_first = time.perf_counter()
    assert out["y"].shape[0] == 1
    print(json.dumps({"read_verify_s": t_read - t_open, "session_s": t_session - t_read,
                      "first_infer_s": t_first - t_session, "load_s": t_first - t_open,
                      "imports_s": t_import - t0, "encrypted": reg.encrypted}))
    """
)


def big_model(mb: int) -> bytes:
    import numpy as np
    from onnx import TensorProto, helper

    n = int((mb * 1024 * 1024 / 4) ** 0.5)
    w = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor("W", TensorProto.FLOAT, [n, n], w.tobytes(), raw=True)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def make_home(root: Path, encrypted: bool, model: bytes) -> Path:
    sys.path.insert(0, str(SRC))
    from maas.registry import Registry

    home = root / ("encrypted" if encrypted else "plaintext")
    home.mkdir()
    if not encrypted:  # a home as made before encryption existed
        (home / "encryption.json").write_text(json.dumps({"encrypted": False}))
    with Registry.open(home) as reg:
        assert reg.encrypted == encrypted
        reg.publish("big", {"model.onnx": model})
    return home


def sample(home: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(home)], env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="model size in MiB (one FP32 matrix)")
    parser.add_argument("--samples", type=int, default=7, help="fresh-process loads per kind")
    args = parser.parse_args()
    model = big_model(args.mb)
    with tempfile.TemporaryDirectory(prefix="maas-cold-load-") as tmp:
        homes = {"plaintext": make_home(Path(tmp), False, model), "encrypted": make_home(Path(tmp), True, model)}
        for home in homes.values():
            sample(home)  # warm the page cache and the interpreter's own files once
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in homes}
        for _ in range(args.samples):
            for kind, home in homes.items():
                runs[kind].append(sample(home))
    print(f"model: {len(model) / 2**20:.1f} MiB, {args.samples} fresh-process loads each (median)\n")
    print("| home | load (read+verify, session, first infer) | read+verify | session | first infer |")
    print("|---|---|---|---|---|")
    med: dict[str, dict[str, float]] = {}
    for kind, samples in runs.items():
        med[kind] = {k: statistics.median(s[k] for s in samples) for k in samples[0] if k != "encrypted"}
        m = med[kind]
        print(f"| {kind} | {m['load_s'] * 1e3:.0f} ms | {m['read_verify_s'] * 1e3:.0f} ms | "
              f"{m['session_s'] * 1e3:.0f} ms | {m['first_infer_s'] * 1e3:.1f} ms |")
    ratio = med["encrypted"]["load_s"] / med["plaintext"]["load_s"]
    print(f"\nencrypted / plaintext cold load: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%; target ≤ +20%)")


if __name__ == "__main__":
    main()
