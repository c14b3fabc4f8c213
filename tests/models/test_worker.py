"""An uploaded model is code: refused before it runs when it asks for more than tensor maths, and otherwise run
in an isolated worker that a hang, a huge allocation or a kill cannot take the server (or another session) down
with."""

from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from whylabel import explainers, models
from whylabel.models import remote, sandbox, worker
from whylabel.models.worker import WorkerError
from whylabel.trust import randomised

LABELS = b"cat\ndog\nfish\n"
SIZE = 16
PIXELS = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
pytestmark = pytest.mark.filterwarnings("ignore:.torch.jit.* is deprecated:DeprecationWarning")


class TwoConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3)))


class ReadsFile(nn.Module):
    """Returns the first bytes of a file as its logits, from inside a loop and a branch (nested blocks)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.mean(dim=(2, 3))
        for _ in range(1):
            if x.shape[1] == 3:
                secret = torch.from_file(self.path, size=3, dtype=torch.uint8).float()
                out = out * 0 + secret
        return out


class SavesFile(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.path)
        return x.mean(dim=(2, 3))


class Trap(nn.Module):
    """A working model, except on an all-white image (input mean above 0.99): then it never returns."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.mean() > 0.99):
            n = 0
            while n >= 0:
                n = n + 1
        return x.mean(dim=(2, 3)) * self.scale


class Endless(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = 0
        while n >= 0:
            n = n + 1
        return x.mean(dim=(2, 3))


class Hog(nn.Module):
    """Asks for 128 GB."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = torch.ones(34359738368)
        return x.mean(dim=(2, 3)) + big[:3]


def script(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buffer)
    return buffer.getvalue()


def upload(module: nn.Module, **kwargs) -> models.Classifier:
    return models.load_user_model(script(module), LABELS, "mine", input_size=SIZE, mean=(0, 0, 0), std=(1, 1, 1),
                                  crop=1.0, **kwargs)  # fmt: skip


def refused(match: str, load: Callable[[], object]) -> str:
    with pytest.raises(models.ModelError, match=match) as info:
        load()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


class Bystander:
    """Another session: explains a packaged-style model in a thread while the hostile call runs."""

    def __init__(self, clf: models.Classifier) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, args=(clf,), daemon=True)

    def run(self, clf: models.Classifier) -> None:
        try:
            img = Image.fromarray(PIXELS[0])
            for method in ("saliency", "occlusion"):
                explainers.explain(clf, img, method, target=0)
        except BaseException as err:  # reported by finished()
            self.error = err
        self.done.set()

    def __enter__(self) -> Bystander:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(60)

    def finished(self) -> bool:
        self.done.wait(60)
        if self.error is not None:
            raise self.error
        return self.done.is_set()


# --- the allowlist, before anything runs -------------------------------------------------------------------------


def test_a_file_reading_model_is_refused_with_the_op_named_and_its_bytes_never_returned(tmp_path, tiny_clf):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"XYZ")
    data = script(ReadsFile(str(secret)))
    with Bystander(tiny_clf) as other:
        message = refused("aten::from_file", lambda: models.load_user_model(data, LABELS, "thief", input_size=SIZE))
        assert other.finished()
    assert "XYZ" not in message and "88" not in message  # neither the bytes nor their values (X is 88)


def test_a_file_writing_model_is_refused_and_writes_nothing(tmp_path):
    target = tmp_path / "written.pt"
    refused("aten::save", lambda: upload(SavesFile(str(target))))
    assert not target.exists()


def test_the_graph_check_sees_into_loops_and_branches_and_passes_plain_networks(tmp_path):
    with pytest.raises(sandbox.UnsafeModel, match="aten::from_file"):
        sandbox.check_graph(torch.jit.script(ReadsFile(str(tmp_path / "x"))))
    sandbox.check_graph(torch.jit.script(TwoConv()))  # nothing raised
    sandbox.check_graph(torch.jit.trace(TwoConv().eval(), torch.rand(1, 3, SIZE, SIZE)))


def test_an_operator_of_an_unknown_library_is_refused():
    @torch.library.custom_op("whylabel_test::double", mutates_args=())
    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    class Custom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.whylabel_test.double(x).mean(dim=(2, 3))

    with pytest.raises(sandbox.UnsafeModel, match="whylabel_test::double"):
        sandbox.check_graph(torch.jit.script(Custom()))


def test_a_model_that_would_run_code_while_loading_is_refused():
    class Stateful(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

        @torch.jit.export
        def __getstate__(self) -> int:
            return 1

        @torch.jit.export
        def __setstate__(self, state: int) -> None:
            pass

    refused("defines __setstate__", lambda: upload(Stateful()))


def test_the_server_unpickles_no_object_a_worker_could_send():
    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os)\.system"):
        worker.safe_loads(pickle.dumps(("ok", Evil())))
    assert worker.safe_loads(pickle.dumps(("ok", np.arange(3.0), {"a": (1, "b")})))[1].tolist() == [0, 1, 2]


# --- limits in the worker ------------------------------------------------------------------------------------------


def test_an_endless_loop_is_stopped_within_the_limit_and_others_keep_working(monkeypatch, tiny_clf):
    monkeypatch.setattr(worker, "CALL_SECONDS", 3.0)
    start = time.perf_counter()
    with Bystander(tiny_clf) as other:
        refused("did not answer within 3 s", lambda: upload(Endless()))
        assert other.finished()
    assert time.perf_counter() - start < 3.0 + worker.START_SECONDS


def test_a_huge_allocation_is_refused_in_the_worker(tiny_clf):
    with Bystander(tiny_clf) as other:
        refused("(?i)alloc|memory", lambda: upload(Hog()))
        assert other.finished()


def test_a_hang_on_one_image_stops_the_worker_and_the_next_call_gets_a_fresh_one(monkeypatch, tiny_clf, caplog):
    clf = upload(Trap())
    monkeypatch.setattr(worker, "CALL_SECONDS", 3.0)
    white = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    with Bystander(tiny_clf) as other:
        with pytest.raises(WorkerError, match="did not answer within 3 s"):
            clf.predict(white)
        assert other.finished()
    assert "logits took over 3 s; its worker was stopped" in caplog.text  # the server log says what happened
    grey = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    expected = torch.softmax(torch.tensor([1.0, 2, 3]) * 128 / 255, 0)
    np.testing.assert_allclose(clf.predict(grey).probs, expected, rtol=1e-6)
    assert clf.worker.starts == 2


def test_a_worker_killed_mid_run_says_so_and_is_replaced(tiny_clf):
    clf = upload(Trap())
    white = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    caught: list[BaseException] = []

    def hang() -> None:
        try:
            clf.predict(white)
        except BaseException as err:
            caught.append(err)

    thread = threading.Thread(target=hang)
    thread.start()
    time.sleep(1.0)
    os.kill(clf.worker.process.pid, signal.SIGKILL)
    thread.join(30)
    assert len(caught) == 1 and isinstance(caught[0], WorkerError)
    assert "killed by signal 9" in str(caught[0])
    with Bystander(tiny_clf) as other:
        att = explainers.explain(clf, Image.fromarray(PIXELS[0]), "saliency", target=1)
        assert other.finished()
    assert att.heatmap.shape == (SIZE, SIZE) and clf.worker.starts == 2


# --- everything a user's model did before, through the worker ---------------------------------------------------


def test_every_method_on_a_user_model_equals_the_same_network_in_process():
    network = TwoConv().eval()
    clf = upload(network)
    local = models.from_module(torch.jit.script(network), ["cat", "dog", "fish"], SIZE, (0, 0, 0), (1, 1, 1), 1.0)
    assert isinstance(clf, remote.RemoteClassifier) and isinstance(clf.module, remote.InWorker)
    img = Image.fromarray(PIXELS[1])
    for method, params in (("saliency", {}), ("integrated_gradients", {"steps": 8}), ("occlusion", {"window": 4}),
                           ("lime", {"samples": 40, "n_segments": 6}), ("shap", {"evaluations": 40})):  # fmt: skip
        theirs = explainers.explain(clf, img, method, target=2, **params)
        ours = explainers.explain(local, img, method, target=2, **params)
        np.testing.assert_allclose(theirs.heatmap, ours.heatmap, rtol=1e-4, atol=1e-6, err_msg=method)


def test_a_user_model_is_randomised_in_its_worker_and_the_original_is_untouched():
    clf = upload(TwoConv())
    before = clf.logits(PIXELS)
    shuffled = randomised(clf, layers=1)
    torch.testing.assert_close(clf.logits(PIXELS), before)
    assert not torch.allclose(shuffled.logits(PIXELS), before)
    assert clf.layer_names[0] == "head"


ORPHAN = """
import os, sys, threading, time
sys.path.insert(0, {folder!r})
from PIL import Image
from test_worker import SIZE, Trap, upload
clf = upload(Trap())
print(clf.worker.process.pid, flush=True)
threading.Thread(target=clf.predict, args=(Image.new("RGB", (SIZE, SIZE), (255, 255, 255)),), daemon=True).start()
time.sleep(1.0)
os._exit(0)  # the server dies while its worker loops
"""


def test_a_worker_ends_when_its_server_does_even_mid_loop():
    script = ORPHAN.format(folder=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running(pid):
        time.sleep(0.2)
    assert not running(pid), "the orphaned worker kept running"


def running(pid: int) -> bool:
    """Whether a process exists and has not ended (a zombie waiting to be reaped has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
