"""The README's table of the lecture's claims shows what the pages in docs/experiments say.

Each row names an experiment, its verdict and the minutes its quick run took; the record beside
its page (docs/experiments/NAME.json, written by `convzoo experiment`) is the source of both, so a
regenerated page with another verdict fails here until the README follows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from convzoo.experiments import list_experiments

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| \[(?P<name>[a-z0-9-]+)\]\(docs/experiments/(?P=name)\.md\) \|"
                 r"(?P<claim>[^|]+)\|(?P<verdict>[^|]+)\|(?P<minutes>[^|]+)\|$")


def readme_rows() -> dict[str, dict[str, str]]:
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        m = ROW.match(line.strip())
        if m:
            rows[m["name"]] = {k: m[k].strip() for k in ("claim", "verdict", "minutes")}
    return rows


def test_every_experiment_has_a_row():
    assert sorted(readme_rows()) == sorted(e.name for e in list_experiments())


def test_rows_match_the_pages_records():
    for name, row in readme_rows().items():
        rec = json.loads((REPO / "docs" / "experiments" / f"{name}.json").read_text())
        assert rec["profile"] == "quick", f"{name}: the README quotes the quick profile"
        assert row["verdict"] == rec["verdict"], name
        minutes = (rec.get("train_wall_s") or rec["wall_s"]) / 60
        assert row["minutes"] == f"{minutes:.1f}", name
        assert minutes <= 20, f"{name}: quick must fit 20 minutes on the 2-core CPU"


LONG_ROW = re.compile(r"^\| \[(?P<name>[a-z0-9-]+), long profile\]\(docs/experiments/long/"
                      r"(?P=name)\.md\) \|(?P<claim>[^|]+)\|(?P<verdict>[^|]+)\|"
                      r"(?P<minutes>[^|]+)\|$")


def test_long_profile_rows_match_their_pages_records():
    """A `long` profile's row (relu-vs-tanh: an hour of a 2-core CPU) quotes its own record."""
    rows = [m for line in (REPO / "README.md").read_text().splitlines()
            if (m := LONG_ROW.match(line.strip()))]
    for m in rows:
        rec = json.loads((REPO / "docs" / "experiments" / "long" / f"{m['name']}.json")
                         .read_text())
        assert rec["profile"] == "long", m["name"]
        assert m["verdict"].strip() == rec["verdict"], m["name"]
        minutes = (rec.get("train_wall_s") or rec["wall_s"]) / 60
        assert m["minutes"].strip() == f"{minutes:.1f}", m["name"]
