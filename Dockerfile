# syntax=docker/dockerfile:1
# One image for labmesh's code location (the gRPC server Dagster's webserver, daemon and run workers load
# the definitions from) and for the portal/API: the role is the command. Run workers started by
# EcsRunLauncher or K8sRunLauncher use this image too, so it carries both launchers (dagster-aws from
# pyproject.toml, dagster-k8s added here) and the aws profile's instance file.
#
#   code location: dagster code-server start -h 0.0.0.0 -p 4000 -m labmesh_dagster.definitions  (default)
#   portal/API:    labmesh api --host 0.0.0.0 --port 8000
#
# The base is pinned to an exact release tag; pin its digest too when you mirror it into your registry
# (`FROM python:3.11.14-slim-bookworm@sha256:...`), which this repository cannot look up offline.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Everything labmesh needs ships as wheels (pysam, onnxruntime, psycopg[binary]): no compiler here.
RUN python -m venv /opt/venv
COPY pyproject.toml setup.py README.md LICENSE ./
COPY labmesh_dagster ./labmesh_dagster
# dagster-k8s is released with the pinned dagster (0.29.27 goes with 1.13.27), like dagster-aws.
RUN /opt/venv/bin/pip install --upgrade "pip==25.3" \
    && /opt/venv/bin/pip install . "dagster-k8s==0.29.27"

FROM ${PYTHON_IMAGE} AS runtime
# A fixed, unprivileged uid (numeric in USER below, so Kubernetes' runAsNonRoot can check it without /etc/passwd).
ARG LABMESH_UID=10001
RUN groupadd --system --gid "${LABMESH_UID}" labmesh \
    && useradd --system --uid "${LABMESH_UID}" --gid labmesh --home-dir /opt/labmesh --create-home labmesh
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    LABMESH_PROFILE=aws
# The aws profile's instance file; the Helm chart mounts its own dagster.yaml over it on Kubernetes.
COPY --chown=labmesh:labmesh deploy/aws/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY --chown=labmesh:labmesh workspace.yaml /opt/labmesh/workspace.yaml
WORKDIR /opt/labmesh
USER ${LABMESH_UID}:${LABMESH_UID}
EXPOSE 4000 8000
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", \
     "--module-name", "labmesh_dagster.definitions", "--location-name", "labmesh"]
