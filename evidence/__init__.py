"""Evidence a model card can cite: a figure, a provenance record, the raw maps and a report, for one image
(from the dashboard's "Download evidence" button) or for many (the `whylabel explain` command), and the
audit's self-contained report.

May import: whylabel.render, whylabel.audit, whylabel.trust, whylabel.whatif, whylabel.explainers,
whylabel.models, whylabel.store.
"""

from whylabel.evidence.bundle import files, write, zip_bytes
from whylabel.evidence.record import Evidence, collect, heatmap_sha256

__all__ = ["Evidence", "collect", "files", "heatmap_sha256", "write", "zip_bytes"]
