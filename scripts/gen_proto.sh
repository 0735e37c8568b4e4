#!/usr/bin/env bash
# Regenerates src/maas/protocol/grpc_gen/ from src/maas/protocol/inference.proto. The output is committed,
# so a clean clone needs no build step; run this after editing the .proto (needs grpcio-tools, a dev extra).
#
# The wire needs `package inference`, but tritonclient registers the same symbols (inference.ModelInferRequest,
# ...) in protobuf's process-wide default pool, and both are imported in one process (our tests). So the
# generated module is rewritten to register its file in a private DescriptorPool instead of the default one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
SRC=src/maas/protocol
OUT=$SRC/grpc_gen

mkdir -p "$OUT"
rm -f "$OUT"/inference_pb2.py "$OUT"/inference_pb2.pyi "$OUT"/inference_pb2_grpc.py
"$PYTHON" -m grpc_tools.protoc -I"$SRC" --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  "$SRC/inference.proto"

# A private pool (see above); the pool object is exported for code that needs to resolve descriptors.
"$PYTHON" - "$OUT/inference_pb2.py" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
anchor = "_sym_db = _symbol_database.Default()\n"
if anchor not in text or text.count("_descriptor_pool.Default()") != 1:
    sys.exit("gen_proto.sh: unexpected protoc output; update the rewrite")
text = text.replace(anchor, anchor + "\n# maas: a private pool, so tritonclient's own `inference` protos can live in the same process.\n"
                    "POOL = _descriptor_pool.DescriptorPool()\n")
text = text.replace("_descriptor_pool.Default()", "POOL")
open(path, "w", encoding="utf-8").write(text)
PY
# Package-relative import of the messages from the service module.
sed -i 's/^import inference_pb2 as inference__pb2$/from . import inference_pb2 as inference__pb2/' \
  "$OUT/inference_pb2_grpc.py"
grep -q '^from \. import inference_pb2' "$OUT/inference_pb2_grpc.py"
[ -f "$OUT/__init__.py" ] || printf '"""Generated from ../inference.proto by scripts/gen_proto.sh; do not edit."""\n' \
  > "$OUT/__init__.py"
echo "generated $OUT"
