"""Running ``ansible-playbook`` from Python: inventories, extra vars, the PLAY RECAP.

Used by the emulated edge node (:mod:`training_scripts.emulation.edge_node`) and the playbook tests
(``tests/ansible_edge``, and ``tests/ansible`` for :class:`PlaybookRun` and :func:`parse_recap`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EDGE_PLAYBOOK = REPO / "ansible" / "edge.yml"

_RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: exit code, combined output, and the recap per host."""

    returncode: int
    output: str
    recap: dict[str, dict[str, int]]

    def counts(self, host: str) -> dict[str, int]:
        """``{'ok': .., 'changed': .., 'failed': .., ...}`` for ``host`` from the PLAY RECAP."""
        assert host in self.recap, f"{host} not in the recap:\n{self.output[-3000:]}"
        return self.recap[host]

    def changed(self, host: str = "localhost") -> int:
        """The recap's ``changed`` count for ``host``."""
        return self.recap[host]["changed"]

    def changed_tasks(self) -> list[str]:
        """The names of the tasks that reported ``changed`` (with the item, for loops).

        >>> out = "TASK [r : Copy] ***\\nchanged: [h] => (item=a)\\nTASK [r : Ok] ***\\nok: [h]"
        >>> PlaybookRun(0, out, {}).changed_tasks()
        ['r : Copy (item=a)']
        """
        task, found = "", []
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                task = line[len("TASK [") :].partition("]")[0]
            elif line.startswith("changed:"):
                item = line.partition("=> ")[2] if "=> (item=" in line else ""
                found.append(f"{task} {item}".strip() if item else task)
        return found

    def tail(self, lines: int = 80) -> str:
        """The end of the output, for assertion messages."""
        return "\n".join(self.output.splitlines()[-lines:])

    def failure(self, limit: int = 3) -> str:
        """The last ``limit`` ``fatal:``/``failed:`` lines' messages, for a one-line error."""
        lines = [line for line in self.output.splitlines() if line.startswith(("fatal:", "failed:"))]
        messages = []
        for line in lines[-limit:]:
            _, _, tail = line.partition("=> ")
            try:
                messages.append(str(json.loads(tail).get("msg", tail))[:300])
            except (json.JSONDecodeError, AttributeError):
                messages.append(line[:300])
        if messages:
            return "; ".join(messages)
        tail = self.output.strip().splitlines()
        return tail[-1][:300] if tail else f"exit {self.returncode}, no output"


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP lines as ``{host: {counter: value}}``.

    >>> parse_recap("PLAY RECAP ***\\nnode : ok=3 changed=1 unreachable=0 failed=0\\n")["node"]["changed"]
    1
    """
    _, _, tail = output.rpartition("PLAY RECAP")
    recap: dict[str, dict[str, int]] = {}
    for match in _RECAP.finditer(tail):
        pairs = (item.split("=") for item in match.group("counts").split())
        recap[match.group("host")] = {key: int(value) for key, value in pairs}
    return recap


def write_inventory(path: Path, hosts: dict[str, dict[str, object]], group: str = "pis") -> Path:
    """A YAML inventory putting ``hosts`` (name → host vars) in ``group``."""
    path.write_text(yaml.safe_dump({group: {"hosts": hosts}}, sort_keys=False))
    return path


def run_playbook(
    playbook: Path,
    inventory: Path,
    *,
    extra_vars: dict[str, object] | None = None,
    tags: str | None = None,
    cache_dir: Path | None = None,
    timeout: float = 900,
    log: Path | None = None,
) -> PlaybookRun:
    """Run ``ansible-playbook`` with the project's ansible.cfg; never raises on failure.

    ``cache_dir`` becomes the controller's ``XDG_CACHE_HOME``; ``log`` also gets the whole output.
    """
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if tags:
        argv += ["--tags", tags]
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    if cache_dir is not None:
        env["XDG_CACHE_HOME"] = str(cache_dir)
    if log is None:
        proc = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, parse_recap(proc.stdout))
    # Written while it runs (tail -f LOG shows the progress of a long run), read back at the end.
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as sink:
        proc = subprocess.run(
            argv, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    output = log.read_text(encoding="utf-8", errors="replace")
    return PlaybookRun(proc.returncode, output, parse_recap(output))
