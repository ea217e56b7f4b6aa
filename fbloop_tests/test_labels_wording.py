"""The labeling app's words for numbers: chances, slots, confidence and the queue's reasons."""

import pytest

from fbloop_assets.lib.labeling.wording import chance, confidence, priority_sentence, reasons


@pytest.mark.parametrize(
    ("p", "words"),
    [
        (2.3e-7, "1 in 4,300,000"),  # the rank-1 pick: never "probability 0.00"
        (0.004, "1 in 250"),
        (0.0067, "1 in 150"),
        (0.01, "1%"),
        (0.234, "23%"),
        (0.999, "over 99%"),
    ],
)
def test_chance_reads_as_a_percentage_or_one_in_n(p: float, words: str) -> None:
    assert chance(p) == words


def test_a_top_slot_with_a_tiny_propensity_reads_without_contradiction() -> None:
    item = {"rank": 1, "propensity": 2.3e-7, "second_opinion": False}
    sentence = priority_sentence(item)
    assert sentence == (
        "Shown in slot 1 of the slate, the most prominent; "
        "the scorer would have put this creator there with a chance of only 1 in 4,300,000."
    )
    assert reasons(item) == ["high exposure (slot 1)", "uncertain pick (1 in 4,300,000)"]


def test_reasons_tell_second_opinions_exposure_and_uncertainty_apart() -> None:
    assert reasons({"rank": 7, "propensity": 0.6, "second_opinion": True}) == ["second opinion"]
    assert reasons({"rank": 2, "propensity": 0.6}) == ["high exposure (slot 2)"]
    assert reasons({"rank": 6, "propensity": 0.05}) == ["uncertain pick (5%)"]
    assert reasons({"rank": 6, "propensity": 0.6}) == ["first label"]


def test_confidence_is_the_level_words_everywhere() -> None:
    assert confidence(0.8) == "sure"
    assert confidence(0.2) == "a guess"
    assert confidence(0.75) == "sure, 0.75"  # an imported value between levels shows itself
