"""`whylabel dashboard`: start the page from wherever whylabel is installed (a wheel, or this checkout).

The Streamlit settings are the ones in `.streamlit/config.toml`, shipped inside the package and passed as
command-line flags, so an installed page behaves like `make run` whatever folder it is started from.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import resources
from typing import Any

PACKAGE = resources.files("whylabel")


def settings() -> dict[str, Any]:
    """The shipped Streamlit settings as {"section.key": value}."""
    config = tomllib.loads((PACKAGE / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    return {f"{section}.{key}": value for section, values in config.items() for key, value in values.items()}


def flags(port: int, address: str | None = None) -> list[str]:
    """`streamlit run` flags: the shipped settings, the port, and the address to listen on when given."""
    chosen = {**settings(), "server.port": port}
    if address is not None:
        chosen["server.address"] = address
    return [f"--{name}={str(value).lower() if isinstance(value, bool) else value}" for name, value in chosen.items()]


def command(port: int, address: str | None = None) -> list[str]:
    """The command that serves the installed page (`whylabel/app.py`)."""
    return [sys.executable, "-m", "streamlit", "run", str(PACKAGE / "app.py"), *flags(port, address)]


def dashboard(port: int, address: str | None = None) -> int:
    """Serve the page until stopped (Ctrl-C); Streamlit's exit code."""
    try:
        return subprocess.call(command(port, address))
    except KeyboardInterrupt:
        return 0
