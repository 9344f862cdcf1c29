# syntax=docker/dockerfile:1
#
# The Titan Image Gateway as a container image:
#
#   docker build -t titan-image-gateway:0.1.0 .
#   docker run --rm -p 50051:50051 \
#     -v "$PWD/policy.yaml:/etc/titan-gateway/policy.yaml:ro" \
#     -e AWS_REGION=us-west-2 -e TITAN_GW_BEDROCK_REGION=us-west-2 \
#     titan-image-gateway:0.1.0
#
# Two stages: `build` installs the project (a regular, non-editable install, so
# the wheel's build generates the protobuf/gRPC stubs from protos/) and its
# dependencies into the virtual environment /opt/titan-gateway; `runtime` is
# python:3.11-slim with that environment only: no compiler, no source tree,
# no pip, a non-root user.
#
# There is no default policy: the published dev policy is refused on a
# non-loopback address and against real Bedrock, so TITAN_GW_POLICY_FILE
# points at /etc/titan-gateway/policy.yaml, which the deployment mounts (a
# Kubernetes ConfigMap, `docker run -v`). Without it the gateway exits 2 with
# "error: policy file /etc/titan-gateway/policy.yaml: No such file or directory".
# tests/deploy/ checks this file and runs its ENTRYPOINT, CMD and HEALTHCHECK.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/titan-gateway
WORKDIR /src
# The dependencies first, in a layer of their own: editing the source does not
# reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/titan-gateway/bin/pip install --prefer-binary --requirement /tmp/requirements.txt
# .dockerignore is an allow-list: the context holds what building the wheel
# needs, never a checkout's generated titan/ stubs, .venv or tests.
COPY . .
# The installed wheel must carry the generated stubs: imported from / (not from
# the source tree), so a wheel without them fails the build, not the first start.
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/titan-gateway/bin/pip install --prefer-binary /wheels/*.whl \
 && cd / \
 && /opt/titan-gateway/bin/python -c "import titan.gateway.v1.image_service_pb2_grpc, gateway.server" \
 && /opt/titan-gateway/bin/titan-gateway serve --help > /dev/null \
 && /opt/titan-gateway/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="titan-image-gateway" \
      org.opencontainers.image.description="Async gRPC streaming gateway in front of the image models on Amazon Bedrock"
RUN groupadd --system --gid 10001 titan \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin titan \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/titan-gateway \
 && install -d -m 0755 /etc/titan-gateway
COPY --from=build /opt/titan-gateway /opt/titan-gateway
ENV PATH="/opt/titan-gateway/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TITAN_GW_LISTEN=0.0.0.0:50051 \
    TITAN_GW_BACKEND=bedrock \
    TITAN_GW_DATA_DIR=/var/lib/titan-gateway \
    TITAN_GW_POLICY_FILE=/etc/titan-gateway/policy.yaml
USER 10001:10001
WORKDIR /var/lib/titan-gateway
# 50051: gRPC (ImageService, UsageService, AdminService, health, reflection).
# 9464: Prometheus /metrics, served when TITAN_GW_TELEMETRY__PROMETHEUS_PORT=9464.
EXPOSE 50051 9464
# grpc.health.v1 Check for service "" on the port of TITAN_GW_LISTEN (a wildcard
# host is checked on 127.0.0.1): exit 0 only for SERVING; NOT_SERVING (draining,
# a store down), no answer within 3 s or no listener exits 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; host, _, port = os.environ.get('TITAN_GW_LISTEN', '0.0.0.0:50051').rpartition(':'); host = '127.0.0.1' if host.strip('[]') in ('', '0.0.0.0', '::') else host; reply = g.HealthStub(grpc.insecure_channel(host + ':' + port)).Check(h.HealthCheckRequest(service=''), timeout=3); sys.exit(0 if reply.status == h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["titan-gateway"]
CMD ["serve"]
