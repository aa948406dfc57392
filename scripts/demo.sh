#!/usr/bin/env bash
# The main job: installs what is needed, builds, and serves the demo page on
# http://localhost:${PORT:-8080}/ with the built-in small model and a sample already
# explained. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
echo "CLI check: build/gcam explain --image web/demo/samples/$(ls web/demo/samples | head -1)"
build/gcam explain --image "web/demo/samples/$(ls web/demo/samples | head -1)"
exec node web/serve.mjs --port "${PORT:-8080}"
