"""Reading the deployment files as Docker and Kubernetes would: the Dockerfile's
instructions per stage (continuation lines, comment lines, exec and shell
forms, `ENV k=v …`, `HEALTHCHECK [options] CMD …`), the Kubernetes manifests
of `deploy/kubernetes/`, and every `TITAN_GW_*` variable they set."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
KUBERNETES = REPO / "deploy" / "kubernetes"
KUSTOMIZATION = KUBERNETES / "kustomization.yaml"
PREFIX = "TITAN_GW_"


# -- the Dockerfile ------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, …
    value: str  # the rest of the (joined) line
    line: int  # where it starts, 1-based

    def exec_form(self) -> list[str]:
        """The instruction's command as argv: JSON exec form, or shell form
        (`/bin/sh -c …`, as Docker runs it)."""
        return command_argv(self.value)


@dataclass
class Stage:
    base: str  # the FROM image, build ARGs resolved
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.base}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """Every `ENV` of the stage in order (later ones win), values unexpanded."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values |= parse_env(instruction.value)
        return values


@dataclass(frozen=True)
class Healthcheck:
    options: dict[str, str]  # interval, timeout, start-period, retries, …
    argv: list[str]


def command_argv(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        argv = json.loads(text)
        assert isinstance(argv, list), text
        assert all(isinstance(a, str) for a in argv), text
        return argv
    return ["/bin/sh", "-c", text]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions as single lines: `\\` continuations joined; comment lines and
    blank lines dropped, inside continuations too (as Docker drops them)."""
    joined: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(raw.rstrip()[:-1])
            continue
        current.append(raw)
        joined.append((start, " ".join(part.strip() for part in current)))
        current = []
    assert not current, "the Dockerfile ends inside a continued line"
    return joined


@cache
def dockerfile_stages() -> tuple[Stage, ...]:
    """The Dockerfile's stages, in order."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in logical_lines(DOCKERFILE.read_text(encoding="utf-8")):
        keyword, _, value = text.partition(" ")
        keyword = keyword.upper()
        value = value.strip()
        if keyword == "ARG" and not stages:  # global ARGs: usable in FROM
            arg, _, default = value.partition("=")
            args[arg] = default
            continue
        if keyword == "FROM":
            words = value.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[0])
            stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, stage))
            continue
        assert stages, f"line {line}: {keyword} before the first FROM"
        stages[-1].instructions.append(Instruction(keyword, value, line))
    return tuple(stages)


def runtime_stage() -> Stage:
    """The stage the image is made of: the last one."""
    return dockerfile_stages()[-1]


def parse_env(value: str) -> dict[str, str]:
    """`ENV a=1 b="two words"` -> {"a": "1", "b": "two words"} (the `k=v` form only)."""
    pairs: dict[str, str] = {}
    for word in shlex.split(value):
        name, sep, val = word.partition("=")
        assert sep, f"ENV {value!r}: use the ENV key=value form"
        pairs[name] = val
    return pairs


def healthcheck() -> Healthcheck:
    """The runtime stage's HEALTHCHECK: its options and its command's argv."""
    text = runtime_stage().last("HEALTHCHECK").value
    options: dict[str, str] = {}
    while text.startswith("--"):
        option, _, text = text.partition(" ")
        name, _, value = option[2:].partition("=")
        options[name] = value
        text = text.lstrip()
    keyword, _, command = text.partition(" ")
    assert keyword.upper() == "CMD", f"HEALTHCHECK {text!r}: expected CMD"
    return Healthcheck(options, command_argv(command))


def entry_argv() -> list[str]:
    """What the container runs: ENTRYPOINT followed by CMD, both in exec form."""
    stage = runtime_stage()
    return stage.last("ENTRYPOINT").exec_form() + stage.last("CMD").exec_form()


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [s for line in lines if (s := line.strip()) and not s.startswith("#")]


# -- the Kubernetes manifests --------------------------------------------------


@cache
def kustomization() -> dict[str, Any]:
    data = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@cache
def manifests() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """(file, object) for every object of every file kustomization.yaml lists."""
    found = []
    for name in kustomization()["resources"]:
        path = KUBERNETES / name
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                found.append((path, doc))
    return tuple(found)


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (and `name`) in the manifests."""
    found = [
        doc
        for _, doc in manifests()
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def all_of(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def deployment() -> dict[str, Any]:
    return one("Deployment")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def gateway_container() -> dict[str, Any]:
    containers = pod_spec()["containers"]
    assert len(containers) == 1, "one container per pod: the gateway"
    container: dict[str, Any] = containers[0]
    return container


def generated_env() -> dict[str, dict[str, str]]:
    """configMapGenerator name -> its literals (the only kind of source used)."""
    generated: dict[str, dict[str, str]] = {}
    for generator in kustomization().get("configMapGenerator", []):
        assert set(generator) <= {"name", "literals", "options"}, generator
        literals = dict(item.split("=", 1) for item in generator.get("literals", []))
        generated[generator["name"]] = literals
    return generated


def container_env() -> dict[str, str]:
    """The gateway container's environment as Kubernetes builds it: envFrom
    (ConfigMaps from configMapGenerator, or manifests) first, then env, which
    wins; secretKeyRef values read from the Secret manifest. The image's ENV
    defaults are not included."""
    generated = generated_env()
    values: dict[str, str] = {}
    container = gateway_container()
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        if ref in generated:
            values |= generated[ref]
        else:
            values |= one("ConfigMap", ref)["data"]
    for var in container.get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            values[var["name"]] = secret_values(ref["name"])[ref["key"]]
    return values


def secret_values(name: str) -> dict[str, str]:
    secret = one("Secret", name)
    values: dict[str, str] = dict(secret.get("stringData", {}))
    assert not secret.get("data"), "keep the Secret's placeholders readable: stringData"
    return values


def policy_text() -> str:
    """The policy file the pods mount: the ConfigMap key that volume maps to
    TITAN_GW_POLICY_FILE's file name."""
    volume = next(v for v in pod_spec()["volumes"] if v["name"] == "policy")
    config_map = one("ConfigMap", volume["configMap"]["name"])
    (item,) = volume["configMap"]["items"]
    text: str = config_map["data"][item["key"]]
    return text


def effective_env() -> dict[str, str]:
    """The variables a pod's gateway sees: the image's ENV, then the manifests'."""
    image = {k: v for k, v in runtime_stage().env().items() if k.startswith(PREFIX)}
    return image | container_env()


def titan_variables() -> dict[str, list[str]]:
    """Every TITAN_GW_* variable the Dockerfile and the manifests set -> where."""
    where: dict[str, list[str]] = {}
    for stage in dockerfile_stages():
        for name in stage.env():
            if name.startswith(PREFIX):
                where.setdefault(name, []).append(f"Dockerfile (FROM {stage.base})")
    for generator, literals in generated_env().items():
        for name in literals:
            where.setdefault(name, []).append(f"kustomization.yaml ({generator})")
    for path, doc in manifests():
        for name in _variables_in(doc):
            where.setdefault(name, []).append(path.name)
    return {name: places for name, places in where.items() if name.upper().startswith(PREFIX)}


def _variables_in(node: Any) -> list[str]:
    """Names of env entries and ConfigMap data keys anywhere in an object."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("kind") == "ConfigMap":
            found += [k for k in node.get("data", {}) if k.startswith(PREFIX)]
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                found += [var["name"] for var in value]
            else:
                found += _variables_in(value)
    elif isinstance(node, list):
        for item in node:
            found += _variables_in(item)
    return found


def dockerignored(relative: PurePosixPath) -> bool:
    """Whether Docker leaves `relative` (a path in the repository) out of the
    build context. As Docker reads .dockerignore: a pattern applies when it
    matches the path or one of its parent folders, the last pattern that
    applies wins (`!` re-includes), `*` does not cross `/` and `**/` matches at
    any depth."""
    ignored = False
    for pattern in dockerignore_patterns():
        include = pattern.startswith("!")
        if _applies(pattern.lstrip("!").strip("/"), relative.parts):
            ignored = not include
    return ignored


def _applies(pattern: str, parts: tuple[str, ...]) -> bool:
    """Whether `pattern` matches the path `parts` or one of its parents."""
    anywhere = pattern.startswith("**/")
    words = (pattern[3:] if anywhere else pattern).split("/")
    # The path and each parent, or (`**/`) each run of folders ending one of them.
    ends = range(len(words), len(parts) + 1) if anywhere else [len(words)]
    return any(
        end <= len(parts) and all(map(fnmatchcase, parts[end - len(words) : end], words))
        for end in ends
    )


def build_context() -> list[PurePosixPath]:
    """The files `docker build .` sends, as paths relative to the repository."""
    files: list[PurePosixPath] = []
    for root, dirs, names in os.walk(REPO):
        here = PurePosixPath(Path(root).relative_to(REPO).as_posix())
        dirs[:] = [d for d in dirs if not dockerignored(here / d)]
        files += [here / n for n in names if not dockerignored(here / n)]
    return sorted(files)
