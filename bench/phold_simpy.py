#!/usr/bin/env python3
"""PHOLD on SimPy 4.1: the reference point for `sysim bench` (see sim/src/bench.rs).

Workload (same as the Rust benchmark): `--lps` logical processes each start with
`--initial-per-lp` events; processing an event at an LP sends one new event to an LP drawn
uniformly at random, `--lookahead-s` + Exp(mean `--mean-delay-s`) seconds later. Exactly
`--events` events are processed: once that many have been created (initial ones included) no new
event is sent and the pending ones drain. `--end-s` optionally stops at a simulated time.

SimPy shapes (`--pattern`):
  * `store` (default; idiomatic, one store per LP, the counterpart of sysim's LP + router models):
    every LP is a SimPy process looping on `yield inbox.get()` over its own `simpy.Store`; sending
    an event = an `env.timeout(delay)` whose callback puts the message into the destination's
    store (SimPy has no delayed put). Each PHOLD event costs one Timeout, one StorePut, one
    StoreGet and one process resumption.
  * `store-process`: as `store`, but each message travels in its own short-lived process
    (`yield env.timeout(delay); inbox.put(msg)`); slower still.
  * `callback`: no processes or stores; each event is a bare Timeout whose callback runs the LP
    handler. The floor of SimPy's event loop (the counterpart of the hand-written heap loop).

Each LP has its own `random.Random` seeded from (seed, LP index); the streams differ from the Rust
ones, so only the statistics, not the exact event sequence, match.

Prints one machine-readable line:
  simpy_pattern=<p> simpy_events=<n> simpy_wall_s=<s> simpy_events_per_s=<rate> simpy_sim_time_s=<t>
"""

import argparse
import random
import sys
import time

import simpy


def run(lps, initial_per_lp, events, mean_delay_s, lookahead_s, end_s, seed, pattern):
    start = time.perf_counter()
    env = simpy.Environment()
    inboxes = [simpy.Store(env) for _ in range(lps)]
    rngs = [random.Random(seed * 1_000_003 + i) for i in range(lps)]
    rate = 1.0 / mean_delay_s
    state = {"created": 0, "processed": 0}

    if pattern == "callback":
        return run_callback(lps, initial_per_lp, events, mean_delay_s, lookahead_s, end_s, seed)

    if pattern == "store":

        def send(dest, delay):
            env.timeout(delay).callbacks.append(lambda _ev: inboxes[dest].put(None))

    else:

        def courier(dest, delay):
            yield env.timeout(delay)
            inboxes[dest].put(None)

        def send(dest, delay):
            env.process(courier(dest, delay))

    def lp(i):
        inbox = inboxes[i]
        rng = rngs[i]
        while True:
            yield inbox.get()
            state["processed"] += 1
            dest = rng.randrange(lps)
            delay = lookahead_s + rng.expovariate(rate)
            if state["created"] < events:
                state["created"] += 1
                send(dest, delay)

    for i in range(lps):
        env.process(lp(i))
        for _ in range(initial_per_lp):
            send(i, lookahead_s + rngs[i].expovariate(rate))
            state["created"] += 1

    env.run(until=end_s)
    wall_s = time.perf_counter() - start
    return state["processed"], wall_s, env.now


def run_callback(lps, initial_per_lp, events, mean_delay_s, lookahead_s, end_s, seed):
    start = time.perf_counter()
    env = simpy.Environment()
    rngs = [random.Random(seed * 1_000_003 + i) for i in range(lps)]
    rate = 1.0 / mean_delay_s
    state = {"created": 0, "processed": 0}

    def handler(i):
        rng = rngs[i]

        def on_event(_ev):
            state["processed"] += 1
            dest = rng.randrange(lps)
            delay = lookahead_s + rng.expovariate(rate)
            if state["created"] < events:
                state["created"] += 1
                env.timeout(delay).callbacks.append(handlers[dest])

        return on_event

    handlers = [handler(i) for i in range(lps)]
    for i in range(lps):
        for _ in range(initial_per_lp):
            env.timeout(lookahead_s + rngs[i].expovariate(rate)).callbacks.append(handlers[i])
            state["created"] += 1

    env.run(until=end_s)
    wall_s = time.perf_counter() - start
    return state["processed"], wall_s, env.now


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lps", type=int, default=1000)
    p.add_argument("--initial-per-lp", type=int, default=1)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--mean-delay-s", type=float, default=1.0)
    p.add_argument("--lookahead-s", type=float, default=0.1)
    p.add_argument("--end-s", type=float, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pattern", choices=["store", "store-process", "callback"], default="store")
    a = p.parse_args()
    if a.lps < 1 or a.initial_per_lp < 1 or a.events < a.lps * a.initial_per_lp:
        sys.exit("need lps >= 1, initial-per-lp >= 1 and events >= lps * initial-per-lp")
    if not a.mean_delay_s > 0 or not a.lookahead_s >= 0:
        sys.exit("need mean-delay-s > 0 and lookahead-s >= 0")

    n, wall_s, now = run(
        a.lps, a.initial_per_lp, a.events, a.mean_delay_s, a.lookahead_s, a.end_s, a.seed, a.pattern
    )
    print(
        f"simpy_pattern={a.pattern} simpy_events={n} simpy_wall_s={wall_s:.3f} "
        f"simpy_events_per_s={n / wall_s:.0f} simpy_sim_time_s={now:.3f}"
    )


if __name__ == "__main__":
    main()
