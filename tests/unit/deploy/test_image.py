"""The Dockerfile builds the image the manifests run, and runs it as they expect.

No image builder can reach a base-image registry on this machine, so the Dockerfile is checked
by reading it: its stages, the non-root numeric USER the Deployments' securityContext names,
an exec-form ENTRYPOINT that is the `updraft` console script, bytecode writes off (the root
filesystem is read-only), every file it COPYs from the context present, and every Deployment's
first argument a subcommand `updraft --help` lists.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.servers.updraft import UPDRAFT

REPO = Path(__file__).resolve().parents[3]
DEPLOYMENTS = ("manifests/base/deployment.yaml", "manifests/provisioner/deployment.yaml")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        found = [arg for kw, arg in self.instructions if kw == keyword]
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for kw, arg in self.instructions:
            if kw == "ENV":
                out.update(dict(word.split("=", 1) for word in shlex.split(arg)))
        return out


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage (comments dropped, continuation lines joined)."""
    logical = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arg = line.partition(" ")
        keyword, arg = keyword.upper(), arg.strip()
        if keyword == "FROM":
            words = arg.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, arg))
    return stages


def deployment_containers() -> list[dict[str, Any]]:
    return [
        c
        for path in DEPLOYMENTS
        for c in yaml.safe_load((REPO / path).read_text())["spec"]["template"]["spec"]["containers"]
    ]


def help_subcommands() -> set[str]:
    done = subprocess.run([UPDRAFT, "--help"], capture_output=True, text=True, check=True)
    section = done.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return set(re.findall(r"^    ([a-z][a-z-]*)\s", section, flags=re.MULTILINE))


STAGES = parse_dockerfile((REPO / "Dockerfile").read_text())
RUNTIME = STAGES[-1]


def test_multi_stage_on_a_slim_python() -> None:
    assert len(STAGES) >= 2
    text = (REPO / "Dockerfile").read_text()
    default_base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert default_base is not None
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", default_base.group(1))
    # The runtime stage carries only what an earlier stage built.
    copies = [arg for kw, arg in RUNTIME.instructions if kw == "COPY"]
    assert copies
    assert all(arg.startswith("--from=") for arg in copies)
    assert not any(kw == "RUN" and "pip" in arg for kw, arg in RUNTIME.instructions)


def test_runs_as_the_numeric_non_root_user_the_deployments_name() -> None:
    user = RUNTIME.last("USER")
    assert user is not None
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    for path in DEPLOYMENTS:
        pod = yaml.safe_load((REPO / path).read_text())["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(uid), path
        assert pod["securityContext"]["runAsGroup"] == int(gid), path


def test_read_only_root_filesystem_friendly() -> None:
    env = RUNTIME.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    # HOME and the working directory are where the Deployments mount an emptyDir (or nothing is
    # written at all): the only writable place under readOnlyRootFilesystem.
    assert env.get("HOME") == "/tmp"
    assert RUNTIME.last("WORKDIR") == "/tmp"
    for container in deployment_containers():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_entrypoint_is_updraft_and_the_deployments_run_its_subcommands() -> None:
    entrypoint = RUNTIME.last("ENTRYPOINT")
    assert entrypoint is not None
    argv = json.loads(entrypoint)  # exec form: signals reach updraft, not a shell
    assert Path(argv[0]).name == "updraft"
    assert argv[0].startswith(RUNTIME.env()["PATH"].split(":")[0])
    subcommands = help_subcommands()
    assert {"serve", "provisioner", "certs"} <= subcommands
    for container in deployment_containers():
        assert container["args"][0] in subcommands


def test_every_copied_context_path_exists_and_is_packaged() -> None:
    sources: list[str] = []
    for stage in STAGES:
        for kw, arg in stage.instructions:
            if kw == "COPY" and not arg.startswith("--from="):
                *srcs, _dest = arg.split()
                sources.extend(srcs)
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"Dockerfile COPYs {src}, which is not in the repository"
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    # Every shipped package is copied into the build (a missing one fails at import in the pod).
    assert {p.rstrip("*") for p in packages} <= set(sources)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert not set(sources) & set(ignored)


def test_image_name_matches_the_manifests_and_the_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    makefile = (REPO / "Makefile").read_text()
    image = re.search(r"^IMAGE \?= (\S+)$", makefile, flags=re.MULTILINE)
    assert image is not None
    assert image.group(1) == f"updraft:{version}"
    assert {c["image"] for c in deployment_containers()} == {image.group(1)}
