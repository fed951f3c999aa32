"""MkDocs hooks (``hooks:`` in mkdocs.yml).

The configuration reference is rendered from the config schema of this checkout at every build
(``mlops_cli.config_reference``, in a fresh interpreter, so ``mkdocs serve`` shows an edit to
the schema too) between the markers of ``docs/reference/configuration.md``, whatever the copy in
the repository says: the site cannot serve a stale reference, and a page without its markers
fails the build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
PAGE = "reference/configuration.md"
SCHEMA = ROOT / "layers" / "core" / "mlops" / "domain"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    return render_reference(markdown)


def on_serve(server: Any, **kwargs: Any) -> Any:
    server.watch(str(SCHEMA))
    return server


def render_reference(markdown: str) -> str:
    """The page with the reference rendered from this checkout's code, whatever the
    environment has installed."""
    paths = [str(ROOT / "layers" / "core"), str(ROOT / "cli")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-m", "mlops_cli.config_reference", "--splice"],
        input=markdown,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise PluginError(f"the configuration reference failed to render:\n{done.stderr}")
    return done.stdout
