#!/usr/bin/env bash
# Regenerates src/generated from proto/ with the same options as LOAD_OPTIONS in src/proto.ts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
rm -rf "$here/src/generated"
cd "$root/proto"
"$root/node_modules/.bin/proto-loader-gen-types" --keepCase --longs=String --enums=String --defaults --oneofs \
  --grpcLib=@grpc/grpc-js --outDir="$here/src/generated" -I "$root/proto" --includeComments \
  $(find magrathea -name "*.proto" | sort)
# The generator writes absolute paths into comments; keep the output independent of the checkout location.
find "$here/src/generated" -name '*.ts' -exec sed -i "s|// Original file: $root/|// Original file: |" {} +
