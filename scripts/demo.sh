#!/usr/bin/env bash
# The main job: installs what is needed, builds, and serves the demo page on
# http://localhost:${PORT:-8080}/web/demo/ with the built-in small model and a sample already
# explained. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
sample=$(ls web/demo/samples/*.png | head -1)
echo "The CLI on a sample: build/gcam explain --image $sample"
build/gcam explain --image "$sample"
echo "Demo: open http://localhost:${PORT:-8080}/web/demo/ (Ctrl-C stops the server)"
exec node web/serve.mjs --port "${PORT:-8080}"
