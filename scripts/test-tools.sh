#!/usr/bin/env bash
# Optional tools some end-to-end tests use; each test prints a note and skips when its tool is absent.
#   jsonschema (Python): validates the shipped scenarios against `sysim schema` (tests/it/schema.rs).
set -euo pipefail
if ! python3 -c "import jsonschema" 2>/dev/null; then
  python3 -m pip install --quiet --user "jsonschema>=4.18" \
    || echo "note: could not install Python jsonschema; the schema test will skip" >&2
fi
#   Chromium (Debian package `chromium`): opens a report gallery headless and fails on broken images
#   (tests/it/gallery.rs).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || echo "note: could not install chromium; the gallery test will skip" >&2
  else
    echo "note: chromium is absent (install the Debian package as root); the gallery test will skip" >&2
  fi
fi
