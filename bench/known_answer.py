"""Known-answer models: real photos with planted evidence, and a model that uses that evidence and nothing else.

Each `Case` plants patches in a real photo (scikit-image's) at the model's input size: a red/green checkerboard
(texture), a flat magenta square (a flat colour region), two checkerboards at once (two regions), a flat cyan
square that lowers the target's score (evidence against) and, in every case, a flat yellow square that raises
a rival class (what a contrastive map "target rather than rival" must count against). The model is a small CNN
whose detectors fire on those patches only (a test checks that on the clean photo they are silent and that
replacing everything outside the evidence leaves the logits unchanged), so the right map is known:

- the target's score is g_for * (checkerboard + magenta responses) - g_against * (cyan response);
- the rival's is g_rival * (yellow response); a background class scores 0.

`share` is the measure every method's default map is held to: the fraction of its positive attribution that lies
within the evidence, dilated by MARGIN pixels (a detector's 8-pixel kernel straddles a patch's edge). A signed
map's evidence is where the score's evidence *for* lies; an unsigned map (magnitudes) may also show the evidence
against and the rival's, which the score uses too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import skimage.data
import torch
from PIL import Image
from scipy.ndimage import binary_dilation
from skimage.transform import resize

from whylabel import explainers, models

SIZE = 224
MARGIN = 3
"""Pixels around a patch that still count as within the evidence."""
PASS_SHARE = 0.7
SQUARE = 4
"""Side of one checkerboard square, in pixels; the detector's kernel spans two squares each way."""
KERNEL = 2 * SQUARE
FLAT_THRESHOLD = 1.7
CHECKER_MATCH = 0.6
"""The checkerboard detector fires above this share of a perfect match."""
"""A flat-colour detector fires on (+-1 per channel) . pixel above this: only near-saturated colours."""
LABELS = ("background", "target", "rival")
TARGET, RIVAL = 1, 2
COLOURS = {"magenta": (255, 0, 255), "cyan": (0, 255, 255), "yellow": (255, 255, 0)}
LOGIT_FOR, LOGIT_AGAINST, LOGIT_RIVAL = 4.0, 1.5, 2.0
"""The logits the planted evidence adds up to: strong enough to decide, not so strong that probabilities saturate."""


@dataclass(frozen=True)
class Patch:
    kind: str
    """"checker" (red/green checkerboard) or a flat colour of COLOURS."""
    top: int
    left: int
    side: int

    def mask(self) -> np.ndarray:
        out = np.zeros((SIZE, SIZE), bool)
        out[self.top : self.top + self.side, self.left : self.left + self.side] = True
        return out

    def paint(self, pixels: np.ndarray) -> None:
        region = pixels[self.top : self.top + self.side, self.left : self.left + self.side]
        if self.kind == "checker":
            rows, cols = np.indices(region.shape[:2])
            red = (rows // SQUARE + cols // SQUARE) % 2 == 0
            region[:] = np.where(red[..., None], (255, 0, 0), (0, 255, 0))
        else:
            region[:] = COLOURS[self.kind]


@dataclass(frozen=True)
class Case:
    """One photo, the evidence planted in it, and the kind of evidence it tests."""

    name: str
    photo: str
    evidence: tuple[Patch, ...]
    rival: Patch
    against: tuple[Patch, ...] = field(default=())

    def image(self) -> Image.Image:
        pixels = photo(self.photo)
        for patch in (*self.evidence, *self.against, self.rival):
            patch.paint(pixels)
        return Image.fromarray(pixels)

    def model(self) -> models.Classifier:
        """The case's classifier, built once per process (its fast engine is measured when first used)."""
        return classifier(self)

    def regions(self, signed: bool, contrast: bool) -> np.ndarray:
        """Where a map's positive attribution belongs (before the margin)."""
        patches = list(self.evidence)
        if not signed:
            patches += [*self.against, *([self.rival] if contrast else [])]
        return np.logical_or.reduce([p.mask() for p in patches])


@functools.cache
def classifier(case: Case) -> models.Classifier:
    return models.from_module(
        Planted(case), list(LABELS), SIZE, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0, name=f"planted {case.name}"
    )


def photo(name: str) -> np.ndarray:
    """A scikit-image photo as uint8 (SIZE, SIZE, 3): its central square, resized."""
    image = getattr(skimage.data, name)()
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side, :3]
    return (resize(square, (SIZE, SIZE), anti_aliasing=True) * 255).round().astype(np.uint8)


CASES = (
    Case("texture, top left", "chelsea", (Patch("checker", 16, 20, 48),), Patch("yellow", 170, 170, 32)),
    Case("texture, small, bottom right", "coffee", (Patch("checker", 172, 180, 32),), Patch("yellow", 20, 30, 32)),
    Case("texture, large, centre", "astronaut", (Patch("checker", 72, 64, 88),), Patch("yellow", 12, 180, 28)),
    Case("flat colour region", "rocket", (Patch("magenta", 90, 24, 56),), Patch("yellow", 30, 160, 32)),
    Case(
        "two separate regions",
        "chelsea",
        (Patch("checker", 150, 24, 36), Patch("checker", 28, 150, 36)),
        Patch("yellow", 100, 100, 24),
    ),
    Case(
        "evidence against",
        "coffee",
        (Patch("checker", 120, 28, 48),),
        Patch("yellow", 20, 20, 28),
        against=(Patch("cyan", 40, 140, 48),),
    ),
)


class Planted(torch.nn.Module):
    """Detectors (a texture and a colour convolution, ReLU), a 1x1 feature convolution, sum pooling and a fixed
    linear head: the shape of a small CNN, with a last convolution for Grad-CAM and ReLU modules for guided
    backpropagation.

    Channels: 0-1 the checkerboard in both phases, 2 magenta, 3 cyan, 4 yellow. Each flat-colour detector fires
    by (colour . pixel) - FLAT_THRESHOLD on pixels in [0, 1], so only near-saturated colours pass; the
    checkerboard's fires on (R - G) correlated with the pattern above CHECKER_MATCH of a perfect match.
    The gains scale each case's planted evidence to the logits LOGIT_FOR, LOGIT_AGAINST and LOGIT_RIVAL.
    """

    def __init__(self, case: Case) -> None:
        super().__init__()
        self.pad = torch.nn.ZeroPad2d((KERNEL // 2 - 1, KERNEL // 2) * 2)  # output pixel i sees inputs i-3 .. i+4
        # The checkerboard kernel is separable (a +-1 block pattern down times one across), so it is two 1-D
        # convolutions of R - G: a sixteenth of the work of the 8 x 8 one, the same responses.
        self.down = torch.nn.Conv2d(1, 1, (KERNEL, 1), bias=False)
        self.across = torch.nn.Conv2d(1, 1, (1, KERNEL), bias=False)
        self.colour = torch.nn.Conv2d(3, 3, 1)
        self.relu = torch.nn.ReLU()
        self.features = torch.nn.Conv2d(5, 5, 1, bias=False)
        self.head = torch.nn.Linear(5, len(LABELS))
        with torch.no_grad():
            blocks = torch.tensor([1.0 if (i // SQUARE) % 2 == 0 else -1.0 for i in range(KERNEL)])
            self.down.weight.copy_(blocks.view(1, 1, KERNEL, 1))
            self.across.weight.copy_(blocks.view(1, 1, 1, KERNEL))
            for channel, colour in enumerate(("magenta", "cyan", "yellow")):
                weights = np.where(np.array(COLOURS[colour]) > 0, 1.0, -1.0)
                self.colour.weight[channel, :, 0, 0] = torch.from_numpy(weights).float()
            self.colour.bias.fill_(-FLAT_THRESHOLD)
            self.features.weight.copy_(torch.eye(5)[..., None, None])
            self.head.weight.zero_()
            self.head.bias.zero_()
        self.calibrate(case)

    def responses(self, x: torch.Tensor) -> torch.Tensor:
        """Summed detector responses per channel, (N, 5)."""
        match = self.across(self.down(self.pad(x[:, :1] - x[:, 1:2])))  # +-64 on a checkerboard in either phase
        threshold = CHECKER_MATCH * KERNEL * KERNEL
        found = torch.cat([match - threshold, -match - threshold, self.colour(x)], dim=1)
        return self.features(self.relu(found)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.responses(x))

    def calibrate(self, case: Case) -> None:
        pixels = np.asarray(case.image(), dtype=np.float32) / 255
        with torch.no_grad():
            found = self.responses(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0]
            self.head.weight[TARGET, :3] = LOGIT_FOR / float(found[:3].sum())
            if case.against:
                self.head.weight[TARGET, 3] = -LOGIT_AGAINST / float(found[3])
            self.head.weight[RIVAL, 4] = LOGIT_RIVAL / float(found[4])


def share(heatmap: np.ndarray, regions: np.ndarray, margin: int = MARGIN) -> float:
    """The fraction of a map's positive attribution within `regions` dilated by `margin` pixels (0 for none)."""
    positive = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = positive.sum()
    if total <= 0:
        return 0.0
    within = binary_dilation(regions, iterations=margin) if margin else regions
    return float(positive[within].sum() / total)


def negative_share(heatmap: np.ndarray, regions: np.ndarray, margin: int = MARGIN) -> float:
    """The same for a signed map's negative attribution (evidence against)."""
    return share(-np.asarray(heatmap), regions, margin)


def case_share(case: Case, method: str, contrast: bool = False, **params: object) -> float:
    """One method's share on one case, for the target (or the target rather than the rival)."""
    att = explainers.explain(
        case.model(), case.image(), method, target=TARGET, contrast=RIVAL if contrast else None, **params
    )
    return share(att.heatmap, case.regions(explainers.get(method).signed, contrast))
