"""The agency example serves on the emulator exactly as its header comment says.

The gateway is started with the environment the header's command sets (read
from the file, so the comment and this test cannot drift apart) and the
shipped model defaults, as `make run` does.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway.server import RunningGateway
from gateway.startup import load, policy_file_problems
from tests.auth import bearer
from tests.conftest import GatewayFactory
from tests.streams import StreamResult, collect, detail
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "policies" / "examples" / "agency.yaml"
KEYS = {tenant: f"tgw_demo_{tenant}_key" for tenant in ("acme", "globex", "initech")}
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"  # the shipped TEXT_IMAGE default


def documented_environment() -> dict[str, str]:
    """The `TITAN_GW_*` variables of the `make run` command in the header comment."""
    header = EXAMPLE.read_text(encoding="utf-8").split("\nversion:", 1)[0]
    [command] = [line for line in header.splitlines() if line.endswith("make run")]
    words = shlex.split(command.lstrip("# "))
    assert words[-2:] == ["make", "run"]
    return dict(word.split("=", 1) for word in words[:-2])


@pytest.fixture
def documented_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(REPO)  # the command runs from the repository root
    env = documented_environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
async def agency(make_gateway: GatewayFactory, documented_env: dict[str, str]) -> RunningGateway:
    gateway: RunningGateway = await make_gateway(default_model_id=None)
    return gateway


def prompt(text: str) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(text_to_image=tasks.TextToImageTask(text=text))


async def generate(gateway: RunningGateway, tenant: str, text: str) -> StreamResult:
    async with grpc.aio.insecure_channel(
        gateway.address, interceptors=bearer(KEYS[tenant])
    ) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)  # type: ignore[no-untyped-call]
        return await collect(stub.GenerateImages(prompt(text)))


async def refusal(gateway: RunningGateway, tenant: str, text: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(gateway, tenant, text)
    return caught.value


def test_the_documented_command_passes_the_startup_checks(documented_env: dict[str, str]) -> None:
    assert set(documented_env) == {"TITAN_GW_POLICY_FILE", "TITAN_GW_EMULATOR__GUARDRAILS"}
    settings = load(None)
    assert policy_file_problems(settings.policy_file) == []
    assert settings.policy_file.resolve() == EXAMPLE
    assert settings.emulator.guardrails == {"agency-guardrail-1": ("celebrity", "deepfake")}


@pytest.mark.parametrize(("tenant", "model"), [("acme", NOVA), ("globex", SD35), ("initech", NOVA)])
async def test_every_client_is_served(agency: RunningGateway, tenant: str, model: str) -> None:
    result = await generate(agency, tenant, "a lighthouse in a storm, oil on canvas")
    assert (result.accepted.tenant_id, result.accepted.model_id) == (tenant, model)
    assert sorted(result.images) == [0]
    assert agency.emulator is not None
    assert agency.emulator.stats.guardrail_calls == 1


async def test_a_prompt_the_guardrail_blocks_is_refused(agency: RunningGateway) -> None:
    error = await refusal(agency, "globex", "a Celebrity on a red carpet")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        "the prompt in text_to_image.text was blocked by Bedrock guardrail agency-guardrail-1"
    )
    info = detail(error, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("MODERATION_BLOCKED", "titan.gateway.v1")
    assert dict(info.metadata) == {"category": "guardrail", "field": "text_to_image.text"}
    assert agency.emulator is not None
    assert agency.emulator.stats.invoked == []  # refused before any image call


@pytest.mark.parametrize("length", [900, 1100])
@pytest.mark.parametrize("tenant", ["acme", "initech"])
async def test_a_long_prompt_from_a_nova_client_is_denied_by_the_rule(
    agency: RunningGateway, tenant: str, length: int
) -> None:
    # Before the policy the prompt is validated against the shipped TEXT_IMAGE
    # default (SD3.5: 10,000 characters), so the rules see it; the routed
    # model's limit (Nova: 1,024) is checked only after an allow. The deny
    # rule (> 800) therefore refuses even 1,100 characters, before Nova could.
    error = await refusal(agency, tenant, ("a lighthouse in a storm " * 50)[:length])
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "prompts are limited to 800 characters" in error.details()
    info = detail(error, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["rule"]) == ("POLICY_DENIED", "guard-long-prompts")
    assert agency.emulator is not None
    assert agency.emulator.stats.calls == 0  # neither the guardrail nor a model was asked


async def test_without_the_guardrail_setting_every_prompt_fails(
    make_gateway: GatewayFactory,
) -> None:
    gateway: RunningGateway = await make_gateway(default_model_id=None, policy_file=EXAMPLE)
    error = await refusal(gateway, "globex", "a lighthouse in a storm")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "guardrail agency-guardrail-1 version 3 not found" in error.details()


async def test_past_novas_limit_without_the_rule_the_reroute_is_refused(
    make_gateway: GatewayFactory, documented_env: dict[str, str], tmp_path: Path
) -> None:
    # guard-long-prompts (800) sits below Nova's 1,024, so in the example a
    # long prompt never reaches Nova's check; in shadow mode it does.
    rule = "when: 'request.prompt_length > 800'"
    text = EXAMPLE.read_text(encoding="utf-8").replace(rule, f"{rule}\n    mode: shadow")
    (path := tmp_path / "agency.yaml").write_text(text, encoding="utf-8")
    gateway: RunningGateway = await make_gateway(default_model_id=None, policy_file=path)
    error = await refusal(gateway, "initech", ("a lighthouse in a storm " * 50)[:1100])
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (
        "policy rule(s) nova-clients-to-nova rewrote the request into one the model cannot "
        "run: text_to_image.text: must be at most 1024 characters for amazon.nova-canvas-v1:0 "
        "(got 1100)"
    )
