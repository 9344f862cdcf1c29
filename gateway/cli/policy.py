"""`policy check | explain | hash-key`: the policy file from the command line.

python -m gateway policy check policies/examples/*.yaml
python -m gateway policy explain FILE --tenant acme --request request.json
python -m gateway policy hash-key
"""

from __future__ import annotations

import argparse
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import json_format

from gateway.decisions import decide
from gateway.errors import InvalidRequest, TaskNotSupported
from gateway.registry import ModelRegistry, load_registry
from gateway.registry.catalog import price_table
from gateway.settings import SettingsError, load_settings
from gateway.validation import decode_request
from policies import Policy, PolicyError, explain, hash_key, load_policy
from titan.gateway.v1 import image_service_pb2 as pb

KEY_PREFIX = "tgw_"


def add_policy_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="check, explain and manage policy files")
    verbs = policy.add_subparsers(dest="verb", required=True)
    check = verbs.add_parser("check", help="validate policy files (exit 1 on any error)")
    check.add_argument("files", nargs="+", type=Path)
    exp = verbs.add_parser("explain", help="dry-run one request: rules matched, rewrites, price")
    exp.add_argument("file", type=Path)
    exp.add_argument("--tenant", required=True, help="tenant id")
    exp.add_argument("--request", required=True, type=Path, help="GenerateImagesRequest as JSON")
    exp.add_argument("--config", type=Path, help="gateway settings (for the model list)")
    verbs.add_parser("hash-key", help="make a new API key and print its hash line")


def run_policy_command(args: argparse.Namespace) -> int:
    if args.verb == "check":
        return _check(args.files)
    if args.verb == "explain":
        return _explain(args)
    return _hash_key()


def _check(files: list[Path]) -> int:
    failed = 0
    for path in files:
        try:
            policy = _load(path)
        except PolicyError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
            continue
        print(f"{path}: ok ({len(policy.tenants)} tenants, {len(policy.rules)} rules)")
    return 1 if failed else 0


def _explain(args: argparse.Namespace) -> int:
    try:
        registry = load_settings(args.config).registry()
    except (SettingsError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"error: the gateway settings cannot be loaded: {exc}", file=sys.stderr)
        return 2
    try:
        policy = _load(args.file, registry)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    tenant = policy.tenants.get(args.tenant)
    if tenant is None:
        print(f"error: no tenant {args.tenant!r} in {args.file}", file=sys.stderr)
        return 1
    request = json_format.Parse(
        args.request.read_text(encoding="utf-8"), pb.GenerateImagesRequest()
    )
    try:
        job = decode_request(request, registry)
    except (InvalidRequest, TaskNotSupported) as exc:
        print(f"the request itself is invalid: {exc.message}", file=sys.stderr)
        return 1
    print(explain(decide(policy, tenant, job, request, datetime.now(UTC))))
    return 0


def _hash_key() -> int:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    print(f"key:  {key}   (give this to the tenant; it is not stored anywhere)")
    print(f'hash: "{hash_key(key)}"   (put this line under the tenant\'s api_keys)')
    return 0


def _load(path: Path, registry: ModelRegistry | None = None) -> Policy:
    """The policy in `path`, priced from the model registry (the shipped one
    unless given) exactly as the gateway prices it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from exc
    prices = price_table(registry or load_registry())
    return load_policy(text, source=str(path), default_prices=prices)
