#!/usr/bin/env bash
# Installs what gradcam-wasm needs on Debian 12: compilers and libraries (apt), the Python
# oracles (Debian's python3-* packages, used with /usr/bin/python3), Emscripten, Chromium
# for the browser test, and the npm dev dependencies (playwright-core only: no browser
# download); clang-14 with libclang-rt-14-dev for the libFuzzer harnesses (tests/fuzz) and
# gcc-multilib and lib32stdc++-12-dev for 32-bit (-m32) ASan runs and fuzzers.
# Safe to run again: it skips apt when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libstb-dev libxnnpack-dev libpthreadpool-dev
  emscripten binaryen
  python3 python3-numpy python3-torch python3-torchvision python3-opencv python3-h5py
  python3-pytest python3-pil dataset-fashion-mnist
  chromium
  clang-14 libclang-rt-14-dev gcc-multilib lib32stdc++-12-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Node.js 20 may come from elsewhere (its npm included): take Debian's only when there is none
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
