#!/usr/bin/env python3
"""Independent reference for sysim's `decoder` crate: SmolLM2-135M-Instruct.Q4_1.gguf run in NumPy (f64).

Reads the GGUF with the PyPI `gguf` package (its own Q4_1 dequantizer, not candle's), builds the tokenizer
with Hugging Face `tokenizers` from the GGUF vocabulary and merges (SmolLM2's pre-tokenizer: Digits
individual + ByteLevel), runs the Llama forward pass (RMSNorm, GGML "normal" rope on adjacent pairs,
grouped-query attention, SwiGLU, tied LM head) and writes models/decoder/src/data/reference.json:
token ids of ShareGPT turns (tokenizer check) and, for a few prompts, the argmax of every position and the
64 largest logits of the last position (forward check).

Usage: scripts/smollm2_reference.py   (creates .cache/venv-ref with numpy, gguf==0.19.0, tokenizers==0.23.3
and re-runs itself inside it; needs scripts/fetch-data.sh to have run)
"""
import json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".cache", "venv-ref")
PY = os.path.join(VENV, "bin", "python")
if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
    if not os.path.exists(PY):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([PY, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "numpy", "gguf==0.19.0", "tokenizers==0.23.3"])
    os.execv(PY, [PY] + sys.argv)

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

GGUF = os.environ.get("SYSIM_SMOLLM2_GGUF", os.path.join(ROOT, "data", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
TURNS = os.path.join(ROOT, "data", "sharegpt", "turns.jsonl")
OUT = os.path.join(ROOT, "models", "decoder", "src", "data", "reference.json")
TOLERANCE = 0.02  # max |Δ logit| allowed between our f32 forward and this f64 one (stated, not fitted)

r = GGUFReader(GGUF)
def strings(key):
    f = r.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
def scalar(key):
    f = r.fields[key]
    return f.parts[f.data[0]].tolist()[0]

tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
types = [r.fields["tokenizer.ggml.token_type"].parts[i].tolist()[0] for i in r.fields["tokenizer.ggml.token_type"].data]
tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ", 1)) for m in merges]))
tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
tk.decoder = decoders.ByteLevel()
tk.add_special_tokens([t for t, ty in zip(tokens, types) if ty in (3, 4)])
def encode(text):
    return tk.encode(text, add_special_tokens=False).ids

L, D = scalar("llama.block_count"), scalar("llama.embedding_length")
H, KV = scalar("llama.attention.head_count"), scalar("llama.attention.head_count_kv")
THETA, EPS = scalar("llama.rope.freq_base"), scalar("llama.attention.layer_norm_rms_epsilon")
HD = D // H
W = {}
for t in r.tensors:
    cols = int(t.shape[0])
    W[t.name] = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1, cols)
head = W.get("output.weight", W["token_embd.weight"])

def rms(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * w.reshape(-1)
def rope(x, n):  # x: (n, heads, HD), adjacent pairs
    i = np.arange(HD // 2)
    ang = np.arange(n)[:, None] * THETA ** (-2.0 * i / HD)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = a * c - b * s, a * s + b * c
    return out
def forward(ids):
    n = len(ids)
    x = W["token_embd.weight"][ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(L):
        p = lambda k: W[f"blk.{l}.{k}.weight"]
        h = rms(x, p("attn_norm"))
        q = rope((h @ p("attn_q").T).reshape(n, H, HD), n)
        k = rope((h @ p("attn_k").T).reshape(n, KV, HD), n)
        v = (h @ p("attn_v").T).reshape(n, KV, HD)
        k, v = np.repeat(k, H // KV, axis=1), np.repeat(v, H // KV, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(HD) + mask
        s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        x = x + np.einsum("hqk,khd->qhd", s, v).reshape(n, D) @ p("attn_output").T
        h = rms(x, p("ffn_norm"))
        g = h @ p("ffn_gate").T
        x = x + ((g / (1 + np.exp(-g))) * (h @ p("ffn_up").T)) @ p("ffn_down").T
    return rms(x, W["output_norm.weight"]) @ head.T

PROMPTS = [
    "The capital of France is",
    "Write a Python function that returns the 10th Fibonacci number.",
    "<|im_start|>user\nWhat's 2+2? Explain briefly.<|im_end|>\n<|im_start|>assistant\n",
    "Summarize the main ideas of Jeff Walker's Product Launch Formula into bullet points.",
    "I can't believe it's already 2024 — time flies!  Let's plan the next steps:\n\n1. Research",
    "Photosynthesis converts light energy into chemical energy, which",
]
turns = [json.loads(l)["text"] for l in open(TURNS, encoding="utf-8")][:300]
token_cases = [{"text": t[:400], "ids": encode(t[:400])} for t in turns[::3]]
cases = []
for text in PROMPTS:
    ids = encode(text)
    logits = forward(ids)
    last = logits[-1]
    top = np.argsort(-last)[:64]
    cases.append({"text": text, "ids": ids, "argmax": [int(a) for a in logits.argmax(-1)],
                  "top_ids": [int(i) for i in top], "top_logits": [round(float(last[i]), 5) for i in top],
                  "mean_logit": round(float(last.mean()), 6)})
    print(f"{len(ids):3d} tokens  next={tk.decode([int(top[0])])!r}  {text[:50]!r}", file=sys.stderr)
json.dump({"source": "scripts/smollm2_reference.py (gguf 0.19.0 dequantizer, NumPy f64 forward, HF tokenizers)",
           "tolerance_max_abs": TOLERANCE, "cases": cases, "token_cases": token_cases},
          open(OUT, "w"), indent=None, separators=(",", ":"))
print(f"wrote {OUT}: {len(cases)} forward cases, {len(token_cases)} tokenizer cases", file=sys.stderr)
