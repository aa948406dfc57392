#!/usr/bin/env bash
# Installs what gradcam-wasm needs on Debian 12: compilers and libraries (apt), the Python
# oracles (Debian's python3-* packages, used with /usr/bin/python3), Emscripten, the three
# browser engines of the browser tests (Chromium; Firefox ESR; WebKitGTK's MiniBrowser with
# WebKitWebDriver, on an Xvfb display), and the npm dev dependencies (their drivers:
# playwright-core, puppeteer-core, selenium-webdriver; no browser is downloaded); clang-14
# with libclang-rt-14-dev for the libFuzzer harnesses (tests/fuzz), gcc-multilib and
# lib32stdc++-12-dev for 32-bit (-m32) ASan runs and fuzzers.
# Safe to run again: it skips apt when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libstb-dev libxnnpack-dev libpthreadpool-dev
  emscripten binaryen
  python3 python3-numpy python3-torch python3-torchvision python3-opencv python3-h5py
  python3-pytest python3-pil dataset-fashion-mnist
  chromium firefox-esr webkit2gtk-driver libwebkit2gtk-4.1-0 xvfb xauth
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

# the package needs Node >= 20.16 (process.getBuiltinModule), the Vite 8 tests >= 20.19
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "install_deps: Node $(node --version) is too old: gradcam-wasm needs Node 20.19 or newer" >&2
  exit 1
fi

if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/puppeteer-core ] || [ ! -d node_modules/selenium-webdriver ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
