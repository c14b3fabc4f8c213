"""The rooms: each room's docstring says what it may import, and the code keeps to it.

Read from the source (no module is imported): every `whylabel.*` import of every module, at the top, in a
function or in a class, except those under `if TYPE_CHECKING:` (type hints only, never run). The floors
are the order the declarations make; a room importing one not declared, a cycle between rooms, or a
`whylabel` import hidden in a function body (outside the few listed here, each with its reason) fails.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("store", "models", "explainers", "trust", "whatif", "audit", "render", "evidence", "cli", "ui")
TOP = {"app": {"ui"}, "__main__": {"cli"}, "__init__": set()}
"""The package's own top-level modules and the rooms each may import."""
IN_FUNCTIONS = {("cli/main.py", "whylabel.ui")}
"""`whylabel dashboard` imports Streamlit's page only when asked for: every other command starts without it."""


def declared(room: str) -> set[str]:
    """The rooms named after "May import:" in the room's docstring (asides in brackets left out)."""
    doc = ast.get_docstring(ast.parse((ROOT / room / "__init__.py").read_text())) or ""
    found = re.search(r"May import:(.*?)(?:\.\s|\.$)", re.sub(r"\([^)]*\)", "", doc), re.S)
    assert found, f"{room}/__init__.py's docstring has no 'May import:' sentence"
    return set(re.findall(r"whylabel\.(\w+)", found.group(1)))


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, inside a function) for each `whylabel` import of a file, type-checking-only imports left out."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "whylabel":
                if child.module == "whylabel":
                    found.extend((f"whylabel.{alias.name}", inside) for alias in child.names)
                else:
                    found.append((child.module, inside))
            elif isinstance(child, ast.Import):
                found.extend((alias.name, inside) for alias in child.names if alias.name.split(".")[0] == "whylabel")
            visit(child, inside)

    visit(ast.parse(path.read_text()), False)
    return found


def sources() -> list[tuple[str, Path]]:
    """(room, file) for every shipped Python file; the top-level modules are rooms of their own."""
    files = [(path.stem, path) for path in sorted(ROOT.glob("*.py"))]
    files += [(room, path) for room in ROOMS for path in sorted((ROOT / room).rglob("*.py"))]
    return files


def used_rooms(room: str, path: Path) -> set[str]:
    rooms = {module.split(".")[1] for module, _ in imports(path) if module.count(".") >= 1}
    return rooms - {room, "__version__"}


def test_every_room_declares_what_it_may_import_and_the_declarations_have_floors():
    allowed = {room: declared(room) for room in ROOMS}
    for room, rooms in allowed.items():
        assert rooms <= set(ROOMS), f"{room} declares unknown rooms {rooms - set(ROOMS)}"
    order: list[str] = []
    left = dict(allowed)
    while left:  # peel off the rooms whose declared imports are all placed: a cycle leaves some behind
        ready = sorted(room for room, rooms in left.items() if rooms <= set(order))
        assert ready, f"the declared imports of {sorted(left)} form a cycle"
        order += ready
        for room in ready:
            del left[room]
    assert order[0] == "store" and set(order[-2:]) == {"cli", "ui"}, order


def test_no_room_imports_one_it_does_not_declare():
    allowed = {**{room: declared(room) for room in ROOMS}, **TOP}
    wrong = {}
    for room, path in sources():
        extra = used_rooms(room, path) - allowed[room]
        if extra:
            wrong[str(path.relative_to(ROOT))] = sorted(extra)
    assert wrong == {}


def test_only_the_top_floor_reaches_the_page_or_the_commands():
    for room, path in sources():
        reached = used_rooms(room, path) & {"ui", "cli"}
        if room not in ("app", "__main__", "ui", "cli"):
            assert not reached, f"{path.relative_to(ROOT)} imports {reached}"
        if room == "ui":
            assert "cli" not in reached, f"{path.relative_to(ROOT)} imports the commands"


def test_no_whylabel_import_hides_in_a_function_body():
    hidden = {
        (str(path.relative_to(ROOT)), module)
        for _, path in sources()
        for module, in_function in imports(path)
        if in_function
    }
    assert hidden == IN_FUNCTIONS


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from whylabel import models, trust\n", [("whylabel.models", False), ("whylabel.trust", False)]),
        ("def f():\n    from whylabel.ui import launch\n", [("whylabel.ui", True)]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from whylabel.ui import x\n", []),
        ("import whylabel.cli.main\nimport numpy\n", [("whylabel.cli.main", False)]),
    ],
)
def test_the_import_reader_on_known_sources(tmp_path, source, expected):
    path = tmp_path / "module.py"
    path.write_text(source)
    assert imports(path) == expected


def test_the_declaration_reader_leaves_asides_out(tmp_path, monkeypatch):
    room = tmp_path / "room"
    room.mkdir()
    (room / "__init__.py").write_text(
        '"""A room.\n\nMay import: whylabel.a (not whylabel.b), whylabel.c. See whylabel.d."""\n'
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert declared("room") == {"a", "c"}
