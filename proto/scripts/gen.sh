#!/usr/bin/env bash
# Regenerates the TypeScript for every .proto under shoal/ with protoc + ts-proto.
#
# Usage: gen.sh [output-dir]    (default: <proto package>/src/gen; works from any cwd)
#
# Environment: PROTOC (default: protoc on PATH), PROTOC_INCLUDE (where google/protobuf/*.proto
# live; default /usr/include).
set -euo pipefail

proto_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_root="$(cd "$proto_root/.." && pwd)"
out_dir="${1:-$proto_root/src/gen}"
protoc_bin="${PROTOC:-protoc}"
protoc_include="${PROTOC_INCLUDE:-/usr/include}"
plugin="$repo_root/node_modules/.bin/protoc-gen-ts_proto"

if [[ ! -x "$plugin" ]]; then
  echo "gen.sh: ts-proto plugin not found at $plugin (run npm install at the repository root)" >&2
  exit 1
fi

# ts-proto options. The first seven are the project's baseline (grpc-js services, NodeNext-style
# .js imports, bigint for every 64-bit integer so nothing above 2^53 is rounded, Date for
# Timestamp). removeEnumPrefix=true is added so TypeScript reads TaskState.RUNNING, as swarmkit
# does, while the .proto files keep the prefixed value names protobuf style requires and JSON
# keeps the canonical prefixed names. exportCommonSymbols=false keeps each module's helper types
# (MessageFns, DeepPartial, protobufPackage) private, so src/index.ts can `export *` every module
# without the duplicate names clashing.
options=(
  outputServices=grpc-js
  esModuleInterop=true
  importSuffix=.js
  env=node
  forceLong=bigint
  useDate=true
  useExactTypes=false
  removeEnumPrefix=true
  exportCommonSymbols=false
)

# The protoc argument order (and so the output) must not depend on the caller's locale.
export LC_ALL=C
cd "$proto_root"
proto_files=(shoal/v1/*.proto)

mkdir -p "$out_dir"
# Clear what a previous run produced, so a deleted .proto leaves no stale module behind.
find "$out_dir" -type f -name '*.ts' -delete

"$protoc_bin" \
  --plugin=protoc-gen-ts_proto="$plugin" \
  --ts_proto_out="$out_dir" \
  --ts_proto_opt="$(IFS=,; echo "${options[*]}")" \
  -I "$proto_root" \
  -I "$protoc_include" \
  "${proto_files[@]}"
