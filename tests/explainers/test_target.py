"""`Target`: the question a map answers and the score it explains, worded once, the strings written out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from whylabel import explainers
from whylabel.explainers import Target


def test_a_contrast_asks_why_a_rather_than_b(tiny_clf):
    target = Target.make(tiny_clf, 1, 0)

    assert target == Target(1, "dog", 0, "cat")
    assert target.question == "Why dog (1) rather than cat (0)?"
    assert target.markdown == "target **dog** (1) rather than **cat** (0)"
    assert target.plain() == "target dog (1) rather than cat (0)"
    assert target.score_name == "score(dog) - score(cat)"
    assert target.contrasted


def test_a_plain_target_asks_why_a_and_has_no_rather_than(tiny_clf):
    target = Target.make(tiny_clf, 2)

    assert target.question == "Why fish (2)?"
    assert target.markdown == "target **fish** (2)"
    assert target.plain() == "target fish (2)"
    assert target.plain(np.array([0.25, 0.125, 0.625])) == "target fish (2, p = 0.625)"
    assert target.score_name == "score(fish)"
    assert not target.contrasted
    words = [target.question, target.markdown, target.plain(), target.question_with([0.1, 0.2, 0.7])]
    assert all("rather than" not in text for text in words)


def test_probabilities_are_given_by_class_index(tiny_clf):
    target = Target.make(tiny_clf, 1, 2)
    probs = {1: 0.9123, 2: 0.05}

    assert target.question_with(probs) == "Why dog (1, p = 0.912) rather than fish (2, p = 0.050)?"
    assert target.plain(np.array([0.0, 0.9123, 0.05])) == "target dog (1, p = 0.912) rather than fish (2, p = 0.050)"


def test_the_score_named_is_the_methods_own(tiny_clf):
    assert Target.make(tiny_clf, 2, 0, score="logit").score_name == "logit(fish) - logit(cat)"
    assert Target(0, "cat", score="probability").score_name == "probability(cat)"


def test_of_an_attribution_is_what_that_map_explains(tiny_clf, noise_image):
    image = noise_image(16, 16)
    saliency = explainers.explain(tiny_clf, image, "saliency", target=2, contrast=0)
    lime = explainers.explain(tiny_clf, image, "lime", target=1, samples=12, n_segments=6)

    assert Target.of(saliency) == Target(2, "fish", 0, "cat", "logit")
    assert Target.of(saliency).question == "Why fish (2) rather than cat (0)?"
    assert Target.of(saliency).score_name == "logit(fish) - logit(cat)"
    assert Target.of(lime) == Target(1, "dog", None, None, "probability")
    assert Target.of(lime).score_name == "probability(dog)"


@pytest.mark.parametrize(
    ("index", "contrast", "message"),
    [(3, None, "target 3 is not a class of tiny"), (0, -1, "contrast -1"), (1, 1, "must differ")],
)
def test_make_refuses_a_class_outside_the_labels_or_the_target_twice(tiny_clf, index, contrast, message):
    with pytest.raises(ValueError, match=message):
        Target.make(tiny_clf, index, contrast)


def test_a_target_is_a_frozen_hashable_value(tiny_clf):
    target = Target.make(tiny_clf, 1, 0)

    with pytest.raises(dataclasses.FrozenInstanceError):
        target.index = 2  # type: ignore[misc]
    assert hash(target) == hash(Target(1, "dog", 0, "cat"))
