"""Resources: the page's default view on the largest packaged model (EfficientNet-Lite2, 260 px) stays under 2 GB.

Run in a fresh process so the peak (the kernel's high-water mark of resident memory) is this work's alone.
"""

from __future__ import annotations

import json
import subprocess
import sys

LIMIT_BYTES = 2 * 1024**3

DEFAULT_VIEW = """
import json, resource
import explainers, models

clf = models.load("efficientnet_lite2")
clf.engine()  # export, check and batch-size calibration, as the page does on load
image = models.sample_image("chelsea (cat)")
clf.predict(image)
methods = [name for name in explainers.available() if explainers.get(name).default_on]
atts = [explainers.explain(clf, image, method) for method in methods]
scores = [explainers.evaluate(clf, image, att) for att in atts]
explainers.trust.agreement([att.heatmap for att in atts])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
print(json.dumps({"methods": methods, "input_size": clf.input_size, "peak_bytes": peak}))
"""


def test_default_panels_on_a_260_px_model_peak_under_2_gb():
    done = subprocess.run([sys.executable, "-c", DEFAULT_VIEW], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["input_size"] == 260
    assert result["methods"] == ["saliency", "occlusion", "lime", "shap"]
    assert 0 < result["peak_bytes"] < LIMIT_BYTES, f"peak {result['peak_bytes'] / 1024**3:.2f} GB"
