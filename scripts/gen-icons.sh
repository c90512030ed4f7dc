#!/usr/bin/env bash
# Regenerates the app icon sizes from icons/icon.svg (needs librsvg2-bin and imagemagick).
set -euo pipefail
cd "$(dirname "$0")/../icons"
for s in 32 64 128 256 512 1024; do rsvg-convert -w "$s" -h "$s" icon.svg -o "${s}x${s}.png"; done
cp 256x256.png 128x128@2x.png
cp 1024x1024.png icon.png
rsvg-convert -w 16 -h 16 icon.svg -o 16x16.png
rsvg-convert -w 48 -h 48 icon.svg -o 48x48.png
convert 16x16.png 32x32.png 48x48.png 64x64.png 128x128.png 256x256.png icon.ico
rm 16x16.png 48x48.png
