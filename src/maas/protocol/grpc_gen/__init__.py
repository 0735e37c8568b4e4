"""Generated from ../inference.proto by scripts/gen_proto.sh; do not edit."""
