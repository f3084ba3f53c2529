#!/bin/sh
# Screenshots of the demo's report.html in headless Chromium, at a desktop width (1400 px) and a phone width (390 px):
# docs/images/report-1400.png and docs/images/report-390.png. For us (checking the HTML in a real browser); nothing at
# run time or in the tests needs Chromium.
#
#   apt-get install -y chromium            # Debian's package
#   sh docs/images/screenshot-report.sh [DEMO_DIR]
#
# DEMO_DIR: an `irr demo` output (default /tmp/irr-screenshot-demo, made with `irr demo --quick --seed 1` when missing).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
demo=${1:-/tmp/irr-screenshot-demo}
irr="dotnet $repo/src/Irr.Cli/bin/Release/net10.0/Irr.Cli.dll"
if [ ! -f "$demo/report/report.html" ]; then
  dotnet build -c Release "$repo/src/Irr.Cli" >/dev/null
  $irr demo --quick --seed 1 -o "$demo"
fi
shot() { # WIDTH HEIGHT OUTPUT
  chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
    --window-size="$1,$2" --screenshot="$3" "file://$demo/report/report.html" 2>/dev/null
}
shot 1400 11000 "$here/report-1400.png"
shot 390 16000 "$here/report-390.png"
# Cut the blank page below the report off, when Python with Pillow is there (Debian: python3-pil).
/usr/bin/python3 - "$here/report-1400.png" "$here/report-390.png" <<'PY' 2>/dev/null || true
import sys
from PIL import Image, ImageChops
for path in sys.argv[1:]:
    image = Image.open(path).convert("RGB")
    box = ImageChops.difference(image, Image.new("RGB", image.size, image.getpixel((0, image.height - 1)))).getbbox()
    if box: image.crop((0, 0, image.width, min(image.height, box[3] + 24))).save(path, optimize=True)
PY
echo "wrote $here/report-1400.png and $here/report-390.png from $demo/report/report.html"
