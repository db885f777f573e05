"""What a builder module gets: :class:`BuildContext`, one artifact to write into the staging bundle.

Each row of :data:`edge_image.contract.manifest.ARTIFACT_TYPES` with a ``builder`` names a module of
this package exposing ``build(ctx: BuildContext) -> None`` (write ``ctx.target``, and the
row's ``extras``), ``run(path, batch) -> ndarray`` when the row is parity-checked, and
optionally ``preflight(ctx)`` (fail before any slow conversion when a tool is missing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_image.contract.manifest import ARTIFACTS, ArtifactType
from training_scripts.darknet.cfg import Section
from training_scripts.export.folded import FoldedNetwork


@dataclass(frozen=True)
class BuildContext:
    """Inputs of one builder call.

    ``artifact``: the table row being built; ``out``: the staging bundle directory (the ``.pb``
    is already there for every format but ``pb`` itself); the folded ``network``, the cfg's
    ``sections``, class ``names``, the bundle's ``model_name``, the ``cfg_path`` (for error
    messages) and the NCS compiler settings.
    """

    artifact: ArtifactType
    out: Path
    network: FoldedNetwork
    sections: Sequence[Section]
    names: Sequence[str]
    model_name: str
    cfg_path: Path
    ncs_prefix: str | None = None
    ncs_shaves: int = 12

    @property
    def target(self) -> Path:
        """Where this artifact's file goes."""
        return self.out / self.artifact.file

    def path(self, kind: str) -> Path:
        """Where the file of another ``kind`` is (or goes) in the staging bundle."""
        return self.out / ARTIFACTS[kind].file
