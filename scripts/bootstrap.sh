#!/usr/bin/env bash
# Installs what Haitao needs on Debian 12 / Ubuntu 22.04+ and is missing: system packages through
# apt (with sudo when not root), the UI's npm packages from the lockfile, and for tests a pinned
# tauri-driver. Safe to run again: it only installs what is not there.
#
#   scripts/bootstrap.sh run    what building and running the app needs
#   scripts/bootstrap.sh test   that, plus Xvfb, WebKitWebDriver, tauri-driver, D-Bus and GNOME Keyring
#   scripts/bootstrap.sh package  that, plus what checks the Linux packages (rpm, desktop-file-utils)
set -euo pipefail

mode="${1:-run}"
root="$(cd "$(dirname "$0")/.." && pwd)"
TAURI_DRIVER_VERSION="2.1.0"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

run_pkgs=(
  libwebkit2gtk-4.1-dev build-essential pkg-config libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev libdbus-1-dev fonts-noto-cjk
  # A display for machines without one (make run falls back to Xvfb), and keyring services.
  xvfb xauth gnome-keyring dbus-x11
)
# procps: `kill`, to stop the tests' Xvfb servers gracefully (they then remove their lock files).
# python3-venv: the virtual environment schemathesis is installed into; curl: its sign-ups.
# gcc-mingw-w64-x86-64: the C parts (SQLite, aws-lc) of the Windows build that make test checks.
# python3-gi: the stand-in notification daemon of the e2e tests (tests/e2e/bin/notification-server).
# xdg-utils: xdg-open and xdg-mime, through which the e2e tests open the cashier and haitao:// links.
# postgresql-15: initdb, pg_ctl and the server for the throwaway PostgreSQL the shop's PostgreSQL
# store is tested against (scripts/with-postgres; Debian also sets up its own cluster, unused here).
test_pkgs=(webkit2gtk-driver imagemagick poppler-utils procps python3-venv curl gcc-mingw-w64-x86-64
  python3-gi xdg-utils postgresql-15)

# rpm: lists the .rpm's files; desktop-file-utils: desktop-file-validate (scripts/package-test).
# openssl: the package test's update server certificate; sudo: how the installed app's updater
# installs the newer .deb where no graphical prompt (pkexec) is installed.
package_pkgs=(rpm desktop-file-utils openssl sudo)

pkgs=("${run_pkgs[@]}")
case "$mode" in
  run) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  package) pkgs+=("${test_pkgs[@]}" "${package_pkgs[@]}") ;;
  *) die "unknown mode '$mode' (run, test or package)" ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "apt-get not found: install these packages by hand: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install these packages as root: ${missing[*]}"
    sudo="sudo"
  fi
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs), then rerun"
rust_minor="$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')"
[ "$rust_minor" -ge 90 ] || die "Rust $(rustc --version) is too old; Haitao needs 1.90 or newer (rustup update)"

command -v node >/dev/null && command -v npm >/dev/null \
  || die "Node.js 20.19+ and npm not found: install them (e.g. from nodejs.org or NodeSource), then rerun"
node_version="$(node --version | sed 's/^v//')"
IFS=. read -r node_major node_minor _ <<<"$node_version"
if [ "$node_major" -lt 20 ] || { [ "$node_major" -eq 20 ] && [ "$node_minor" -lt 19 ]; }; then
  die "Node.js $node_version is too old for Vite 8; Haitao needs 20.19+ or 22.12+"
fi

# npm packages exactly as locked; reinstall when the lockfile changed since the last install.
stamp="$root/ui/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$root/ui/package-lock.json" -nt "$stamp" ]; then
  say "installing UI packages from ui/package-lock.json"
  (cd "$root/ui" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

if [ "$mode" != run ]; then
  # The Windows target, so that make test compiles the Windows build (keyring store and all).
  if command -v rustup >/dev/null; then
    rustup target list --installed | grep -qx x86_64-pc-windows-gnu || {
      say "adding the Rust target x86_64-pc-windows-gnu"
      rustup target add x86_64-pc-windows-gnu
    }
  else
    say "no rustup: make test's Windows step fails unless the x86_64-pc-windows-gnu target is installed"
  fi

  # Alipay's official Node SDK, pinned, for the interop suite (crates/alipay-sandbox/tests/node_sdk.rs).
  stamp="$root/tests/node/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$root/tests/node/package-lock.json" -nt "$stamp" ]; then
    say "installing the Alipay Node SDK from tests/node/package-lock.json"
    (cd "$root/tests/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi

  # schemathesis (PyPI), pinned, for the shop API step; Debian's own python3, whatever else is on PATH.
  venv="$root/.tools/venv"
  reqs="$root/tests/schemathesis/requirements.txt"
  if [ ! -x "$venv/bin/st" ] || [ "$reqs" -nt "$venv/.installed" ]; then
    say "installing schemathesis from tests/schemathesis/requirements.txt into .tools/venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$reqs"
    touch "$venv/.installed"
  fi

  driver="$root/.tools/bin/tauri-driver"
  if [ ! -x "$driver" ] || ! grep -qs "$TAURI_DRIVER_VERSION" "$root/.tools/tauri-driver.version"; then
    say "installing tauri-driver $TAURI_DRIVER_VERSION into .tools/bin"
    cargo install tauri-driver --version "=$TAURI_DRIVER_VERSION" --locked --root "$root/.tools" --quiet
    echo "$TAURI_DRIVER_VERSION" >"$root/.tools/tauri-driver.version"
  fi
fi
