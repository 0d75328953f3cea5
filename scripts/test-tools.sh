#!/usr/bin/env bash
# Optional tools some end-to-end tests use; each test prints a note and skips when its tool is absent.
#   jsonschema (Python): validates the shipped scenarios against `sysim schema` (tests/it/schema.rs).
set -euo pipefail
if ! python3 -c "import jsonschema" 2>/dev/null; then
  python3 -m pip install --quiet --user "jsonschema>=4.18" \
    || echo "note: could not install Python jsonschema; the schema test will skip" >&2
fi
