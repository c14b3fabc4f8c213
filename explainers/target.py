"""What a map explains, worded once: "Why tabby (281)?" or "Why tabby (281) rather than tiger cat (282)?".

A map of a plain target explains the method's score of that class: its logit (gradient and occlusion methods)
or its probability (LIME, SHAP). A map of "A rather than B" explains the difference of the two classes' scores,
score(A) - score(B), in the method's own score (`explain.resolve_contrast`, `base.Job.versus`). The dashboard's
heading, the panel captions, the evidence figure and the report all take their words from a `Target`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from whylabel.explainers.base import Attribution
from whylabel.models import Classifier

Probabilities = Sequence[float] | Mapping[int, float] | np.ndarray
"""Anything that gives a class's probability by its index: `Prediction.probs`, or a dict of the two classes."""


@dataclass(frozen=True)
class Target:
    """The class explained and, optionally, the class it is contrasted with, with their labels.

    `score` is the kind of score a map explains ("logit", "probability"), or "score" where the words cover maps
    of either kind (the dashboard's heading above every panel).
    """

    index: int
    label: str
    contrast: int | None = None
    contrast_label: str | None = None
    score: str = "score"

    @classmethod
    def make(cls, clf: Classifier, index: int, contrast: int | None = None, score: str = "score") -> Target:
        """The target `index` of `clf`, "rather than" `contrast` when given; ValueError outside its labels."""
        for name, value in (("target", index), ("contrast", contrast)):
            if value is not None and not 0 <= value < len(clf.labels):
                raise ValueError(f"{name} {value} is not a class of {clf.name} (0 to {len(clf.labels) - 1})")
        if contrast == index:
            both = f"{clf.labels[index]!r} ({index})"
            raise ValueError(f"the contrast class must differ from the target; both are {both}")
        other = None if contrast is None else clf.labels[contrast]
        return cls(index, clf.labels[index], contrast, other, score)

    @classmethod
    def of(cls, att: Attribution) -> Target:
        """What one map explains, in its method's score."""
        return cls(att.target, att.label, att.contrast, att.contrast_label, att.score)

    @property
    def contrasted(self) -> bool:
        return self.contrast is not None

    @property
    def question(self) -> str:
        """The heading: "Why tabby (281)?" or "Why tabby (281) rather than tiger cat (282)?"."""
        return self.question_with(None)

    def question_with(self, probs: Probabilities | None) -> str:
        """The question with each class's probability: "Why tabby (281, p = 0.912) rather than …?"."""
        return f"Why {self._pair(probs, bold=False)}?"

    def plain(self, probs: Probabilities | None = None) -> str:
        """For a title or a report: "target tabby (281) rather than tiger cat (282)", with `p = …` if given."""
        return f"target {self._pair(probs, bold=False)}"

    @property
    def markdown(self) -> str:
        """For a caption in Markdown, the labels bold: "target **tabby** (281) rather than **tiger cat** (282)"."""
        return f"target {self._pair(None, bold=True)}"

    @property
    def score_name(self) -> str:
        """What the map explains: "logit(tabby)", or "logit(tabby) - logit(tiger cat)" for a contrast."""
        if self.contrast is None:
            return f"{self.score}({self.label})"
        return f"{self.score}({self.label}) - {self.score}({self.contrast_label})"

    def _pair(self, probs: Probabilities | None, bold: bool) -> str:
        text = _named(self.index, self.label, probs, bold)
        if self.contrast is None:
            return text
        return f"{text} rather than {_named(self.contrast, str(self.contrast_label), probs, bold)}"


def _named(index: int, label: str, probs: Probabilities | None, bold: bool) -> str:
    """ "tabby (281)", "**tabby** (281)" or "tabby (281, p = 0.912)"."""
    shown = f"**{label}**" if bold else label
    if probs is None:
        return f"{shown} ({index})"
    return f"{shown} ({index}, p = {float(probs[index]):.3f})"
