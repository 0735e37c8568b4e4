"""`maas import` and `maas export`: parse flags, call maas.formats, print the result; no logic here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maas.cli.context import console, handle_errors, print_json, progress, state
from maas.errors import InvalidArgument

FORMAT_HELP = (
    "auto|onnx|keras|torch|torchscript|sklearn|skops; tflite|savedmodel need the tensorflow extra. "
    "A .zip/.tar.gz holding one .onnx and its data is a bundle. Language models: a Hugging Face directory "
    "(config.json, safetensors, tokenizer) or a .gguf file, stored as safetensors"
)


def register(app: typer.Typer) -> None:
    app.command("import")(import_model)
    app.command("export")(export_model)


@handle_errors
def import_model(
    path: Annotated[Path, typer.Argument(
        help="Model file, a directory holding one .onnx and its data, or a Hugging Face directory")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name")],
    format: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "auto",
    description: Annotated[str, typer.Option(help="Version description")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE, repeatable")] = None,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Alias to point here, repeatable")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Text file with one class label per line")] = None,
    trust: Annotated[bool, typer.Option(help="Allow pickle-based files, which run code when loaded")] = False,
    allow_mismatch: Annotated[bool, typer.Option(help="Publish even if ONNX outputs differ")] = False,
    max_batch_size: Annotated[int | None, typer.Option(help="Largest batch the server may form")] = None,
    sample_input: Annotated[Path | None, typer.Option(help=".npy file of sample inputs for parity")] = None,
    preprocess: Annotated[str | None, typer.Option(
        help='Pre-processing steps as JSON, e.g. \'[{"op": "decode_image", "mode": "L"}, {"op": "scale", '
             '"factor": 0.0039}]\' (overrides maas.yaml)')] = None,
    postprocess: Annotated[str | None, typer.Option(
        help='Post-processing steps as JSON, e.g. \'[{"op": "softmax"}, {"op": "topk", "k": 3}, '
             '{"op": "labels"}]\' (overrides maas.yaml)')] = None,
    runtime: Annotated[str | None, typer.Option(
        help="Language models: transformers | onnxruntime-genai (also publishes a converted next version). "
             "Default: the faster for the kind as measured (transformers for both kinds)")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the version record as JSON")] = False,
    server: Annotated[str | None, typer.Option(
        help="Import on this maas server (URL) instead of the local home: the file goes up over the resumable "
             "upload protocol and resumes after a broken connection (key from MAAS_API_KEY)")] = None,
) -> None:
    """Convert a model to ONNX, check it against the original, and publish it as a new version."""
    from maas.formats import ImportOptions, import_file
    from maas.types import parse_tag

    if server is not None:
        if sample_input is not None or preprocess is not None or postprocess is not None:
            raise InvalidArgument("--sample-input, --preprocess and --postprocess work on local imports only")
        return _import_remote(server, path, name, json, {
            "format": format, "description": description, "tag": "\n".join(tag or []),
            "alias": "\n".join(alias or []), "trust": "true" if trust else "",
            "allow_mismatch": "true" if allow_mismatch else "",
            "max_batch_size": str(max_batch_size) if max_batch_size is not None else "",
            "runtime": runtime or "",
            "labels": _labels_json(labels) if labels is not None else "",
        })

    sample = None
    if sample_input is not None:
        import numpy as np

        try:
            sample = np.load(sample_input, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # numpy's message would suggest allow_pickle
            raise InvalidArgument(f"--sample-input {sample_input.name}: not a readable .npy file") from None
    tags = dict(parse_tag(t) for t in tag or [])
    with progress(f"importing {path.name}"):
        version = import_file(state.registry(), path, name=name, options=ImportOptions(
            format=format,
            description=description,
            tags=tags,
            aliases=tuple(alias or ()),
            labels=labels,
            trust=trust,
            allow_mismatch=allow_mismatch,
            sample_input=sample,
            max_batch_size=max_batch_size,
            preprocess=_steps(preprocess, "--preprocess"),
            postprocess=_steps(postprocess, "--postprocess"),
            runtime=runtime,
        ))
    if json:
        print_json(version.to_dict())
    else:
        console.print(version.ref, markup=False, highlight=False)


@handle_errors
def export_model(
    ref: Annotated[str, typer.Argument(help="name, name:VERSION or name@ALIAS")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file")],
    format: Annotated[str, typer.Option("--format", "-f", help="onnx|tflite (tflite: tensorflow extra)")] = "onnx",
) -> None:
    """Write a stored version's model to a file."""
    from maas.formats import export

    written = export(state.registry(), ref, format, out)
    console.print(str(written), markup=False, highlight=False)


def _import_remote(server: str, path: Path, name: str, as_json: bool, fields: dict[str, str]) -> None:
    """`maas import --server`: the SDK's resumable upload, then the server's import of it."""
    from maas.client import Client

    if not path.is_file():
        raise InvalidArgument(f"{path.name} is not a file: pack a directory as .tar.gz to import it on a server")
    with progress(f"uploading {path.name}"), Client(server) as client:
        version = client.upload_resumable(path, name=name, fields={k: v for k, v in fields.items() if v})
    if as_json:
        print_json(version)
    else:
        console.print(f"{version['model']}:{version['version']}", markup=False, highlight=False)


def _labels_json(path: Path) -> str:
    import json as json_lib

    return json_lib.dumps(path.read_text("utf-8").splitlines())


def _steps(text: str | None, flag: str) -> list[object] | None:
    """A JSON list of steps from the command line (validated by the importer, as maas.yaml's are)."""
    if text is None:
        return None
    import json as json_lib

    from maas.errors import InvalidArgument

    try:
        steps = json_lib.loads(text)
    except json_lib.JSONDecodeError as exc:
        raise InvalidArgument(f"{flag} is not JSON: {exc}") from None
    if not isinstance(steps, list):
        raise InvalidArgument(f"{flag} must be a JSON list of steps")
    return steps
