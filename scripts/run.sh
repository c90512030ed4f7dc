#!/usr/bin/env bash
# Starts the Haitao app. On a machine without a display (a server, a container, CI) it starts a
# private Xvfb display so the app can still run, and says how to look at it.
set -euo pipefail
app="$1"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  for n in $(seq 50 99); do
    [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || break
  done
  Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb=$!
  trap 'kill $xvfb 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.05; done
  export DISPLAY=":$n"
  echo "No display found: Haitao runs on the virtual display $DISPLAY."
  echo "Take a screenshot with: DISPLAY=$DISPLAY import -window root haitao.png"
fi
# Without a desktop session there is no Secret Service; the app then says sessions cannot be remembered.
export WEBKIT_DISABLE_DMABUF_RENDERER="${WEBKIT_DISABLE_DMABUF_RENDERER:-1}"
echo "Starting Haitao ($app); logs go to stderr and to the app's log folder. Ctrl-C quits."
"$app"
