"""Guarantee that no hook a method adds survives it, even when the method raises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def hook_ids(module: torch.nn.Module) -> dict[tuple[str, str], set[int]]:
    """Every hook id on every submodule, by (submodule name, hook kind)."""
    return {
        (name, kind): set(getattr(sub, kind, {}))
        for name, sub in module.named_modules()
        for kind in HOOK_DICTS
        if getattr(sub, kind, None)
    }


@contextmanager
def no_leaked_hooks(module: torch.nn.Module) -> Iterator[None]:
    """Remove, on the way out, every hook added to `module` or its submodules inside the block."""
    before = hook_ids(module)
    try:
        yield
    finally:
        subs = dict(module.named_modules())
        for (name, kind), ids in hook_ids(module).items():
            hooks = getattr(subs[name], kind)
            for hook_id in ids - before.get((name, kind), set()):
                hooks.pop(hook_id, None)
