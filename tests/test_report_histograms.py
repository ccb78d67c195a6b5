"""The reports' histogram merge (store/reports/histograms.py) against the plain one it replaced:
each text parsed and added bucket by bucket."""

from __future__ import annotations

import json
import random

from queue_server.domain import kpis
from queue_server.store.reports.histograms import add_histograms


def _plain_merge(merged: dict[int, int], texts: list[str], rows_of: list[int]) -> None:
    """The merge `queries` did before numpy: a dictionary per text, a bucket at a time."""
    for text, rows in zip(texts, rows_of, strict=True):
        for bucket, count in json.loads(text).items():
            if total := merged.get(int(bucket), 0) + count * rows:
                merged[int(bucket)] = total
            else:
                merged.pop(int(bucket), None)


def _random_text(draw: random.Random) -> str:
    """A histogram as the projector writes it: zero buckets and negative counts included (a
    changed visit is counted out of its old bucket), sometimes empty, sometimes compact."""
    buckets = draw.sample(range(kpis.BUCKETS + 1), draw.choice([0, 1, 3, 30]))
    histogram = {bucket: draw.randint(-4, 60) for bucket in buckets}
    if draw.random() < 0.3:
        return json.dumps(histogram, sort_keys=True, separators=(",", ":"))  # SQLite's JSON
    return json.dumps(histogram, sort_keys=True)


def test_merged_histograms_equal_the_plain_merge_bucket_for_bucket() -> None:
    draw = random.Random(15)
    for _ in range(40):
        groups = draw.randint(1, 12)
        # Some groups start with buckets of their own, which the texts may cancel.
        start = [{bucket: draw.randint(-3, 3) or 1 for bucket in draw.sample(range(50), 5)}
                 for _ in range(groups)]  # fmt: skip
        texts = [_random_text(draw) for _ in range(draw.randint(0, 300))]
        group_of = [draw.randrange(groups) for _ in texts]
        rows_of = [draw.randint(1, 40) for _ in texts]
        expected = [dict(histogram) for histogram in start]
        for group, text, rows in zip(group_of, texts, rows_of, strict=True):
            _plain_merge(expected[group], [text], [rows])
        # The whole: every text once more, into a histogram that may start with buckets too.
        buckets = draw.sample(range(50), draw.choice([0, 4]))
        total = {bucket: draw.randint(1, 3) for bucket in buckets}
        expected_total = dict(total)
        _plain_merge(expected_total, texts, rows_of)
        merged = [dict(histogram) for histogram in start]
        add_histograms(merged, group_of, texts, rows_of, total)
        assert merged == expected
        assert total == expected_total
        assert all(count != 0 for count in total.values())
        assert all(count != 0 for histogram in merged for count in histogram.values())


def test_counts_that_cancel_leave_no_bucket_and_empty_texts_add_nothing() -> None:
    merged: list[dict[int, int]] = [{7: 2}, {}]
    add_histograms(
        merged, [0, 0, 1, 1], ['{"7": 1}', '{"3": 5}', "{}", '{"240": -2}'], [2, 1, 9, 1]
    )
    assert merged == [{7: 4, 3: 5}, {240: -2}]
    add_histograms(merged, [0, 0], ['{"3": -5}', '{"7": -1}'], [1, 4])
    assert merged == [{}, {240: -2}]
    add_histograms(merged, [1, 1], ["{}", "{}"], [3, 4])
    assert merged == [{}, {240: -2}]
