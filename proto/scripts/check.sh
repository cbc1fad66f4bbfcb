#!/usr/bin/env bash
# Fails if the committed generated code differs from what the .proto files generate now.
#
# Usage: check.sh [generated-dir]    (default: <proto package>/src/gen; works from any cwd)
set -euo pipefail

proto_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
committed_dir="${1:-$proto_root/src/gen}"
fresh_dir="$(mktemp -d)"
trap 'rm -rf "$fresh_dir"' EXIT

bash "$proto_root/scripts/gen.sh" "$fresh_dir"

if ! differences="$(diff -rq "$committed_dir" "$fresh_dir" 2>&1)"; then
  {
    echo "proto:check failed: the generated code in $committed_dir is out of date with the .proto files."
    echo "Differences:"
    # Name the files relative to the compared directories, not the throwaway temp dir.
    echo "$differences" | sed -e "s|$fresh_dir|<regenerated>|g" -e 's/^/  /'
    echo "Run \`npm run proto:gen\` at the repository root and commit the result."
  } >&2
  exit 1
fi
echo "proto:check: generated code is up to date."
