"""Settings: one validated object from a YAML file and TITAN_GW_* variables."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.enums import Dialect, TaskType
from gateway.settings import (
    DEV_POLICY,
    NON_SETTING_VARIABLES,
    Settings,
    SettingsError,
    is_dev_policy,
    is_loopback,
    load_settings,
    setting_paths,
    variable_name,
)

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own TITAN_GW_* variables would change what loads."""
    for name in list(os.environ):
        if name.upper().startswith("TITAN_GW_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_run_the_emulator_on_loopback() -> None:
    settings = load_settings()
    assert settings.listen == "127.0.0.1:50051"
    assert settings.backend == "emulator"
    registry = settings.registry()
    assert registry.default_for(TaskType.TEXT_IMAGE).model_id == "stability.sd3-5-large-v1:0"
    assert registry.get("amazon.nova-canvas-v1:0").dialect is Dialect.NOVA_CANVAS


def test_the_file_sets_values_and_the_environment_beats_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "backend_concurrency: 3\nemulator:\n  latency_ms: 20\n")
    monkeypatch.setenv("TITAN_GW_BACKEND_CONCURRENCY", "7")
    settings = load_settings(path)
    assert settings.backend_concurrency == 7
    assert settings.emulator.latency_ms == 20


def test_nested_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITAN_GW_EMULATOR__IMAGES_PER_MINUTE", "30")
    assert load_settings().emulator.images_per_minute == 30


MY_REGISTRY = """
version: 1
defaults: {TEXT_IMAGE: my-core}
models:
  my-core:
    dialect: stability
    invoke_id: us.stability.stable-image-core-v1:1
    tasks: [TEXT_IMAGE]
    limits:
      max_text: 10000
      sizes: aspect_ratio
      aspect_ratios: {"1:1": [1024, 1024]}
      seed_max: 4294967295
      qualities: [standard]
      output_formats: [png]
    price: {usd: 0.04}
"""


def test_models_are_configuration(tmp_path: Path) -> None:
    registry_file = tmp_path / "models.yaml"
    registry_file.write_text(MY_REGISTRY, encoding="utf-8")
    path = write(tmp_path, f"registry_file: {registry_file}\n")
    registry = load_settings(path).registry()
    assert registry.ids == ["my-core"]
    assert registry.default_for(TaskType.TEXT_IMAGE) is registry.get("my-core")
    assert registry.get("my-core").invoke_model_id == "us.stability.stable-image-core-v1:1"
    assert registry.get("amazon.titan-image-generator-v2:0") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen_adress: 1.2.3.4:1\n", "listen_adress"),
        ("backend: openai\n", "backend"),
        ("backend_concurrency: 0\n", "backend_concurrency"),
        ("default_model_id: nope\n", "is not registered"),
        ("emulator:\n  latency: 5\n", "latency"),
        ("default_models: {TEXT_IMAGE: stability.stable-fast-upscale-v1:0}\n", "cannot run"),
    ],
    ids=[
        "unknown key",
        "bad backend",
        "zero concurrency",
        "unlisted default",
        "nested typo",
        "default that cannot run its task",
    ],
)
def test_bad_settings_are_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_settings(write(tmp_path, text))


def test_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITAN_GW_BACKEND_CONCURRENCY", "7")
    assert load_settings(backend_concurrency=3).backend_concurrency == 3


def test_a_nested_override_replaces_only_itself(tmp_path: Path) -> None:
    path = write(tmp_path, "emulator:\n  latency_ms: 20\n")
    settings = load_settings(path, emulator={"fault_rate": 0.5})
    assert (settings.emulator.latency_ms, settings.emulator.fault_rate) == (20, 0.5)


# -- unknown TITAN_GW_ variables -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "TITAN_GW_BACKND",
            "unknown variable TITAN_GW_BACKND: no setting 'backnd' "
            "(did you mean 'backend', TITAN_GW_BACKEND?)",
        ),
        (
            "TITAN_GW_EMULATOR__LATENCY",
            "unknown variable TITAN_GW_EMULATOR__LATENCY: no setting 'emulator.latency' "
            "(did you mean 'emulator.latency_ms', TITAN_GW_EMULATOR__LATENCY_MS?)",
        ),
        (
            "TITAN_GW_TELEMETRY_ENABLED",
            "unknown variable TITAN_GW_TELEMETRY_ENABLED: no setting 'telemetry_enabled' "
            "(did you mean 'telemetry.enabled', TITAN_GW_TELEMETRY__ENABLED?)",
        ),
        (
            "TITAN_GW_LISTEN__PORT",
            "unknown variable TITAN_GW_LISTEN__PORT: no setting 'listen.port' "
            "(did you mean 'listen', TITAN_GW_LISTEN?)",
        ),
        (
            "TITAN_GW_TARGT",
            "unknown variable TITAN_GW_TARGT: no setting 'targt' (did you mean TITAN_GW_TARGET?)",
        ),
        ("TITAN_GW_XYZZY", "unknown variable TITAN_GW_XYZZY: no setting 'xyzzy'"),
    ],
    ids=["typo", "nested typo", "missing nesting", "nested under a scalar", "client", "no match"],
)
def test_an_unknown_variable_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    monkeypatch.setenv(name, "1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == (message,)


def test_every_unknown_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITAN_GW_BACKND", "bedrock")
    monkeypatch.setenv("TITAN_GW_EMULATOR__LATENCY", "5")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "unknown variable TITAN_GW_BACKND",
        "unknown variable TITAN_GW_EMULATOR__LATENCY",
    ]


def test_the_variables_that_are_not_settings_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NON_SETTING_VARIABLES - {"TITAN_GW_CONFIG"}:
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("TITAN_GW_CONFIG", "unused.yaml")  # read by the CLI, not load_settings
    monkeypatch.setenv("TITAN_GW_EMULATOR__SEED_LATENCY_MS", '{"43": 5}')
    monkeypatch.setenv("TITAN_GW_TELEMETRY__ENABLED", "false")
    settings = load_settings()
    assert settings.emulator.seed_latency_ms == {43: 5}
    assert not settings.telemetry.enabled


def test_every_variable_the_gateway_reads_is_a_setting_or_allowed() -> None:
    """A new TITAN_GW_ variable read anywhere must be a setting or listed."""
    known = {variable_name(path) for path in setting_paths_with_parents()}
    read = set()
    for source in Path("gateway").rglob("*.py"):
        read |= set(re.findall(r"TITAN_GW_[A-Z0-9_]+", source.read_text(encoding="utf-8")))
    read -= {"TITAN_GW_"}  # the prefix itself, in messages
    assert read - known - NON_SETTING_VARIABLES == set()


def setting_paths_with_parents() -> set[tuple[str, ...]]:
    paths = set(setting_paths(Settings))
    return paths | {path[:1] for path in paths}


# -- max_receive_message_bytes ---------------------------------------------------


def test_max_receive_message_bytes_defaults_to_40_mib_within_1_to_64(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().max_receive_message_bytes == 40 * MIB
    assert load_settings(max_receive_message_bytes=MIB).max_receive_message_bytes == MIB
    monkeypatch.setenv("TITAN_GW_MAX_RECEIVE_MESSAGE_BYTES", str(64 * MIB))
    assert load_settings().max_receive_message_bytes == 64 * MIB
    for bad in (MIB - 1, 64 * MIB + 1):
        with pytest.raises(ValidationError, match="max_receive_message_bytes"):
            load_settings(max_receive_message_bytes=bad)


# -- the published dev policy ----------------------------------------------------------


@pytest.mark.parametrize(
    "listen",
    ["127.0.0.1:0", "127.0.0.2:1", "localhost:1", "[::1]:1", "[::ffff:127.0.0.1]:1", "unix:/s"],
)
def test_loopback_addresses(listen: str) -> None:
    assert is_loopback(listen)


@pytest.mark.parametrize(
    "listen", ["0.0.0.0:1", "[::]:1", ":1", "10.0.0.5:1", "gateway.internal:1", "nonsense"]
)
def test_addresses_reachable_from_elsewhere(listen: str) -> None:
    assert not is_loopback(listen)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"listen": "0.0.0.0:50051"}, "on the non-loopback address 0.0.0.0:50051"),
        ({"backend": "bedrock"}, "against real Bedrock"),
        (
            {"listen": "[::]:1", "backend": "bedrock"},
            "on the non-loopback address [::]:1 and against real Bedrock",
        ),
    ],
    ids=["all interfaces", "bedrock", "both"],
)
def test_the_dev_policy_is_refused_where_its_public_keys_are_a_risk(
    overrides: dict[str, str], reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load_settings(**overrides)
    message = str(caught.value)
    assert "is the published dev policy" in message
    assert reason in message
    assert "allow_dev_policy: true (TITAN_GW_ALLOW_DEV_POLICY=true)" in message
    settings = load_settings(allow_dev_policy=True, **overrides)
    assert settings.policy_file == DEV_POLICY


def test_a_copy_of_the_dev_policy_is_the_dev_policy(tmp_path: Path) -> None:
    copy = tmp_path / "policy.yaml"
    shutil.copyfile(DEV_POLICY, copy)
    link = tmp_path / "link.yaml"
    link.symlink_to(DEV_POLICY)
    assert is_dev_policy(copy)
    assert is_dev_policy(link)
    with pytest.raises(ValidationError, match="published dev policy"):
        load_settings(policy_file=copy, listen="0.0.0.0:1")
    edited = tmp_path / "edited.yaml"
    edited.write_bytes(DEV_POLICY.read_bytes() + b"# ours now\n")
    assert not is_dev_policy(edited)
    assert not is_dev_policy(tmp_path / "missing.yaml")


def test_another_policy_serves_anywhere(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\n", encoding="utf-8")
    settings = load_settings(policy_file=policy, listen="0.0.0.0:1", backend="bedrock")
    assert not settings.allow_dev_policy
