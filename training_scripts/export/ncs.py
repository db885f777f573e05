"""Compile the frozen ``.pb`` into a Movidius NCS graph with NCSDK 2.x ``mvNCCompile``.

The compiler only runs where the NCSDK toolkit is installed: Ubuntu 16.04 x86-64 with
TensorFlow 1.x (NCSDK 2.10.01's release notes validate TensorFlow r1.09; its install.sh pins
tensorflow==1.11.0 and downloads the toolkit tarball NCSDK-2.10.01.01.tar.gz from Intel at
install time). On the training host that is a pinned container built from NCSDK's own
Dockerfile at the release tag (movidius/ncsdk extras/docker/Dockerfile: Ubuntu 16.04 +
``make install``)::

    docker build -t ncsdk:2.10.01.01 -f extras/docker/Dockerfile \
        https://github.com/movidius/ncsdk.git#v2.10.01.01

so the command gets a prefix that runs it there, e.g.::

    docker run --rm -v {workdir}:/work -w /work ncsdk:2.10.01.01

``{workdir}`` is replaced by the bundle's directory; the ``.pb`` and the graph are passed
as paths relative to it, so they are valid inside the container as well as outside.
The command is ``mvNCCompile model.pb -s 12 -in input -on output -o model.graph``
(12 SHAVE cores: all of a Myriad 2).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_image.contract.errors import UserError
from training_scripts.export.tf_graph import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from training_scripts.export.context import BuildContext

COMPILER = "mvNCCompile"
#: Environment variable with the command prefix that runs the compiler (container, venv).
PREFIX_ENV = "NCSDK_COMPILE_PREFIX"
#: Myriad 2 has 12 SHAVE vector cores.
DEFAULT_SHAVES = 12
MAX_SHAVES = 16  # Myriad X
#: The pinned NCSDK release, its source and the container prefix the training host uses.
NCSDK_TAG = "v2.10.01.01"
NCSDK_IMAGE = "ncsdk:2.10.01.01"
NCSDK_IMAGE_BUILD = f"docker build -t {NCSDK_IMAGE} -f extras/docker/Dockerfile https://github.com/movidius/ncsdk.git#{NCSDK_TAG}"
DOCKER_PREFIX = f"docker run --rm -v {{workdir}}:/work -w /work {NCSDK_IMAGE}"


@dataclass(frozen=True)
class NcsCompile:
    """One compiler invocation: ``argv`` run in ``workdir``; ``graph`` is the output file."""

    argv: tuple[str, ...]
    workdir: Path
    graph: Path

    def __str__(self) -> str:
        return shlex.join(self.argv)


def compile_command(
    pb_path: str | os.PathLike[str],
    graph_path: str | os.PathLike[str],
    *,
    shaves: int = DEFAULT_SHAVES,
    input_name: str = INPUT_NAME,
    output_name: str = OUTPUT_NAME,
    prefix: str | Sequence[str] = (),
) -> NcsCompile:
    """Build the ``mvNCCompile`` command for ``pb_path`` → ``graph_path`` (same directory).

    ``prefix`` (a shell-quoted string or argv list) is put in front, with ``{workdir}``
    replaced by the directory. Pure: nothing is run.

    >>> str(compile_command("/b/model.pb", "/b/model.graph"))
    'mvNCCompile model.pb -s 12 -in input -on output -o model.graph'
    >>> compile_command("/b/model.pb", "/b/model.graph", prefix="docker run -v {workdir}:/work img").argv[:5]
    ('docker', 'run', '-v', '/b:/work', 'img')
    """
    pb = Path(pb_path)
    graph = Path(graph_path)
    if pb.parent.resolve() != graph.parent.resolve():
        raise UserError(f"{graph}: the NCS graph must be written beside {pb.name} (same directory)")
    if not 1 <= shaves <= MAX_SHAVES:
        raise UserError(f"--ncs-shaves {shaves}: must be 1..{MAX_SHAVES} (12 on a Myriad 2 / NCS)")
    workdir = pb.parent.resolve()
    head = shlex.split(prefix) if isinstance(prefix, str) else list(prefix)
    head = [part.replace("{workdir}", str(workdir)) for part in head]
    argv = [
        *head,
        COMPILER,
        pb.name,
        "-s",
        str(shaves),
        "-in",
        input_name,
        "-on",
        output_name,
        "-o",
        graph.name,
    ]
    return NcsCompile(tuple(argv), workdir, workdir / graph.name)


def resolve_prefix(prefix: str | None) -> str:
    """The prefix to use: the argument, else ``$NCSDK_COMPILE_PREFIX``, else none."""
    if prefix is not None:
        return prefix
    return os.environ.get(PREFIX_ENV, "")


def check_toolkit(command: NcsCompile) -> None:
    """Raise a clear :class:`UserError` when the command's program cannot be found."""
    program = command.argv[0]
    if shutil.which(program) is None:
        if program == COMPILER:
            raise UserError(
                f"{COMPILER} not found on PATH: the NCS graph needs the Movidius NCSDK 2.x toolkit "
                f"(Ubuntu 16.04 + TensorFlow 1.x). Run the export on the training host, or set "
                f"{PREFIX_ENV} / --ncs-prefix to a command that runs it (e.g. '{DOCKER_PREFIX}'), "
                "or leave 'ncs' out of --formats"
            )
        raise UserError(f"{program} (from the NCS compile prefix) not found on PATH: cannot run {COMPILER}")


def run_compile(command: NcsCompile, *, timeout_s: float = 1800.0) -> Path:
    """Run the compiler; return the graph path. :class:`UserError` with its last output line on failure."""
    check_toolkit(command)
    command.graph.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            command.argv, cwd=command.workdir, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"{COMPILER} did not finish in {timeout_s:.0f} s: {command}") from None
    if proc.returncode != 0 or not command.graph.is_file():
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise UserError(f"{COMPILER} failed (exit {proc.returncode}): {last} [{command}]")
    return command.graph


def _command(ctx: BuildContext) -> NcsCompile:
    return compile_command(
        ctx.path("pb"), ctx.target, shaves=ctx.ncs_shaves, prefix=resolve_prefix(ctx.ncs_prefix)
    )


def preflight(ctx: BuildContext) -> None:
    """Fail before the slow conversions when the compiler cannot run."""
    check_toolkit(_command(ctx))


def build(ctx: BuildContext) -> None:
    """The artifact table's builder for ``ncs_graph``: ``mvNCCompile`` on the staged ``.pb``."""
    run_compile(_command(ctx))
