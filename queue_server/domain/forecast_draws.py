"""The forecast's random numbers and the runs that use them: `forward_runs` draws them in bulk
(numpy) from the forecast's seed and hands them to the compiled runs (`forecast_engine`).

The numbers are laid out as if each kind were drawn `size` at a time, uniforms, then normals,
then exponentials, so the same plan and seed give the same waits however many are drawn; only
the part a forecast can use is drawn. A normal costs several times a uniform and a refresh
needed about a quarter of the normals it drew (the demo hall: ~7,800 of 33,056), so:

- uniforms are all drawn (cheap);
- without expected arrivals no exponential is ever used, so none is drawn, and the normals are
  drawn only as far as the runs can use them: one per visit of a waiting ticket and up to
  `MAX_RESIDUAL_DRAWS` per visit in hand, in each run;
- with arrivals every normal is drawn (where the exponentials start depends on how many random
  bits the normals took), and half of the exponentials.

A forecast that runs out of a part drawn short draws more and is played again, so the result
never depends on how much was drawn.
"""

from __future__ import annotations

import numpy as np

from queue_server.domain.forecast_engine import (
    EXPONENTIAL,
    MAX_RESIDUAL_DRAWS,
    NORMAL,
    SPENT,
    UNIFORM,
    Draws,
    Floats,
    Plan,
    play_runs,
)

DRAWS_PER_RUN = 256  # random numbers of each kind per run beyond three per waiting ticket


def forward_runs(plan: Plan, runs: int, seed: int) -> Floats:
    """`runs` forward runs from one seed: row r is each waiting ticket's wait in run r, in
    seconds (inf: not called within the horizon). Runs that use up the random numbers are
    played again with twice as many."""
    size = runs * (3 * plan.waiting + DRAWS_PER_RUN)
    wanted = _first_wanted(plan, runs, size)
    while True:
        draws = _draw(seed, size, wanted)
        waits = play_runs(plan, runs, draws)
        if not draws.cursor[SPENT]:
            return waits
        short = [kind for kind in (NORMAL, EXPONENTIAL) if wanted[kind] < size]
        spent = [kind for kind in short if draws.cursor[kind] == wanted[kind]]
        if spent:  # drawn short: draw more of the same numbers
            for kind in spent:
                wanted[kind] = min(size, 2 * wanted[kind] + DRAWS_PER_RUN)
        else:
            size *= 2
            wanted = _first_wanted(plan, runs, size)


def _first_wanted(plan: Plan, runs: int, size: int) -> list[int]:
    """How many of each kind to draw at first (of `size` each)."""
    if not np.any(plan.stream_per_s > 0.0):
        visits = plan.probe_from + MAX_RESIDUAL_DRAWS * len(plan.counter_open)
        return [size, min(size, runs * visits), 0]
    return [size, size, size // 2]


def _draw(seed: int, size: int, wanted: list[int]) -> Draws:
    """The first `wanted` of each kind of the numbers laid out `size` of each kind."""
    bits = np.random.PCG64(seed)  # as `np.random.default_rng(seed)`
    rng = np.random.Generator(bits)
    uniform = rng.random(wanted[UNIFORM])
    bits.advance(size - wanted[UNIFORM])  # a uniform takes one step of the generator
    if wanted[EXPONENTIAL] > 0:  # they start where the last of the `size` normals ended
        normal = rng.standard_normal(size)[: wanted[NORMAL]]
    else:
        normal = rng.standard_normal(wanted[NORMAL])
    return Draws(
        uniform=uniform,
        normal=normal,
        exponential=rng.standard_exponential(wanted[EXPONENTIAL]),
        cursor=np.zeros(4, np.int64),
    )
