"""The README's promises that can be checked: every module is on its layout map."""

from __future__ import annotations

import re
from pathlib import Path

import zsmalloc

ROOT = Path(__file__).resolve().parents[1]
PKG = Path(zsmalloc.__file__).parent


def layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def sections(block: str) -> dict[str, str]:
    """``{"zs": "...", "": "<top-level lines>"}``: each ``  name/`` entry and its lines."""
    out: dict[str, str] = {"": ""}
    current = ""
    for line in block.splitlines():
        m = re.match(r"^  (\S+?)/\s", line + " ")
        if m:
            current = m.group(1)
            out[current] = line
        elif re.match(r"^  \S", line):
            current = ""
            out[""] += "\n" + line
        else:
            out[current] += "\n" + line
    return out


def test_every_module_is_on_the_layout_map() -> None:
    secs = sections(layout_block())
    missing = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.name == "__init__.py":
            continue
        if len(rel.parts) == 1:
            if rel.name not in secs[""] and rel.name not in layout_block():
                missing.append(str(rel))
        elif not re.search(rf"\b{re.escape(rel.stem)}\b", secs.get(rel.parts[0], "")):
            missing.append(str(rel))
    assert missing == [], f"modules missing from the README layout map: {missing}"


def test_every_package_on_the_map_exists() -> None:
    for name in sections(layout_block()):
        if name:
            assert (PKG / name).is_dir(), f"README layout names {name}/, which is not a package"
