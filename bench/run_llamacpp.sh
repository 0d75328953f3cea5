#!/usr/bin/env bash
# Our SmolLM2-135M forward (models/decoder, f32 weights dequantized from the GGUF) against llama.cpp
# (llama-cpp-python, Q4_1 kernels) on the same GGUF, the same token ids, the same thread count, in the
# same run: prompt-evaluation and decode tokens/s of each and the ratios ours / llama.cpp.
#
# Usage: bench/run_llamacpp.sh [THREADS] [PROMPTS] [DECODE] [REPS]   (defaults: 1 128,512 64 3)
#   PYTHON=python3.11 bench/run_llamacpp.sh          (interpreter used to create the venv)
#
# Creates .cache/venv-llamacpp (git-ignored) with llama-cpp-python 0.3.36 built from its sdist (it
# compiles llama.cpp: a plain CPU build for this host, no BLAS/GPU backends, 2 build jobs; the time it
# took is printed), builds the release example `smollm2_speed` of the decoder crate (only that crate and
# its dependencies), runs it (it writes the token ids it used: ShareGPT turns in file order), then
# bench/llamacpp_smollm2.py on those ids. THREADS is candle's RAYON_NUM_THREADS on our side (sysim runs
# the decoder with 1) and n_threads = n_threads_batch on llama.cpp's. Needs scripts/fetch-data.sh.
# Timings are the best of REPS on each side. Also prints whether both engines' argmax agree (after
# each prompt and at every decode step), a check that they ran the same model on the same tokens.
set -euo pipefail

THREADS="${1:-1}"
PROMPTS="${2:-128,512}"
DECODE="${3:-64}"
REPS="${4:-3}"
PYTHON="${PYTHON:-python3}"
LLAMACPP_VERSION="0.3.36"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$root/.cache/venv-llamacpp"
gguf="${SYSIM_SMOLLM2_GGUF:-$root/data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [[ ! -f "$gguf" ]]; then
  echo "error: $gguf not found: run scripts/fetch-data.sh (or set SYSIM_SMOLLM2_GGUF)" >&2
  exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating $venv" >&2
  "$PYTHON" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$LLAMACPP_VERSION')" 2>/dev/null; then
  echo "installing llama-cpp-python==$LLAMACPP_VERSION from its sdist (compiles llama.cpp) ..." >&2
  start=$(date +%s)
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 \
    "$venv/bin/python" -m pip install --quiet --no-binary llama-cpp-python "llama-cpp-python==$LLAMACPP_VERSION"
  echo "llamacpp_install_s=$(($(date +%s) - start))"
fi

# Extracts the value of KEY=VALUE from the text on stdin.
field() { grep -o "\b$1=[^ ]*" | head -n1 | cut -d= -f2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== ours (decoder crate, release, f32) =="
(cd "$root" && cargo build --release -q -p decoder --example smollm2_speed)
ours_out="$(RAYON_NUM_THREADS="$THREADS" "$root/target/release/examples/smollm2_speed" \
  --prompts "$PROMPTS" --decode "$DECODE" --reps "$REPS" --tokens-out "$tmp/tokens.json")"
sed 's/ [a-z_]*_decode_argmax_[0-9]*=[^ ]*//' <<<"$ours_out"

echo "== llama.cpp =="
llama_out="$("$venv/bin/python" "$here/llamacpp_smollm2.py" --gguf "$gguf" \
  --tokens "$tmp/tokens.json" --threads "$THREADS" --reps "$REPS")"
sed 's/ [a-z_]*_decode_argmax_[0-9]*=[^ ]*//' <<<"$llama_out"

echo "== ratios ours / llama.cpp (tokens/s, $THREADS thread(s); wall and CPU time) =="
for n in ${PROMPTS//,/ }; do
  line=""
  for phase in prompt decode; do
    for clock in s cpu_s; do
      name="ratio_${phase}_$([[ $clock == s ]] && echo wall || echo cpu)_$n"
      o="$(field "ours_${phase}_tokens_per_${clock}_$n" <<<"$ours_out")"
      l="$(field "llamacpp_${phase}_tokens_per_${clock}_$n" <<<"$llama_out")"
      if [[ -z "$o" || -z "$l" ]]; then
        echo "error: ${phase}_tokens_per_${clock}_$n is missing from the output above" >&2
        exit 1
      fi
      line+="$(awk -v k="$name" -v o="$o" -v l="$l" 'BEGIN { printf "%s=%.3f ", k, o / l }')"
    done
  done
  echo "$line"
  on="$(field "ours_next_token_$n" <<<"$ours_out")"
  ln="$(field "llamacpp_next_token_$n" <<<"$llama_out")"
  oa="$(field "ours_decode_argmax_$n" <<<"$ours_out")"
  la="$(field "llamacpp_decode_argmax_$n" <<<"$llama_out")"
  same="$(paste -d' ' <(tr , '\n' <<<"$oa") <(tr , '\n' <<<"$la") | awk '$1 == $2' | wc -l)"
  echo "next_token_agree_$n=$([[ "$on" == "$ln" ]] && echo yes || echo no) decode_argmax_agree_$n=$same/$DECODE"
done
