"""Resources: the page's default view on the largest packaged model (EfficientNet-Lite2, 260 px) stays under 2 GB.

Run in a fresh process so the peak (the kernel's high-water mark of resident memory) is this work's alone.
Linux only: it reads /proc.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LIMIT_BYTES = 2 * 1024**3

DEFAULT_VIEW = """
import json
from whylabel import explainers, models, trust

clf = models.load("efficientnet_lite2")
clf.engine()  # export, check and batch-size calibration, as the page does on load
image = models.sample_image("chelsea (cat)")
clf.predict(image)
methods = [name for name in explainers.available() if explainers.get(name).default_on]
atts = [explainers.explain(clf, image, method) for method in methods]
scores = [trust.evaluate(att) for att in atts]
trust.agreement([att.heatmap for att in atts])
# The kernel's high-water mark of this process's own memory. Not getrusage's ru_maxrss: that is kept across
# exec, so it would count the memory of the pytest process this one was started from.
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
peak = int(status["VmHWM"].split()[0]) * 1024  # kB
engine = clf.engine()
print(json.dumps({"methods": methods, "input_size": clf.input_size, "peak_bytes": peak, "batch": engine.batch_size,
                  "backend": engine.backend}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from /proc (Linux)")
def test_default_panels_on_a_260_px_model_peak_under_2_gb():
    done = subprocess.run([sys.executable, "-c", DEFAULT_VIEW], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["input_size"] == 260
    assert result["methods"] == ["saliency", "occlusion", "lime", "shap"]
    assert 0 < result["peak_bytes"] < LIMIT_BYTES, f"peak {result['peak_bytes'] / 1024**3:.2f} GB ({result})"
