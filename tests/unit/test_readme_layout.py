"""The README's Layout section names every package folder there is, and only folders that exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Folders whose Python packages (and sub-packages) the Layout must name one by one.
PACKAGE_ROOTS = ("server", "rest_bridge", "clients/python/tokenwire")
# Top-level folders of the checkout that the Layout must name.
EXCLUDED_TOP = {".ci", ".git", ".venv", ".github"}


def layout_entries() -> dict[str, str]:
    """path -> description, from the first code block under '## Layout'."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1]
    block = section.split("```", 2)[1]
    entries = {}
    for line in block.splitlines()[1:]:
        match = re.match(r"(\S+/)\s+(.*)", line)
        if match:
            entries[match.group(1).rstrip("/")] = match.group(2)
    return entries


def tracked_folders() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return {str(Path(f).parent) for f in files} | {f.split("/", 1)[0] for f in files if "/" in f}


def package_folders() -> set[str]:
    folders = set()
    for root in PACKAGE_ROOTS:
        for init in (ROOT / root).rglob("__init__.py"):
            folder = init.parent.relative_to(ROOT).as_posix()
            if "__pycache__" not in folder:
                folders.add(folder)
    return folders


def test_every_listed_folder_exists():
    missing = [path for path in layout_entries() if not (ROOT / path).is_dir()]
    assert not missing, f"README Layout lists folders that do not exist: {missing}"


def test_every_package_and_top_level_folder_is_listed():
    listed = set(layout_entries())
    top = {f for f in tracked_folders() if "/" not in f and f != "." and f not in EXCLUDED_TOP}
    # Generated code is named by its parent (clients/python/tokenwire/v1 is "generated").
    wanted = {f for f in package_folders() | top if not f.endswith("/v1")}
    unlisted = sorted(wanted - listed - {"clients"} - {"clients/python/tokenwire"})
    assert not unlisted, f"README Layout does not list: {unlisted}"
    assert "clients/python" in listed


def test_every_entry_says_what_it_holds():
    empty = [path for path, text in layout_entries().items() if len(text.split()) < 2]
    assert not empty, f"README Layout entries without a description: {empty}"
