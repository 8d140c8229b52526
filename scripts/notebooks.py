"""Build ``notebooks/*.ipynb`` from their readable sources ``notebooks/*.py``.

A source is a Python file in the "percent" format that Jupytext, VS Code and Spyder read: a line
``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell whose lines are comments
(``# text``). The notebooks are written without outputs, with stable cell ids, so that a diff of
a notebook shows only what its source changed.

    python scripts/notebooks.py           # (re)write every notebook from its source
    python scripts/notebooks.py --check   # exit 1, naming them, if a notebook is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_CELL = re.compile(r"^# %%(?P<markdown> \[markdown\])?\s*$")
_KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def parse(text: str, name: str = "source") -> list[tuple[str, str]]:
    """``[(kind, source), ...]`` of a percent-format file, kind "code" or "markdown"."""
    cells: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _CELL.match(line)
        if match:
            cells.append(("markdown" if match["markdown"] else "code", []))
        elif not cells:
            if line.strip():
                raise ValueError(f"{name}:{number}: text before the first '# %%' cell marker")
        elif cells[-1][0] == "markdown":
            if line.strip() and not line.startswith("#"):
                raise ValueError(f"{name}:{number}: a Markdown cell's lines start with '#'")
            cells[-1][1].append(line[2:] if line.startswith("# ") else line[1:])
        else:
            cells[-1][1].append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def build(source: Path) -> nbformat.NotebookNode:
    """The notebook of one source file, without outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(_KERNEL), "language_info": {"name": "python"}}
    for i, (kind, text) in enumerate(parse(source.read_text(), source.name)):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(text, id=f"{source.stem[:50]}-{i:02d}"))
    nbformat.validate(nb)
    return nb


def render(source: Path) -> str:
    return nbformat.writes(build(source)) + "\n"


def sources(folder: Path = NOTEBOOKS) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook is missing or out of date")
    args = parser.parse_args(argv)
    stale = []
    for src in sources():
        target = src.with_suffix(".ipynb")
        text = render(src)
        if target.is_file() and target.read_text() == text:
            continue
        stale.append(target)
        if not args.check:
            target.write_text(text)
    orphans = [p for p in NOTEBOOKS.glob("*.ipynb") if not p.with_suffix(".py").is_file()]
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    for path in orphans:
        print(f"no source: {path.relative_to(ROOT)} (write {path.with_suffix('.py').name})")
    return 1 if (args.check and stale) or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
