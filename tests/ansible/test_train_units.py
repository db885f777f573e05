"""The train role's systemd units, rendered by Ansible from the role's templates.

CI has no systemd as PID 1, so the units cannot run here; ``systemd-analyze verify`` checks them
as systemd would load them, and the ExecStart line is executed by /bin/sh with the environment
file parsed the way systemd does, to prove the command reaches the program with its arguments
intact (spaces and quotes included).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.runner import ROLES_DIR, run_playbook
from training_scripts.__main__ import build_parser

TEMPLATES = ROLES_DIR / "train" / "templates"
UNITS = (
    "edgeyolo-train@.service",
    "edgeyolo-train-sync@.service",
    "edgeyolo-train-sync@.timer",
    "edgeyolo-spot-watch@.service",
)
RUN = "abc123def456"
ARGV = ["train", "--data", "/data dir/with space", "--cfg", "it's.cfg", "--weights", "none"]

PLAYBOOK = """\
- name: Render the train role's units
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Render a unit template
      ansible.builtin.template:
        src: "{{ templates }}/{{ item }}.j2"
        dest: "{{ out }}/{{ item | replace('@.', '@' ~ train_run_id ~ '.') }}"
        mode: "0644"
      loop: "{{ units }}"
    - name: Render the run's environment file
      ansible.builtin.template:
        src: "{{ templates }}/train.env.j2"
        dest: "{{ out }}/train-{{ train_run_id }}.env"
        mode: "0644"
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("units")
    out = tmp / "out"
    out.mkdir()
    playbook = tmp / "render.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    extra = {
        "ansible_python_interpreter": sys.executable,
        "templates": str(TEMPLATES),
        "out": str(out),
        "units": list(UNITS),
        "train_root": str(tmp / "train"),
        "train_user": "root",
        "train_group": "root",
        "train_env_dir": str(out),
        "train_project_dir": str(tmp),
        "train_python": sys.executable,
        "train_spot_poll_seconds": 3,
        "train_s3_sync": True,
        "train_s3_sync_uri": "s3://bucket/checkpoints/",
        "train_s3_sync_interval": "15min",
        "train_aws_cli": shutil.which("true"),
        "train_nvidia_modprobe": shutil.which("true"),
        "train_run_id": RUN,
        "train_restart_interval": "1h",
        "train_restart_burst": 5,
        "train_run_dir": str(tmp / "train" / "runs" / RUN),
    }
    run = run_playbook(playbook, inventory="localhost,", tmp=tmp, extra_vars=extra, timeout=300)
    assert run.returncode == 0, run.tail()
    # what the role's "Install the train-exec tool" task puts there
    (tmp / "train" / "bin").mkdir(parents=True)
    tool = shutil.copy(ROLES_DIR / "train" / "files" / "train_exec.py", tmp / "train" / "bin" / "train-exec")
    Path(tool).chmod(0o755)
    return out


def _systemd_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (one level of quotes removed)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key] = value
    return env


def _directive(unit: Path, key: str) -> list[str]:
    prefix = f"{key}="
    return [
        line[len(prefix) :]
        for line in unit.read_text(encoding="utf-8").splitlines()
        if line.startswith(prefix)
    ]


def test_units_pass_systemd_analyze_verify(rendered: Path) -> None:
    units = [rendered / name.replace("@.", f"@{RUN}.") for name in UNITS]
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        cwd=rendered,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    problems = [line for line in proc.stderr.splitlines() if RUN in line or "edgeyolo" in line]
    assert not problems, problems


def test_training_unit_restarts_resumes_and_skips_finished_runs(rendered: Path) -> None:
    unit = rendered / f"edgeyolo-train@{RUN}.service"
    assert _directive(unit, "Restart") == ["on-failure"]
    # bad input / NaN loss (exit 2) fail the unit at once; crashes restart, but not forever
    assert _directive(unit, "RestartPreventExitStatus") == ["2"]
    assert _directive(unit, "StartLimitIntervalSec") == ["1h"]
    assert _directive(unit, "StartLimitBurst") == ["5"]
    assert _directive(unit, "WantedBy") == ["multi-user.target"]
    assert _directive(unit, "ConditionPathExists")[0].endswith("/runs/%i/train.done")
    assert _directive(unit, "ConditionPathExists")[0].startswith("!")
    # checkpoints are pulled from S3 before a (re)start (never run.json, never older over newer:
    # tests/training/test_s3pull.py) and pushed when it stops
    pre = _directive(unit, "ExecStartPre")[-1]
    assert pre.endswith(" -m training_scripts s3-pull --run ${EDGEYOLO_RUN_DIR} --s3-uri ${EDGEYOLO_S3_URI}")
    assert len(_directive(unit, "ExecStopPost")) == 2
    timer = rendered / f"edgeyolo-train-sync@{RUN}.timer"
    assert _directive(timer, "OnUnitActiveSec") == ["15min"]


def test_exec_start_runs_the_recorded_command_with_arguments_intact(rendered: Path) -> None:
    """ExecStart runs train-exec on the run directory; it execs run.json's command unchanged."""
    unit = rendered / f"edgeyolo-train@{RUN}.service"
    env = _systemd_env(rendered / f"train-{RUN}.env")
    run_dir = Path(env["EDGEYOLO_RUN_DIR"])
    assert env["EDGEYOLO_S3_URI"] == f"s3://bucket/checkpoints/{RUN}"
    train_root = run_dir.parent.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-c",
        "import json, os, sys; print(json.dumps([os.getcwd(), *sys.argv[1:]]))",
        *ARGV,
    ]
    (run_dir / "run.json").write_text(json.dumps({"command": command, "workdir": "/"}), encoding="utf-8")
    (exec_start,) = _directive(unit, "ExecStart")
    argv = exec_start.replace("%i", RUN).split()
    assert argv == [str(train_root / "bin" / "train-exec"), str(run_dir)]
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["/", *ARGV]
    (run_dir / "run.json").write_text("{}", encoding="utf-8")
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "command" in proc.stderr


def test_stop_post_marks_only_successful_runs_done(rendered: Path, tmp_path: Path) -> None:
    unit = rendered / f"edgeyolo-train@{RUN}.service"
    marker_script = next(line for line in _directive(unit, "ExecStopPost") if "train.done" in line)
    script = marker_script.replace("$$", "$").replace("%%", "%")[len("/bin/sh -c '") : -1]
    for result, expected in (("exit-code", False), ("success", True)):
        env = {"EDGEYOLO_RUN_DIR": str(tmp_path), "SERVICE_RESULT": result, "PATH": "/usr/bin:/bin"}
        subprocess.run(["/bin/sh", "-c", script], env=env, check=True, timeout=60)
        assert (tmp_path / "train.done").exists() is expected


def test_spot_watcher_runs_spot_watch_on_the_runs_directory_and_prefix(rendered: Path) -> None:
    """The watcher's ExecStart, with the environment file substituted as systemd does, is a valid
    `spot-watch` command line for this run's directory and S3 prefix; it skips finished runs."""
    unit = rendered / f"edgeyolo-spot-watch@{RUN}.service"
    env = _systemd_env(rendered / f"train-{RUN}.env")
    (exec_start,) = _directive(unit, "ExecStart")
    argv = exec_start.replace("${EDGEYOLO_RUN_DIR}", env["EDGEYOLO_RUN_DIR"])
    argv = argv.replace("${EDGEYOLO_S3_URI}", env["EDGEYOLO_S3_URI"]).split()
    assert argv[:4] == [sys.executable, "-m", "training_scripts", "spot-watch"]
    args = build_parser().parse_args(argv[3:])
    assert (str(args.run), args.s3_uri, args.interval) == (
        env["EDGEYOLO_RUN_DIR"],
        f"s3://bucket/checkpoints/{RUN}",
        3.0,
    )
    runs = Path(env["EDGEYOLO_RUN_DIR"]).parent
    assert _directive(unit, "ConditionPathExists") == [f"!{runs}/%i/train.done"]
    assert _directive(unit, "NoNewPrivileges") == ["yes"]


def _exposure(unit: Path) -> float:
    """``systemd-analyze security --offline=true`` overall exposure of ``unit`` (0 safe .. 10 unsafe)."""
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    return float(match.group(1))


def test_training_unit_is_sandboxed(rendered: Path) -> None:
    """A compromised training process (it runs whatever a dataset or checkpoint makes darknet do)
    cannot write outside the training root, gain capabilities or load kernel modules."""
    unit = rendered / f"edgeyolo-train@{RUN}.service"
    assert _exposure(unit) <= 4.9  # measured 2.5 (9.2 before the sandbox)
    assert _directive(unit, "ProtectSystem") == ["strict"]
    assert _directive(unit, "ReadWritePaths") == [str(rendered.parent / "train")]
    assert _directive(unit, "CapabilityBoundingSet") == [""]
    assert _directive(unit, "NoNewPrivileges") == ["true"]
    # the NVIDIA modules come first, privileged and outside the sandbox
    pre = _directive(unit, "ExecStartPre")
    assert pre[0] == f"+-{shutil.which('true')} -u -c=0" and "s3-pull" in pre[1]
