#!/usr/bin/env bash
# Everything `make test` checks, in order, with a pass/fail summary at the end. Every step runs even
# when an earlier one failed (except those that cannot: nothing builds without the UI bundle), so
# one run shows every problem. Exit status is non-zero if any step failed.
#
# Environment: HAITAO_TEST_SKIP="e2e keyring" skips named steps (for quick local runs only; CI
# skips nothing).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
mkdir -p target/e2e

names=()
results=()
times=()
failed=0

step() {
  local name="$1"
  shift
  if [[ " ${HAITAO_TEST_SKIP:-} " == *" $name "* ]]; then
    names+=("$name"); results+=("SKIPPED"); times+=("-")
    return 0
  fi
  printf '\n\033[1;34m==> %s\033[0m  (%s)\n' "$name" "$*"
  local start=$SECONDS
  if "$@"; then
    results+=("pass")
  else
    results+=("FAIL")
    failed=1
  fi
  names+=("$name")
  times+=("$((SECONDS - start))s")
}

# A session bus with an unlocked GNOME Keyring (the Secret Service), for the keyring suite and the
# app under test. The keyring's files go to a throwaway folder so the tester's own keyring is
# untouched; only the daemon sees that folder, so cargo's environment (and its build cache) is the
# same as in the other steps.
with_keyring() {
  local store
  store="$(mktemp -d)"
  KEYRING_STORE="$store" dbus-run-session -- bash -c '
    echo -n haitao-test | XDG_DATA_HOME="$KEYRING_STORE" \
      gnome-keyring-daemon --components=secrets --daemonize --unlock >/dev/null
    unset KEYRING_STORE
    exec "$@"' bash "$@"
  local rc=$?
  rm -rf "$store"
  return $rc
}

ui_build() { (cd ui && npm run --silent build); }
ui_check() { (cd ui && npm run --silent check); }
ui_lint() { (cd ui && npm run --silent lint); }
ui_test() { (cd ui && npm run --silent test); }
# The shop on PostgreSQL, beside a throwaway server (scripts/with-postgres): the store conformance
# suite, the shop's HTTP suites and two instances on one database, then the money simulation.
postgres_suite() {
  scripts/with-postgres bash -c '
    cargo test -p haitao-shop --locked --test store_conformance --test checkout --test limits \
      --test reconciliation --test test_controls --test instances -- --include-ignored &&
    HAITAO_SIM_SEEDS="${HAITAO_SIM_SEEDS_POSTGRES:-60}" cargo test -p haitao-sim --locked --test seeds'
}
# The app and the shop as the app links it, without the PostgreSQL store (a workspace build turns it on).
clippy_app() {
  cargo clippy -p haitao --all-targets --locked -- -D warnings &&
    cargo clippy -p haitao-shop --no-default-features --lib --bins --locked -- -D warnings
}
# The app as it ships: built on its own, so the shop in it has no PostgreSQL store (a workspace
# build turns the store on for the simulation and the shop's tests); the e2e tests drive this binary.
app_built() {
  cargo build -p haitao --locked || return 1
  [ -x target/debug/haitao ] || { echo "target/debug/haitao was not built"; return 1; }
}

step standalone scripts/check-standalone
step ui-build ui_build
step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
step clippy-app clippy_app
# The Windows build, type-checked and linted through (keyring store, file modes, shell and all);
# the WebDriver suite and the bare reference page are Linux test harnesses and stay out.
step windows cargo clippy --workspace --exclude haitao-e2e --exclude haitao-bare-tauri --all-targets --locked \
  --target x86_64-pc-windows-gnu -- -D warnings
step bindings cargo test --workspace --locked --test bindings
step rust-tests cargo test --workspace --locked
step postgres postgres_suite
step app-binary app_built
step schemathesis scripts/schemathesis
step node-sdk cargo test -p haitao-alipay-sandbox --locked --test node_sdk -- --ignored
step keyring with_keyring cargo test --workspace --locked --test keyring -- --ignored --test-threads=1
step svelte-check ui_check
step ui-lint ui_lint
step ui-tests ui_test
step e2e with_keyring timeout 1800 cargo test --workspace --locked --test app --test checkout --test updates -- --ignored --test-threads=1

printf '\n\033[1m%-14s %-8s %s\033[0m\n' "step" "result" "time"
for i in "${!names[@]}"; do
  case "${results[$i]}" in
    pass) color=32 ;;
    FAIL) color=31 ;;
    *) color=33 ;;
  esac
  printf '%-14s \033[%sm%-8s\033[0m %s\n' "${names[$i]}" "$color" "${results[$i]}" "${times[$i]}"
done
echo "screenshots and app logs from the end-to-end tests: target/e2e/"
if [ "$failed" -ne 0 ]; then
  printf '\n\033[1;31mmake test: FAILED\033[0m\n'
  exit 1
fi
printf '\n\033[1;32mmake test: all passed\033[0m\n'
