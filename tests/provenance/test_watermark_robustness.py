"""The watermark's detection rates, held to the figures the README records.

Fifty varied images are marked (with fixed ids, so every run measures the
same thing), each goes through every transform of `transforms.TRANSFORMS`,
and the share read back with the right id must not fall below the
"Recorded minimum" column of the table under `### Watermark robustness` in
README.md. Fifty other images, never marked, must all read as unmarked. A
change that weakens the mark fails here; one that strengthens it can raise
the recorded figures.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from gateway.provenance import watermark
from tests.provenance.corpus import clean_corpus, marked_corpus
from tests.provenance.transforms import TRANSFORMS

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Watermark robustness"
RECORDED_COLUMN = "Recorded minimum"
COUNT = 50


def recorded_rates(text: str) -> dict[str, float]:
    """Transform -> recorded minimum rate (0..1), from the section's table that
    has a "Recorded minimum" column. Raises ValueError when it cannot be found."""
    section = _section(text)
    for table in _tables(section):
        header, rows = table[0], table[1:]
        if RECORDED_COLUMN in header:
            column = header.index(RECORDED_COLUMN)
            return {row[0]: _percent(row[column]) for row in rows if len(row) > column}
    raise ValueError(f"README.md: no table with a {RECORDED_COLUMN!r} column under {HEADING!r}")


def _section(text: str) -> str:
    start = text.find(f"\n{HEADING}\n")
    if start < 0:
        raise ValueError(f"README.md: no {HEADING!r} heading")
    body = text[start + len(HEADING) + 2 :]
    end = re.search(r"^#{1,3} ", body, re.MULTILINE)
    return body[: end.start()] if end else body


def _tables(section: str) -> list[list[list[str]]]:
    """Each markdown table as rows of stripped cells, the |---| rule dropped."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*section.splitlines(), ""]:
        if line.strip().startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _percent(cell: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", cell)
    if match is None:
        raise ValueError(f"README.md: {cell!r} is not a percentage like '96 %'")
    return float(match.group(1)) / 100


def test_the_readme_parse_finds_the_table_and_fails_loudly_without_it() -> None:
    text = f"# T\n\n{HEADING}\n\nWords.\n\n| Transform | {RECORDED_COLUMN} |\n|---|--:|\n"
    assert recorded_rates(text + "| JPEG quality 75 | 96 % |\n\n## Next\n| x | 1 % |\n") == {
        "JPEG quality 75": 0.96
    }
    with pytest.raises(ValueError, match="heading"):
        recorded_rates("# nothing here\n")
    with pytest.raises(ValueError, match="column"):
        recorded_rates(f"\n{HEADING}\n\n| Transform | Rate |\n|---|---|\n| a | 1 % |\n")


def test_detection_rates_hold_the_recorded_figures() -> None:
    recorded = recorded_rates(README.read_text(encoding="utf-8"))
    names = [name for name, _ in TRANSFORMS]
    assert sorted(recorded) == sorted(names), "README table rows must match TRANSFORMS"
    ids = [hashlib.sha256(f"robustness-{i}".encode()).hexdigest()[:12] for i in range(COUNT)]
    marked = [
        watermark.embed(image, ident)
        for image, ident in zip(marked_corpus(COUNT), ids, strict=True)
    ]
    rates = {
        name: sum(
            watermark.detect(transform(image)).watermark_id == ident
            for image, ident in zip(marked, ids, strict=True)
        )
        / COUNT
        for name, transform in TRANSFORMS
    }
    false_positives = sum(watermark.detect(image).found for image in clean_corpus(COUNT))
    report = "\n".join(f"  {n}: {rates[n]:.0%} (recorded {recorded[n]:.0%})" for n in names)
    print(f"\nwatermark detection over {COUNT} images:\n{report}")
    print(f"  false positives on {COUNT} unmarked images: {false_positives}")
    assert false_positives == 0
    below = [n for n in names if rates[n] < recorded[n]]
    assert not below, f"below the README's recorded rates:\n{report}"
