"""The Raspberry Pi support matrix: the README shows the table in code, and every row marked
"tested here under emulation" names an architecture the emulated-Pi tests run."""

from __future__ import annotations

import re

from tests.ansible_edge.helpers import REPO
from tests.ansible_edge.test_emulated_pi import ELF
from training_scripts.emulation.pi_matrix import LABELS, MATRIX, render_markdown
from training_scripts.emulation.rootfs import ARCHES


def test_readme_shows_the_matrix() -> None:
    readme = (REPO / "edge_image" / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- pi-matrix -->\n(.*?)<!-- /pi-matrix -->", readme, re.DOTALL)
    assert block, "edge_image/README.md has no pi-matrix block"
    assert block.group(1) == render_markdown()


def test_tested_rows_are_the_emulated_architectures() -> None:
    tested = {row.arch for row in MATRIX if row.status == "tested"}
    assert tested == set(ELF) and tested <= set(ARCHES)
    for row in MATRIX:
        assert (row.arch is not None) == (row.status == "tested"), row
        assert row.reason and row.status in LABELS
    # each tested runtime with an NCSDK generation is one the emulated tests build on that arch
    for row in MATRIX:
        if row.status == "tested" and "NCSDK" in row.runtime:
            assert re.search(r"NCSDK (1\.12|2\.10)", row.runtime), row


def test_every_pi_os_row_has_a_reason_for_not_tested() -> None:
    for row in MATRIX:
        if row.status != "tested":
            assert len(row.reason) > 30, row
    assert {row.status for row in MATRIX} == set(LABELS)
