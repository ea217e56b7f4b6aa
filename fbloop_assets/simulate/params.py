"""Every parameter of the synthetic influencer world, in one place (documented in docs/simulator.md).

Figures set "near public industry figures" name their source in a comment; they are round values
inside the ranges those reports give, not exact quotes, because the reports differ by year,
platform and method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

NICHES = ("fashion", "beauty", "fitness", "food", "travel", "gaming", "tech", "parenting", "home", "finance")
NICHE_SHARES = (0.16, 0.14, 0.12, 0.12, 0.10, 0.09, 0.08, 0.07, 0.07, 0.05)
PLATFORMS = ("instagram", "tiktok", "youtube")
PLATFORM_SHARES = (0.55, 0.30, 0.15)
# Engagement relative to Instagram at the same tier: TikTok higher, YouTube lower (same reports).
PLATFORM_ENGAGEMENT = (1.0, 1.6, 0.8)
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "SE", "BR")
COUNTRY_SHARES = (0.16, 0.13, 0.13, 0.18, 0.09, 0.09, 0.06, 0.06, 0.04, 0.06)
AGE_BUCKET_SHARES = {"<18": 0.07, "18-25": 0.35, "25-35": 0.35, "35-50": 0.18, "50+": 0.05}

# Follower tiers nano (1k-10k), micro (10k-100k), macro (100k-1M), mega (1M-20M): share of
# accounts and typical Instagram engagement rate. Shares near HypeAuditor's "State of Influencer
# Marketing" reports (nano about two thirds of accounts, mega about 1 %); engagement rates near
# the tier medians of HypeAuditor's and Influencer Marketing Hub's annual benchmark reports
# (engagement falls with audience size, from about 4 % for nano to about 1 % for mega).
TIER_BOUNDS = ((1_000, 10_000), (10_000, 100_000), (100_000, 1_000_000), (1_000_000, 20_000_000))
TIER_SHARES = (0.65, 0.27, 0.07, 0.01)

BRAND_WORDS = (
    ("Northwind", "Lumen", "Acme", "Bluebird", "Kestrel", "Solace", "Vanta", "Orchard", "Pebble", "Atlas"),
    ("Sport", "Beauty", "Kitchen", "Travel", "Games", "Labs", "Home", "Finance", "Wear", "Kids"),
)

# The attacks the simulator can stage (docs/simulator.md, "Attacks"), in the order they are reported.
ATTACKS = ("label-flood", "bot-spike", "late-conversions")

COMMENTS = (
    "great fit for the brand",
    "audience looks off for this product",
    "too expensive for what they deliver",
    "content quality is excellent",
    "engagement looks bought",
    "already works with a competitor",
    "not on brand",
    "strong local audience",
)


@dataclass(frozen=True)
class AttackParams:
    """How strong each attack is; when it happens is ``SimParams.attack_days``."""

    # label-flood: one new reviewer account gives this share of the day's labels (the others'
    # labels of the day stay as they are), on suggestions served that day and the day before,
    # each label the opposite of what the true relevance says; this share of them goes to
    # suggestions other reviewers label too, so that agreement can be measured.
    label_flood_share: float = 0.6
    label_flood_overlap_share: float = 0.25
    label_flood_confidence: tuple[float, float] = (0.8, 1.0)
    # bot-spike: this many low-relevance creators (bottom third by the true relevance of their
    # recent suggestions) get bought engagement on their suggestions served that day and the day
    # before: engagements and clicks multiplied (extra = (multiple - 1) x the post's expected
    # count), conversions unchanged. The creators stay the same over consecutive attack days.
    bot_creators: int = 15
    bot_engagement_multiple: float = 20.0
    bot_click_multiple: float = 5.0
    # late-conversions: this share of the conversions of the suggestions served on an attack day
    # arrives between these many days after serving instead, past the 7-day window for some.
    late_conversion_share: float = 0.6
    late_conversion_delay_days: tuple[float, float] = (3.0, 9.0)


@dataclass(frozen=True)
class SimParams:
    """The knobs of the synthetic world; defaults are the documented world."""

    n_creators: int = 4_000
    n_campaigns: int = 40
    slate_size: int = 10
    # Softmax temperature of the Plackett-Luce serving policy: lower is greedier.
    serving_temperature: float = 0.4
    engagement_noise_sigma: float = 0.35  # log-normal spread of engagement rates within a tier

    # Inauthentic audiences: HypeAuditor's fraud reports find a large share of Instagram accounts
    # with some fake followers and roughly one in ten heavily affected. Here 10 % of creators bought
    # 30-70 % of their followers; their reported engagement is inflated 1.5-3x by bought
    # engagement, and their real audience converts at a fraction of the usual rate.
    bought_share: float = 0.10
    bought_fake_follower_range: tuple[float, float] = (0.3, 0.7)
    bought_engagement_inflation: tuple[float, float] = (1.5, 3.0)
    bought_conversion_factor: float = 0.15

    # Funnel per post: organic reach, click-through and conversion as functions of the true
    # relevance r in (0, 1) of the (campaign, creator) pair.
    reach_range: tuple[float, float] = (0.10, 0.30)  # share of real followers who see a post
    ctr_base: float = 0.01  # clicks per impression = ctr_base * (0.3 + 1.4 r)
    cvr_base: float = 0.012  # conversions per click = cvr_base * (0.2 + 1.6 r)
    post_delay_hours: tuple[float, float] = (1.0, 12.0)  # served -> posted
    # The platform API reports impressions, engagements and clicks as increments at these hours
    # after the post (share of the total in each report).
    report_hours: tuple[float, ...] = (1, 3, 6, 12, 24, 48)
    report_shares: tuple[float, ...] = (0.30, 0.20, 0.15, 0.15, 0.12, 0.08)
    # Conversions arrive up to 7 days after serving (Meta's default attribution is 7-day click,
    # 1-day view); most come on the first day: exponential delay, mean 1.5 days, cut at 7 days.
    conversion_delay_mean_days: float = 1.5
    conversion_window_days: float = 7.0
    # Audience members behind conversions and their consent to analytics use.
    subject_pool: int = 200_000
    consent_shares: tuple[float, float, float] = (0.85, 0.10, 0.05)  # true, false, not given (empty)
    landing_url_share: float = 0.6

    # Reviewers: how many, what share of suggestions they label, how noisy they are.
    n_reviewers: int = 8
    label_share: float = 0.10
    max_labels_per_reviewer_per_day: int = 400
    double_label_share: float = 0.15
    reviewer_noise_range: tuple[float, float] = (0.08, 0.30)
    comment_share: float = 0.2
    label_delay_hours: tuple[float, float] = (2.0, 40.0)

    # Bad rows: this share of each file's good rows, per defect kind, at least one of each kind
    # that the file's format can carry (malformed values only in CSV and JSONL).
    bad_row_share: float = 0.001
    # An unparseable extra signals file lands on this day (days after the simulation's start).
    unparseable_file_day: int = 1
    # Consented conversions per day whose subject id, URL and comment carry canary values.
    canaries_per_day: int = 3

    # Planted truths for the campaign-tuning tests (docs/simulator.md, "Planted effects"). All off by
    # default: the documented world and its numbers stay the same for the same seed.
    # (campaign_id, follower tier 0-3, factor): that campaign's posts by creators of the tier turn
    # clicks into conversions at ``factor`` times the usual rate (audiences largely bought).
    planted_tier_conversion: tuple[tuple[str, int, float], ...] = ()
    # (campaign_id, factor): audience fatigue. Each post a creator publishes in a week (its own
    # posts_per_week plus the campaign's sponsored cadence_posts_per_week) multiplies the
    # engagements of that campaign's posts by ``factor``: the more they post, the less each post gets.
    planted_cadence_fatigue: tuple[tuple[str, float], ...] = ()
    # Campaigns whose funnel does not depend on the creator at all: every post turns its
    # impressions into engagements, clicks and conversions at the same rates (a null control).
    planted_flat_response: tuple[str, ...] = ()

    # Attacks (docs/simulator.md, "Attacks"): attack name -> the days it happens (0-based, counted
    # from the simulation's start). Empty by default: no attack, and the documented world's files
    # stay byte-identical for the same seed. `attacks.attack_schedule` gives the standard schedule.
    attack_days: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    attack: AttackParams = field(default_factory=AttackParams)

    signals_per_day: int = 20_000
    # Only impressions and clicks are reported (no engagements, conversions or labels): a
    # click-only log, such as many recommenders keep.
    click_only: bool = False
    # Expected outcome-signal rows per served recommendation, used to size the daily traffic.
    signal_rows_per_recommendation: float = 23.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.attack_days) - set(ATTACKS))
        if unknown:
            raise ValueError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}")
        if any(d < 0 for days in self.attack_days.values() for d in days):
            raise ValueError("attack days are 0-based day indices and cannot be negative")
