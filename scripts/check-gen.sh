#!/usr/bin/env bash
# check-gen.sh: fails when gen/ or the OpenAPI description
# (internal/httpgw/openapi/) is stale, i.e. differs from what `buf generate`
# produces from proto/ and internal/httpgw/rules.yaml with the pinned
# plugins in bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
buf generate -o "$tmp"
for d in gen internal/httpgw/openapi; do
  if ! diff -r "$tmp/$d" "$d" >/dev/null; then
    diff -r "$tmp/$d" "$d" | head -40
    echo "$d is stale: run 'make gen' and commit the result" >&2
    exit 1
  fi
done
echo "gen/ is up to date"
