#!/usr/bin/env bash
# Installs the Appium stack guienv's online envs and their tests need (idempotent; seconds when
# everything is already there):
#   * Debian's chromium + chromedriver (apt-get),
#   * Appium 3 + appium-chromium-driver + appium-uiautomator2-driver into the project-local
#     APPIUM_HOME .appium/ (gitignored), from emulator/package.json (versions pinned there),
#   * appium-python-client and miniwob (pip).
# The Android SDK/emulator is not installed here (system images are not on these registries).
set -euo pipefail
cd "$(dirname "$0")/.."
APPIUM_HOME="${GUIENV_APPIUM_HOME:-${APPIUM_HOME:-$PWD/.appium}}"
PY="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# 1. Chromium + chromedriver (Debian packages: the same build, so versions always match).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "install.sh: apt-get install chromium chromium-driver"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
fi

# 2. Node.js: Appium 3 needs ^20.19 || ^22.12 || >=24.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install.sh: apt-get install nodejs npm"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nodejs npm
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit((a==20&&b>=19)||(a==22&&b>=12)||a>=24?0:1)'; then
  echo "install.sh: Appium 3 needs Node.js ^20.19, ^22.12 or >=24; found $(node --version)" >&2
  exit 1
fi

# 3. Appium + drivers into APPIUM_HOME, reinstalled only when emulator/package.json changed.
mkdir -p "$APPIUM_HOME"
if ! cmp -s emulator/package.json "$APPIUM_HOME/package.json" || [ ! -x "$APPIUM_HOME/node_modules/.bin/appium" ] \
   || ! (cd "$APPIUM_HOME" && npm ls --depth=0 >/dev/null 2>&1); then
  echo "install.sh: npm install into $APPIUM_HOME"
  cp emulator/package.json "$APPIUM_HOME/package.json"
  (cd "$APPIUM_HOME" && npm install --no-audit --no-fund --loglevel=error)
fi

# 4. Python clients.
if ! "$PY" -c 'import appium.webdriver, miniwob' >/dev/null 2>&1; then
  echo "install.sh: pip install appium-python-client miniwob"
  "$PY" -m pip install -q "appium-python-client>=6,<7" "miniwob>=1.1"
fi

echo "install.sh: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), chromedriver $(chromedriver --version | awk '{print $2}'), appium $("$APPIUM_HOME/node_modules/.bin/appium" --version 2>/dev/null | tail -n1)"
