"""Off-policy estimates of a weights set on logged slates: the frames around `estimators`.

`weighted` joins every logged recommendation to the target's and the logging policy's
probabilities and gives it two importance weights (see `estimators` for the formulas):

- ``w_position``: per-position, marginal target over marginal logging probability. The logging
  marginal is the logged ``propensity`` itself when the log declares ``propensity_kind =
  marginal`` (another recommender's log, the Open Bandit Dataset for one); for fbloop's own logs
  (``conditional``) it is computed from the weights version that served the slate, rescored on
  the same pool (`LoggingPolicy`). A row whose serving version is unknown has none (counted).
- ``w_cascade``: the running product over the slate of conditional target over conditional
  logged propensity; only for ``conditional`` logs (a marginal does not give the ranks above).

Marginals are computed per (serving day, campaign) pool and cached for the life of the process
by a digest of the pool's scores (`pool_marginals`), so the production weights, which served most
logged slates, are computed once for both roles, and a process that evaluates day after day
(`fbloop demo`) computes an unchanged version's pools once.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import polars as pl

from fbloop_assets.lib.common.config_stages import PROPENSITY_KINDS
from fbloop_assets.lib.scoring.features import FEATURES, weight_vector
from fbloop_assets.lib.weights.estimators import Marginals, cascade_weights, pl_logits, pl_marginals
from fbloop_assets.lib.weights.registry import Registry, UnknownVersion

POOL = ["serving_day", "campaign_id"]
# About 90 KB a sampled pool of 2,300 creators and 10 slots: some 200 MB when full, and more than
# a 7-day dataset window of 40 campaigns under four versions needs (about 1,100 pools).
MARGINAL_CACHE_SIZE = 2048


@dataclass
class LoggingPolicy:
    """What the logged propensities mean and, for conditional logs, the weights that served."""

    kind: str = "conditional"  # one of PROPENSITY_KINDS (`ingestion.propensity_kind`)
    weights: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, registry: Registry, versions: Iterable[str], kind: str = "conditional") -> LoggingPolicy:
        """The weights of every logged version the registry knows (others stay unknown)."""
        if kind not in PROPENSITY_KINDS:
            raise ValueError(f"propensity_kind must be one of {', '.join(PROPENSITY_KINDS)}, got {kind!r}")
        known = {}
        for version in sorted(set(versions)):
            try:
                known[version] = registry.load(version).weights
            except UnknownVersion:
                continue
        return cls(kind, known)


def scored(frame: pl.DataFrame, weights: Mapping[str, float]) -> pl.DataFrame:
    """``frame`` with ``s = w · φ``."""
    return frame.with_columns(
        pl.Series("s", frame.select(FEATURES).to_numpy() @ weight_vector(dict(weights)))
    )


_CACHE: OrderedDict[tuple[object, ...], Marginals] = OrderedDict()


def pool_marginals(
    day: date, campaign: str, k: int, temperature: float, samples: int, scores: np.ndarray
) -> Marginals:
    """The PL marginals of one pool's scores (creators in id order); shared between callers: read only.

    Kept by a digest of the scores (not the scores themselves), the least recently used dropped
    beyond `MARGINAL_CACHE_SIZE`; sampled marginals are kept as float32, whose rounding is far
    below their Monte Carlo error, exact ones as computed.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    key = (day, campaign, k, temperature, samples, hashlib.blake2b(scores.tobytes(), digest_size=16).digest())
    found = _CACHE.get(key)
    if found is not None:
        _CACHE.move_to_end(key)
        return found
    seed = zlib.crc32(f"{day}/{campaign}".encode())  # the same draws for every policy of a pool
    found = pl_marginals(pl_logits(scores, temperature), k, samples, seed)
    if not found.exact:
        found = replace(found, probability=found.probability.astype(np.float32))
    _CACHE[key] = found
    if len(_CACHE) > MARGINAL_CACHE_SIZE:
        _CACHE.popitem(last=False)
    return found


def marginal_table(
    pools: pl.DataFrame, temperature: float, k: int, samples: int
) -> tuple[pl.DataFrame, float]:
    """Per pool creator and position 1..k its PL marginal under the scores ``s``; the largest stderr."""
    ordered = pools.sort(*POOL, "creator_id")  # pools contiguous, each in creator order
    values, widths, stderr = [], [], 0.0
    for (day, campaign), pool in ordered.partition_by(POOL, as_dict=True, maintain_order=True).items():
        marginals = pool_marginals(day, campaign, k, temperature, samples, pool["s"].to_numpy())
        stderr = max(stderr, marginals.stderr)
        n, width = marginals.probability.shape
        values.append(marginals.probability.ravel())  # creator-major, rank-minor: the explode's order
        widths.append(np.full(n, width))
    if not values:
        schema = {"serving_day": pl.Date, "campaign_id": pl.String, "creator_id": pl.String}
        return pl.DataFrame(schema=schema | {"rank": pl.Int64, "marginal": pl.Float64}), stderr
    table = (
        ordered.select(
            pl.col("serving_day").cast(pl.Date), pl.col("campaign_id").cast(pl.String), "creator_id"
        )
        .with_columns(pl.int_ranges(1, pl.Series(np.concatenate(widths)) + 1, dtype=pl.Int64).alias("rank"))
        .explode("rank")
        .with_columns(pl.Series("marginal", np.concatenate(values), dtype=pl.Float64))
    )
    return table, stderr


def _target_conditional(examples: pl.DataFrame, pools: pl.DataFrame, temperature: float) -> pl.DataFrame:
    """The examples with a pool, by request and rank, with the target's conditional probability."""
    logit = pl.col("s") / pl.col("spread") / temperature
    stats = (
        pools.with_columns(pl.col("s").std(ddof=0).over(POOL).alias("spread"))
        .with_columns(pl.when(pl.col("spread") > 0).then(pl.col("spread")).otherwise(1.0).alias("spread"))
        .group_by(POOL)
        .agg(
            pl.col("spread").first(),
            logit.max().alias("max_logit"),
            (logit - logit.max()).exp().sum().log().alias("log_z_shift"),
        )
    )
    return (
        examples.join(stats, on=POOL, how="inner")
        .with_columns((logit - pl.col("max_logit") - pl.col("log_z_shift")).exp().alias("mass"))
        .sort("request_id", "rank")
        .with_columns((pl.col("mass").cum_sum().over("request_id") - pl.col("mass")).alias("above"))
        .with_columns(
            (pl.col("mass") / (1.0 - pl.col("above")).clip(lower_bound=pl.col("mass")))
            .clip(1e-300, 1.0)
            .alias("target_conditional")
        )
        .drop("spread", "max_logit", "log_z_shift", "mass", "above")
    )


def _logging_marginals(
    frame: pl.DataFrame, pools: pl.DataFrame, temperature: float, k: int, samples: int, policy: LoggingPolicy
) -> tuple[pl.DataFrame, float]:
    """The logging policy's marginal of each conditional row, from the version that served it."""
    tables, stderr = [], 0.0
    for version in sorted(set(frame["weights_version"].to_list()) & set(policy.weights)):
        used = frame.filter(pl.col("weights_version") == version).select(POOL).unique()
        table, err = marginal_table(
            scored(pools.join(used, on=POOL, how="semi"), policy.weights[version]),
            temperature,
            k,
            samples,
        )
        tables.append(table.with_columns(pl.lit(version).alias("weights_version")))
        stderr = max(stderr, err)
    if not tables:
        return frame.with_columns(pl.lit(None, pl.Float64).alias("logging_marginal")), stderr
    logging = pl.concat(tables).rename({"marginal": "logging_marginal"})
    return frame.join(logging, on=[*POOL, "creator_id", "rank", "weights_version"], how="left"), stderr


def weighted(
    examples: pl.DataFrame,
    pools: pl.DataFrame,
    temperature: float,
    clip: float,
    samples: int,
    policy: LoggingPolicy,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Logged recommendations with a pool and ``w_position``, ``w_cascade`` (see the module doc).

    ``s`` must be scored on both frames with the target weights. Also returns the largest
    standard error of the target's and the logging policy's sampled marginals (0 when exact).
    """
    frame = _target_conditional(examples, pools, temperature)
    if "propensity_kind" not in frame.columns:
        frame = frame.with_columns(pl.lit(policy.kind).alias("propensity_kind"))
    frame = frame.with_columns(pl.col("propensity_kind").fill_null(policy.kind))
    k = int(frame["rank"].to_numpy().max()) if frame.height else 0
    used_pools = pools.join(frame.select(POOL).unique(), on=POOL, how="semi")
    target, target_err = marginal_table(used_pools, temperature, max(k, 1), samples)
    frame = frame.join(
        target.rename({"marginal": "target_marginal"}), on=[*POOL, "creator_id", "rank"], how="left"
    )
    conditional = frame.filter(pl.col("propensity_kind") == "conditional")
    with_logging, logging_err = _logging_marginals(
        conditional.select("request_id", "rank", *POOL, "creator_id", "weights_version"),
        pools,
        temperature,
        max(k, 1),
        samples,
        policy,
    )
    frame = (
        frame.join(
            with_logging.select("request_id", "rank", "logging_marginal"),
            on=["request_id", "rank"],
            how="left",
        )
        .with_columns(
            pl.when(pl.col("propensity_kind") == "marginal")
            .then(pl.col("propensity"))
            .otherwise(pl.col("logging_marginal"))
            .alias("logging_marginal")
        )
        .sort("request_id", "rank")
    )
    ratio = (pl.col("target_marginal") / pl.col("logging_marginal")).clip(upper_bound=clip)
    cascade = cascade_weights(
        frame["request_id"].to_numpy(),
        frame["target_conditional"].to_numpy(),
        frame["propensity"].to_numpy(),
        clip,
    )
    frame = frame.with_columns(
        pl.when(pl.col("logging_marginal") > 0).then(ratio).otherwise(None).alias("w_position"),
        pl.when(pl.col("propensity_kind") == "conditional")
        .then(pl.Series("w", cascade))
        .otherwise(None)
        .alias("w_cascade"),
    )
    return frame, {"target": target_err, "logging": logging_err}
