"""What-if: edits of superpixels, not maps. The fewest superpixels whose hiding changes the decision
(`counterfactual`) and the fewest that alone keep it (`sufficient`), on the classifier's fast engine. Its
result is an `Edit`, not an `Attribution`.

May import: whylabel.explainers (their hiding and superpixels), whylabel.models, whylabel.store.
"""

from whylabel.whatif.search import (
    PARAMS,
    Edit,
    clicked,
    counterfactual,
    edited_image,
    edited_view,
    sufficient,
    superpixels,
)

__all__ = ["PARAMS", "Edit", "clicked", "counterfactual", "edited_image", "edited_view", "sufficient", "superpixels"]
