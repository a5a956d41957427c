"""docs/kernel-map.md's table of tagged departures is the grep it says it is."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MM = ROOT / "ksmrepro" / "mm"
TAG = re.compile(r"\b(STUB|CUSTOM|SIM-ONLY):")
ROW = re.compile(r"^\| `([a-z_]+\.py):(\d+)` \| (CUSTOM|STUB|SIM-ONLY) \|", re.M)


def _tags_in_code() -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(MM.glob("*.py")):
        if path.name == "__init__.py":  # defines the tags
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = TAG.search(line)
            if m:
                found.add((path.name, n, m.group(1)))
    return found


def test_every_tag_in_the_code_is_in_the_table_at_its_line():
    doc = (ROOT / "docs" / "kernel-map.md").read_text()
    table = {(f, int(n), tag) for f, n, tag in ROW.findall(doc)}
    code = _tags_in_code()
    assert table == code, (f"in the table only: {sorted(table - code)}; "
                           f"in the code only: {sorted(code - table)}")
