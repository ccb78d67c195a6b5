"""How much can pooling win with three counters? The bound behind issue 16's pooling goals.

Three counters, Poisson arrivals, exponential service, load ρ. Compares the mean wait (until
called) of one pooled line (M/M/3, Erlang C) with

- a kiosk binding tickets to counters round robin: each counter an E3/M/1 queue (every third
  arrival), whose wait is a closed form (GI/M/1: σ = A*(μ(1 − σ)));
- visitors joining the shortest line who never switch (join-the-shortest-queue, no closed
  form): a long exact simulation.

The pooled line and round robin are simulated too, as a check of the closed forms. Each
simulation reports the mean and a 95% interval from batch means.

    .venv/bin/python scripts/pooling_bound.py [--load 0.85] [--visits 20000000]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from numba import njit

COUNTERS = 3
BATCHES = 40
POOLED, ROUND_ROBIN, SHORTEST = 0, 1, 2
NAMES = {
    POOLED: "pooled line (M/M/3)",
    ROUND_ROBIN: "round robin (3 × E3/M/1)",
    SHORTEST: "shortest line, no switching (JSQ)",
}


def erlang_c_wait(load: float, counters: int = COUNTERS, mean_service: float = 1.0) -> float:
    """The mean wait in an M/M/c queue (Erlang C)."""
    offered = load * counters
    head = sum(offered**k / math.factorial(k) for k in range(counters))
    tail = offered**counters / math.factorial(counters) / (1 - load)
    waits = tail / (head + tail)
    return waits * mean_service / (counters * (1 - load))


def erlang_arrivals_wait(load: float, phases: int = COUNTERS, mean_service: float = 1.0) -> float:
    """The mean wait in an E_k/M/1 queue at `load` (k = `phases`): GI/M/1 with
    σ = (kλ / (kλ + μ(1 − σ)))^k solved by fixed-point iteration; wait = σ / (μ(1 − σ))."""
    mu = 1.0 / mean_service
    phase_rate = phases * load * mu  # each phase of the interarrival time
    sigma = load
    for _ in range(10_000):
        sigma = (phase_rate / (phase_rate + mu * (1 - sigma))) ** phases
    return sigma / (mu * (1 - sigma))


@njit(cache=True)
def _simulate(
    policy: int, load: float, visits: int, seed: int, cv: float
) -> np.ndarray:  # pragma: no cover
    """Each batch's mean wait of `visits` visits (after a warm-up of a tenth as many); service
    exponential, or log-normal with coefficient of variation `cv` when above 0."""
    np.random.seed(seed)
    rate = COUNTERS * load  # mean service 1
    room = 4096
    departures = np.zeros((COUNTERS, room))  # each counter's visits in system, FCFS
    first = np.zeros(COUNTERS, np.int64)
    count = np.zeros(COUNTERS, np.int64)
    free_at = np.zeros(COUNTERS)
    warm = visits // 10
    per_batch = visits // BATCHES
    sums = np.zeros(BATCHES)
    now = 0.0
    for visit in range(warm + per_batch * BATCHES):
        now += np.random.exponential(1.0 / rate)
        if cv > 0.0:
            sigma2 = math.log1p(cv * cv)
            service = np.random.lognormal(-sigma2 / 2, math.sqrt(sigma2))
        else:
            service = np.random.exponential(1.0)
        if policy == POOLED:
            chosen = int(np.argmin(free_at))
        elif policy == ROUND_ROBIN:
            chosen = visit % COUNTERS
        else:
            for k in range(COUNTERS):  # leave the lines the visits that are done
                while count[k] > 0 and departures[k, first[k]] <= now:
                    first[k] = (first[k] + 1) % room
                    count[k] -= 1
            shortest = count.min()
            ties = 0
            chosen = 0
            for k in range(COUNTERS):  # a random one of the shortest lines
                if count[k] == shortest:
                    ties += 1
                    if np.random.random() * ties < 1.0:
                        chosen = k
        start = max(now, free_at[chosen])
        free_at[chosen] = start + service
        if policy == SHORTEST:
            departures[chosen, (first[chosen] + count[chosen]) % room] = free_at[chosen]
            count[chosen] += 1
        if visit >= warm:
            sums[(visit - warm) // per_batch] += start - now
    return sums / per_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=float, default=0.85)
    parser.add_argument("--visits", type=int, default=20_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cv", type=float, default=0.0, help="log-normal service (0: exponential)")
    args = parser.parse_args()
    exact = {POOLED: erlang_c_wait(args.load), ROUND_ROBIN: erlang_arrivals_wait(args.load)}
    if args.cv > 0:
        exact = {}  # the closed forms are for exponential service
    kind = f"log-normal service (cv {args.cv})" if args.cv > 0 else "exponential service"
    print(f"3 counters, {kind} (mean 1), load {args.load}, {args.visits:,} visits")
    means = {}
    for policy in (POOLED, ROUND_ROBIN, SHORTEST):
        batches = _simulate(policy, args.load, args.visits, args.seed + policy, args.cv)
        mean = float(batches.mean())
        half = 1.96 * float(batches.std(ddof=1)) / math.sqrt(len(batches))
        means[policy] = (mean, half)
        closed = f", closed form {exact[policy]:.4f}" if policy in exact else ""
        print(f"{NAMES[policy]}: mean wait {mean:.4f} ± {half:.4f}{closed}")
    pooled = exact.get(POOLED, means[POOLED][0])
    rr = exact.get(ROUND_ROBIN, means[ROUND_ROBIN][0])
    jsq, jsq_half = means[SHORTEST]
    print(f"round robin / pooled: {rr / pooled:.2f}×")
    print(
        f"shortest line / pooled: {jsq / pooled:.3f}× "
        f"({(jsq - jsq_half) / pooled:.3f}–{(jsq + jsq_half) / pooled:.3f})"
    )


if __name__ == "__main__":
    main()
