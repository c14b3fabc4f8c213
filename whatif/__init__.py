"""What-if: edits of superpixels, not maps. The fewest superpixels whose hiding changes the decision
(`counterfactual`) and the fewest that alone keep it (`sufficient`), on the classifier's fast engine.

A room above `whylabel.explainers` (it uses their hiding and superpixels) and `whylabel.models`; nothing
below imports it. Its result is an `Edit`, not an `Attribution`.
"""

from whylabel.whatif.search import PARAMS, Edit, counterfactual, sufficient, superpixels

__all__ = ["PARAMS", "Edit", "counterfactual", "sufficient", "superpixels"]
