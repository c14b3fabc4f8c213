"""What an uploaded TorchScript model may do: pure tensor operations, checked before it runs.

A TorchScript file is code (PyTorch's security policy says so): its forward can call any operator the
TorchScript runtime knows, `aten::from_file` and `aten::save` included, so a model could read or write the
server's files and return their bytes as logits. Two checks, both before the model computes anything:

- `check_archive`: the archive may define no `__setstate__`, the one method `torch.jit.load` itself runs;
- `check_graph`: every node of the inlined forward graph, nested blocks (loops, branches) included, must be
  on the allowlist: the `aten::` operators this PyTorch registers and TorchScript's own `prim::` nodes
  (constants, attributes, lists, branches, loops), less those that touch files, processes, other machines,
  threads, global state or Python. Anything else (another namespace, a custom op library) is unknown and
  refused.

The refusal names the operator. The isolated worker (`models.worker`) adds the operating system's limits.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from functools import cache

import torch

ALLOWED_NAMESPACES = ("aten::", "prim::")
DENIED = frozenset(
    {
        # files
        "aten::from_file",
        "aten::save",
        # other processes, machines and threads
        "prim::fork",
        "aten::wait",
        "prim::rpc_async",
        "prim::rpc_sync",
        "prim::rpc_remote",
        "prim::awaitable",
        "prim::awaitable_nowait",
        "prim::awaitable_wait",
        # Python, which TorchScript cannot check
        "prim::PythonOp",
        "prim::CallFunction",
        "prim::CallMethod",
        # global state every later call would inherit
        "aten::manual_seed",
        "aten::seed",
        "aten::_cufft_set_plan_cache_max_size",
        # writes to the server's log
        "prim::Print",
        "aten::_print",
        "prim::profile",
        "prim::profile_ivalue",
    }
)
"""Operators of the allowed namespaces that are not pure tensor operations."""
SETSTATE = re.compile(rb"\bdef\s+__setstate__\s*\(")


class UnsafeModel(ValueError):
    """A model that asks for something a pure tensor computation does not need; the message names it."""


@cache
def known_operators() -> frozenset[str]:
    """Every operator this TorchScript runtime registers in the allowed namespaces."""
    names = {schema.name for schema in torch._C._jit_get_all_schemas()}
    return frozenset(name for name in names if name.startswith(ALLOWED_NAMESPACES))


def allowed(kind: str) -> bool:
    """Whether a graph node's kind is on the allowlist."""
    if kind in DENIED:
        return False
    return kind.startswith("prim::") or kind in known_operators()  # TorchScript's structure, or a registered aten op


def check_archive(data: bytes) -> None:
    """UnsafeModel if the TorchScript archive defines `__setstate__`, which loading it would run."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if "/code/" in name and name.endswith(".py") and SETSTATE.search(archive.read(name)):
                raise UnsafeModel(
                    "The TorchScript file defines __setstate__, code that loading it would run; whylabel does not "
                    "load such files. Script the model without a custom __setstate__."
                )


def check_graph(module: torch.jit.ScriptModule) -> None:
    """UnsafeModel naming the first operator of the forward graph that is not on the allowlist."""
    graph = module.inlined_graph if hasattr(module, "inlined_graph") else module.forward.graph  # type: ignore[attr-defined]
    for kind in sorted(set(kinds(graph))):
        if not allowed(kind):
            raise UnsafeModel(
                f"The model's forward uses {kind}, which is not a pure tensor operation (files, processes, "
                "Python calls, custom or unknown operators are refused); whylabel does not run it."
            )


def kinds(block: torch._C.Graph | torch._C.Block) -> Iterator[str]:
    """The kind of every node in a graph or block and in the blocks nested in its nodes."""
    for node in block.nodes():
        yield node.kind()
        for inner in node.blocks():
            yield from kinds(inner)
