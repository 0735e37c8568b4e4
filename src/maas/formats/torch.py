"""PyTorch: live `nn.Module`s, `torch.export` `.pt2` archives and TorchScript files, exported to ONNX with
a dynamic batch. A `.pt2` archive is inspected first: pickled weights or constants, legacy payloads and
sample inputs that the weights-only unpickler rejects would run code inside torch.export.load."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from maas import json_limits
from maas.errors import InvalidArgument
from maas.formats import parity, safety
from maas.formats.publish import Converted

SAMPLE_BATCH = 4  # >1 so torch.export does not specialize the batch dimension to 1


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InvalidArgument("PyTorch models need the torch extra: pip install 'maas[torch]'") from None
    return torch


def is_module(obj: Any) -> bool:
    if not type(obj).__module__.startswith("torch") and "torch" not in {
        c.__module__.split(".")[0] for c in type(obj).__mro__
    }:
        return False
    torch = _torch()
    return isinstance(obj, torch.nn.Module | torch.export.ExportedProgram)


def zip_kind(path: Path) -> str:
    """'pt2', 'torchscript' or 'pickle' for a torch zip archive, from its member names only."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return "unknown"
    tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "archive_format" in tails or any(t.startswith("models/") for t in tails):
        return "pt2"
    if any(t.startswith("code/") for t in tails) and "constants.pkl" in tails:
        return "torchscript"
    if "data.pkl" in tails:
        return "pickle"
    return "unknown"


def check_pt2(path: Path, limit: int) -> None:
    """Refuse the parts of a `.pt2` archive that torch.export.load would unpickle without restriction."""
    infos = safety.check_zip(path, limit)
    torch = _torch()
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            tail = info.filename.split("/", 1)[-1]
            if tail.endswith(".pt") and tail.startswith(("data/weights/", "data/constants/")):
                raise InvalidArgument(
                    f"refusing {path.name}: legacy pickled payload {tail!r}; re-save it with torch 2.6+"
                )
            if tail.endswith("_config.json") and tail.startswith(("data/weights/", "data/constants/")):
                doc = json_limits.loads(zf.read(info), f"{path.name}: {tail}", json_limits.MAX_FILE_DEPTH)
                entries = doc.get("config", {}) if isinstance(doc, dict) else {}
                for fqn, meta in entries.items():
                    pickled = meta.get("use_pickle") or (
                        tail.startswith("data/constants/")
                        and not str(meta.get("path_name", "")).startswith("tensor_")
                    )
                    if pickled:
                        raise InvalidArgument(
                            f"refusing {path.name}: {fqn!r} is stored as a pickle (runs code when loaded)"
                        )
            if tail.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(zf.read(info)), weights_only=True)
                except Exception:
                    raise InvalidArgument(
                        f"refusing {path.name}: its sample inputs need the unrestricted unpickler"
                    ) from None


def load_pt2(path: Path, trust: bool, limit: int) -> Any:
    if trust:
        safety.check_zip(path, limit)
    else:
        check_pt2(path, limit)
    torch = _torch()
    try:
        return torch.export.load(str(path))
    except Exception as exc:
        raise InvalidArgument(
            f"cannot load {path.name} as a torch.export archive: {str(exc)[:200]}"
        ) from None


def load_torchscript(path: Path, limit: int) -> Any:
    safety.check_zip(path, limit)
    torch = _torch()
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise InvalidArgument(
            f"cannot load {path.name} as TorchScript: {str(exc).splitlines()[0][:200]}"
        ) from None


def load_pickled(path: Path) -> Any:
    """Only reached with trust: a whole pickled module saved with torch.save."""
    torch = _torch()
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InvalidArgument(f"cannot load {path.name}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(obj, torch.nn.Module):
        raise InvalidArgument(
            f"{path.name} holds a {type(obj).__name__}, not a model (a state_dict needs its class: "
            "load it in Python and use maas.formats.register)"
        )
    return obj


def _guess_sample(model: Any) -> Any:
    """A sample batch when the first layer tells the input width (Linear); otherwise the caller must say."""
    torch = _torch()
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            return torch.randn(SAMPLE_BATCH, m.in_features, generator=torch.Generator().manual_seed(0))
        if isinstance(m, torch.nn.Sequential | torch.nn.ModuleList) or m is model:
            continue
        break
    raise InvalidArgument("cannot infer the input shape of this PyTorch model; pass sample_input")


def _pt2_sample(ep: Any) -> tuple[Any, ...]:
    """Random inputs shaped like the ExportedProgram's user inputs (dynamic dims take SAMPLE_BATCH)."""
    torch = _torch()
    user = set(ep.graph_signature.user_inputs)
    args = []
    for node in ep.graph.nodes:
        if node.op != "placeholder" or node.name not in user:
            continue
        val = node.meta.get("val")
        if val is None or not hasattr(val, "shape"):
            raise InvalidArgument(f"the archive's input {node.name!r} is not a tensor; pass sample_input")
        shape = [d if isinstance(d, int) else SAMPLE_BATCH for d in val.shape]
        gen = torch.Generator().manual_seed(0)
        if val.dtype.is_floating_point:
            args.append(torch.randn(*shape, generator=gen).to(val.dtype))
        else:
            args.append(torch.randint(0, 5, shape, generator=gen).to(val.dtype))
    return tuple(args)


def _as_tuple(sample: Any) -> tuple[Any, ...]:
    torch = _torch()
    items = (
        list(sample.values())
        if isinstance(sample, dict)
        else sample
        if isinstance(sample, list | tuple)
        else [sample]
    )
    return tuple(t if isinstance(t, torch.Tensor) else torch.from_numpy(np.asarray(t)) for t in items)


def convert(
    obj: Any, work: Path, sample_input: Any, source_format: str, source_file: Path | None = None
) -> Converted:
    """Export with a dynamic dimension 0 on every input: torch.export's exporter for ExportedPrograms and
    plain modules, the tracing exporter for TorchScript (and as a fallback)."""
    torch = _torch()
    exported = isinstance(obj, torch.export.ExportedProgram)
    if sample_input is not None:
        args = _as_tuple(sample_input)
    elif exported:
        args = _pt2_sample(obj)
    elif isinstance(obj, torch.jit.ScriptModule):
        raise InvalidArgument(
            "TorchScript files carry no input shapes; pass sample_input (--sample-input FILE.npy)"
        )
    else:
        args = (_guess_sample(obj),)
    notes: list[str] = []
    runner = obj.module() if exported else obj
    if not exported:
        obj.eval()
    elif sample_input is None and _static_batch(obj):
        obj, note = _relax_batch(torch, obj, runner, args)
        notes.append(note)
    names = [f"input_{i}" if len(args) > 1 else "input" for i in range(len(args))]
    out = work / "torch.onnx"
    _export(torch, obj, args, names, out, exported)
    if source_file is None and not isinstance(obj, torch.jit.ScriptModule):
        source_file = _save_program(torch, obj, args, work / "source.pt2", notes)

    def reference(inputs: dict[str, np.ndarray]) -> list[Any]:
        with torch.no_grad():
            result = runner(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs.values()])
        flat = result if isinstance(result, list | tuple) else [result]
        return [r.detach().cpu().numpy() for r in flat]

    samples = {n: a.detach().cpu().numpy() for n, a in zip(names, args, strict=True)}
    return Converted(
        onnx_path=out,
        source_format=source_format,
        reference=reference,
        sample_factory=lambda sig: {s.name: v for s, v in zip(sig.inputs, samples.values(), strict=False)},
        source_file=source_file,
        atol=parity.ATOL,
        notes=notes,
    )


def _save_program(torch: Any, obj: Any, args: tuple[Any, ...], path: Path, notes: list[str]) -> Path | None:
    """A live module's graph and weights as a `.pt2` source, so structured pruning can rewrite it later;
    best effort: a module torch.export cannot capture is still imported, without a source."""
    try:
        program = obj if isinstance(obj, torch.export.ExportedProgram) else torch.export.export(
            obj, args, dynamic_shapes=tuple({0: torch.export.Dim("batch", min=1)} for _ in args)
        )
        torch.export.save(program, str(path))
    except Exception as exc:  # torch.export raises many types for code it cannot capture
        notes.append(f"no .pt2 source stored: torch.export failed ({type(exc).__name__})")
        return None
    return path


def _static_batch(ep: Any) -> bool:
    """True when every user input of the ExportedProgram has a concrete (not symbolic) dimension 0."""
    user = set(ep.graph_signature.user_inputs)
    shapes = [
        n.meta["val"].shape for n in ep.graph.nodes if n.op == "placeholder" and n.name in user and "val" in n.meta
    ]
    return bool(shapes) and all(len(s) >= 1 and isinstance(s[0], int) for s in shapes)


def _relax_batch(torch: Any, ep: Any, original: Any, args: tuple[Any, ...]) -> tuple[Any, str]:
    """A `.pt2` saved with a fixed batch B: re-export it with a dynamic batch, kept only if the result on
    2B rows equals the original run on each half (so no op depends on B). Otherwise the batch stays B."""
    sizes = {int(a.shape[0]) for a in args}
    if len(sizes) != 1:
        return ep, "the archive's inputs disagree on dimension 0; the batch dimension was left as saved"
    b = sizes.pop()
    gen = torch.Generator().manual_seed(1)
    doubled = tuple(
        torch.randn(2 * b, *a.shape[1:], generator=gen).to(a.dtype)
        if a.dtype.is_floating_point
        else torch.randint(0, 5, (2 * b, *a.shape[1:]), generator=gen).to(a.dtype)
        for a in args
    )
    try:
        relaxed = torch.export.export(
            ep.module(check_guards=False),
            doubled,
            dynamic_shapes=tuple({0: torch.export.Dim("batch", min=1)} for _ in args),
        )
        with torch.no_grad():
            got = relaxed.module()(*doubled)
            halves = [original(*(d[i * b : (i + 1) * b] for d in doubled)) for i in (0, 1)]
        got_list = got if isinstance(got, list | tuple) else [got]
        first, second = (h if isinstance(h, list | tuple) else [h] for h in halves)
        want = [torch.cat(pair) for pair in zip(first, second, strict=True)]
        same = len(got_list) == len(want) and all(
            torch.allclose(g, w, atol=parity.ATOL, rtol=parity.RTOL) for g, w in zip(got_list, want, strict=True)
        )
    except Exception as exc:  # torch.export raises many types when a shape cannot be generalized
        return ep, f"the archive was saved with batch {b} and cannot be re-exported with a dynamic batch " \
            f"({type(exc).__name__}); the batch is fixed at {b}"
    if not same:
        return ep, f"the archive's outputs depend on its saved batch {b}; the batch is fixed at {b}"
    return relaxed, f"the archive was saved with a fixed batch {b}; re-exported with a dynamic batch"


def _export(torch: Any, obj: Any, args: tuple[Any, ...], names: list[str], out: Path, exported: bool) -> None:
    errors = []
    if exported or not isinstance(obj, torch.jit.ScriptModule):
        try:
            if exported:
                torch.onnx.export(
                    obj, args, str(out), dynamo=True, external_data=False, verbose=False, input_names=names
                )
            else:
                batch = torch.export.Dim("batch", min=1)
                dyn = tuple({0: batch} for _ in args)
                torch.onnx.export(
                    obj,
                    args,
                    str(out),
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                    input_names=names,
                    dynamic_shapes=dyn,
                )
            return
        except Exception as exc:
            if exported:
                raise InvalidArgument(
                    f"torch.onnx cannot export the archive: {str(exc).splitlines()[0][:300]}"
                ) from None
            errors.append(exc)
    try:
        torch.onnx.export(
            obj,
            args,
            str(out),
            dynamo=False,
            input_names=names,
            dynamic_axes={n: {0: "batch"} for n in names},
        )
    except Exception as exc:
        first = errors[0] if errors else exc
        raise InvalidArgument(
            f"torch.onnx cannot export the model: {str(first).splitlines()[0][:300]}"
        ) from None
