#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python 0.3.x) on SmolLM2-135M-Instruct.Q4_1.gguf: the anchor for our decoder's
forward (models/decoder/examples/smollm2_speed.rs), on the same token ids.

Reads the ids written by `smollm2_speed --tokens-out` ({"tokens", "prompts", "decode"}). For each prompt
length n: prompt evaluation of tokens[:n] from an empty KV cache (one `Llama.eval`, batches of n_batch =
512 tokens, logits of the last position only), then decoding of tokens[n:n+decode] one `eval` call per
token (teacher-forced, the argmax of every step read from the context's logits). Each timing is the best
of --reps repetitions in wall time and in the process's CPU time, as on our side. Weights stay Q4_1 (llama.cpp's own quantized kernels); llama.cpp
built for the host CPU (GGML_NATIVE), n_threads = n_threads_batch = --threads, flash attention off (the
Python API's default).

Prints one line per prompt length:
  llamacpp_prompt_tokens_per_s_<n>=.. llamacpp_prompt_tokens_per_cpu_s_<n>=..
  llamacpp_decode_tokens_per_s_<n>=.. llamacpp_decode_tokens_per_cpu_s_<n>=..
  llamacpp_next_token_<n>=.. llamacpp_decode_argmax_<n>=id,id,...
"""

import argparse
import json
import time

import numpy as np
from llama_cpp import Llama, __version__


def logits_row(llm):
    """The last evaluated position's logits (the only row llama.cpp computed)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def best_of(reps, setup, f):
    """The best wall and CPU seconds (the process, every thread) of `reps` runs of f, each after an
    untimed setup(); and the last run's value."""
    wall, cpu, value = float("inf"), float("inf"), None
    for _ in range(reps):
        setup()
        w0, c0 = time.perf_counter(), time.process_time()
        value = f()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return (wall, cpu), value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--tokens", required=True, help="JSON written by smollm2_speed --tokens-out")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    spec = json.load(open(a.tokens, encoding="utf-8"))
    tokens, prompts, decode = spec["tokens"], spec["prompts"], spec["decode"]
    llm = Llama(model_path=a.gguf, n_ctx=len(tokens) + 8, n_batch=512, n_ubatch=512,
                n_threads=a.threads, n_threads_batch=a.threads, logits_all=False, verbose=False)
    print(f"llamacpp_version={__version__} llamacpp_threads={a.threads}")
    for n in prompts:
        def prompt():
            llm.reset()
            llm.eval(tokens[:n])

        def run_decode():
            steps = []
            for tok in tokens[n:n + decode]:
                llm.eval([tok])
                steps.append(int(np.argmax(logits_row(llm))))
            return steps

        (p_wall, p_cpu), _ = best_of(a.reps, lambda: None, prompt)
        next_token = int(np.argmax(logits_row(llm)))
        (d_wall, d_cpu), steps = best_of(a.reps, prompt, run_decode)
        print(f"llamacpp_prompt_tokens_per_s_{n}={n / p_wall:.1f} "
              f"llamacpp_prompt_tokens_per_cpu_s_{n}={n / p_cpu:.1f} "
              f"llamacpp_decode_tokens_per_s_{n}={decode / d_wall:.1f} "
              f"llamacpp_decode_tokens_per_cpu_s_{n}={decode / d_cpu:.1f} "
              f"llamacpp_next_token_{n}={next_token} "
              f"llamacpp_decode_argmax_{n}={','.join(map(str, steps))}")


if __name__ == "__main__":
    main()
