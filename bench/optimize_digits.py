"""Every transform on the digits CNN in one process: size, held-out accuracy and speed, parent vs child.

Run: python bench/optimize_digits.py   (trains the CNN for a few seconds in a temporary registry)
"""

from __future__ import annotations

import tempfile

STUDENT = {"type": "cnn", "channels": [8, 16], "dense": [], "epochs": 15, "train": "sklearn:digits:train"}
RUNS = [
    {"quantize": "static", "calibration": "sklearn:digits:train"},
    {"quantize": "dynamic"},
    {"quantize": "fp16"},
    {"prune": 0.5},
    {"slim": True},
    {"distill": STUDENT},
]


def main() -> None:
    from maas.optimize import optimize
    from maas.registry import Registry
    from maas.testing.digits import publish_digits_cnn

    with tempfile.TemporaryDirectory() as home, Registry.open(home) as reg:
        publish_digits_cnn(reg, "digits", epochs=4)
        print(f"{'transform':28} {'size':>6} {'gzip':>6} {'acc parent':>10} {'acc child':>9} {'drop':>7} "
              f"{'b1 speed-up':>11} {'b32 speed-up':>12}")
        for kwargs in RUNS:
            r = optimize(reg, "digits:1", data="sklearn:digits:test", **kwargs)  # type: ignore[arg-type]
            c, p, ch = r.report["comparison"], r.report["parent"], r.report["child"]
            label = f"{r.report['transform']} {r.report['params'].get('mode', r.report['params'].get('sparsity', ''))}"
            print(f"{label:28} {c['size_ratio']:6.3f} {c['gzip_ratio']:6.3f} {p['accuracy']:10.4f} "
                  f"{ch['accuracy']:9.4f} {c['accuracy_drop']:+7.4f} {c['speedup_b1']:10.2f}x "
                  f"{c['speedup_b32']:11.2f}x")
            if r.report["transform"] == "distill":
                d = r.report["details"]
                print(f"  student {d['student_parameters']} params = {d['parameter_ratio']:.1%} of the teacher's "
                      f"{d['teacher_parameters']}; accuracy {ch['accuracy'] / p['accuracy']:.1%} of the teacher's")


if __name__ == "__main__":
    main()
