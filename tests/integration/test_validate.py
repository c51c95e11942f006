"""`updraft validate FILE...` as a user runs it: every shipped example validates; bad files get
one line per problem naming the file, the object and the field, and exit status 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers.updraft import UPDRAFT

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    [*(REPO / "examples").glob("*.yaml"), *(REPO / "manifests/examples").glob("*.yaml")]
)


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [UPDRAFT, "validate", *map(str, paths)], capture_output=True, text=True, timeout=60
    )


def test_every_shipped_example_validates() -> None:
    done = validate(*SHIPPED)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == len(SHIPPED)
    for path, line in zip(SHIPPED, lines, strict=True):
        assert line.startswith(f"{path}: ok (")
        assert line.endswith(" objects)")


def test_bad_files_get_one_line_per_problem(tmp_path: Path) -> None:
    demo = (REPO / "examples/standalone.yaml").read_text()
    source = tmp_path / "sources.yaml"
    source.write_text(demo.replace('desiredReplicas: "5"', 'desiredReplicas: "five"'))
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        (REPO / "examples/nodepool-basic.yaml")
        .read_text()
        .replace("operator: In", "operator: Maybe", 1)
    )
    not_yaml = tmp_path / "notes.txt"
    not_yaml.write_text("a: [b\n")
    good = REPO / "examples/nodepool-basic.yaml"
    done = validate(source, pool, not_yaml, good)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    problems = done.stderr.splitlines()
    assert len(problems) == 3, done.stderr
    assert problems[0].startswith(f"{not_yaml}: not valid YAML (line ")
    assert problems[1] == (
        f"{source}: MetricSource/business-hours: spec.trigger.metadata.desiredReplicas: "
        "desiredReplicas: got 'five', expected a positive integer"
    )
    assert problems[2].startswith(
        f"{pool}: NodePool/default: spec.template.spec.requirements[0].operator: 'Maybe'"
    )
    assert done.stdout.splitlines() == [f"{good}: ok (2 objects)"]
