"""The pipeline's ranking metrics against trec_eval itself (pytrec-eval-terrier's bindings).

Generated qrels and runs with tied scores, unjudged documents, negative gains and queries
without any relevant document; trec_eval's per-query ``ndcg_cut_5`` and ``P_5``, averaged over
the queries, must equal what `trec_ranking` and `ranking_metrics` report.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
import pytrec_eval

from fbloop_assets.lib.weights.evaluation import ranking_metrics, trec_ranking


def _generated(seed: int, queries: int = 40) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(queries):
        docs = [f"c{d:03d}" for d in rng.choice(60, size=int(rng.integers(1, 12)), replace=False)]
        empty = q % 7 == 0  # no relevant document at all
        qrels[f"q{q:02d}"] = {
            d: int(rng.choice([-1, 0])) if empty else int(rng.choice([-1, 0, 0, 1, 2, 3])) for d in docs
        }
        unjudged = [f"u{d:03d}" for d in rng.choice(60, size=int(rng.integers(0, 4)), replace=False)]
        # few distinct scores: many ties, which trec_eval breaks by document id descending
        run[f"q{q:02d}"] = {d: float(rng.integers(0, 4)) / 2 for d in docs + unjudged}
    return qrels, run


def _trec(qrels: dict, run: dict) -> tuple[float, float, int]:
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.5", "P.5"}).evaluate(run)
    assert set(per_query) == set(qrels)  # every query, those without a relevant document too
    ndcg = float(np.mean([m["ndcg_cut_5"] for m in per_query.values()]))
    precision = float(np.mean([m["P_5"] for m in per_query.values()]))
    return ndcg, precision, len(per_query)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_trec_ranking_equals_trec_eval(seed: int) -> None:
    qrels, run = _generated(seed)
    rows = [
        {"query": q, "doc": d, "s": s, "gain": None if d not in qrels[q] else float(qrels[q][d])}
        for q, docs in run.items()
        for d, s in docs.items()
    ]
    ours = trec_ranking(pl.DataFrame(rows, schema_overrides={"gain": pl.Float64}), 5, relevant_at=1.0)
    ndcg, precision, queries = _trec(qrels, run)
    assert ours["ndcg_at_5"] == pytest.approx(ndcg, abs=1e-12)
    assert ours["precision_at_5"] == pytest.approx(precision, abs=1e-12)
    assert ours["queries"] == queries
    assert ours["queries_without_relevant"] == sum(max(g.values()) <= 0 for g in qrels.values()) > 0


@pytest.mark.parametrize("seed", [4, 5])
def test_ranking_metrics_on_labeled_examples_equal_trec_eval(seed: int) -> None:
    # the pipeline's path: label shares 0, 1/2, 1 per creator; trec_eval needs integer grades, so
    # its qrels hold twice the share (NDCG does not change with the scale; P counts share >= 1/2)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(30):
        campaign = f"k{q:02d}"
        creators = [f"c{d:03d}" for d in rng.choice(50, size=int(rng.integers(1, 10)), replace=False)]
        qrels[campaign], run[campaign] = {}, {}
        for creator in creators:
            useful = int(rng.integers(0, 3)) if q % 5 else 0
            score = float(rng.integers(0, 3))  # ties
            qrels[campaign][creator], run[campaign][creator] = useful, score
            for label in [1.0] * useful + [0.0] * (2 - useful):  # two labels, ``useful`` of them yes
                rows.append({"campaign_id": campaign, "creator_id": creator, "n_labels": 1,
                             "label_useful": label, "s": score, "serving_day": date(2026, 1, 1)})  # fmt: skip
    ours = ranking_metrics(pl.DataFrame(rows), 5)
    ndcg, precision, queries = _trec(qrels, run)
    assert ours["ndcg_at_5"] == pytest.approx(ndcg, abs=1e-12)
    assert ours["precision_at_5"] == pytest.approx(precision, abs=1e-12)
    assert ours["queries"] == queries and ours["queries_without_relevant"] >= 6
