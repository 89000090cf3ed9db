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

# Three stages so that a change to labmesh's code neither reinstalls nor re-copies its dependencies:
#   deps:    the venv with the dependencies only, a layer that only pyproject.toml invalidates;
#   build:   labmesh itself, installed into /staging (pip --root) rather than into the venv;
#   runtime: copies the venv (an unchanged, cached layer) and then labmesh's few files on top of it.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Everything labmesh needs ships as wheels (pysam, onnxruntime, psycopg[binary]): no compiler here.
RUN python -m venv /opt/venv
# pyproject.toml's [project].dependencies, read with tomllib, become a requirements file.
COPY pyproject.toml ./
# dagster-k8s is released with the pinned dagster (0.29.27 goes with 1.13.27), like dagster-aws.
RUN python -c 'import sys, tomllib; print(*tomllib.load(sys.stdin.buffer)["project"]["dependencies"], sep="\n")' \
        <pyproject.toml >/tmp/requirements.txt \
    && /opt/venv/bin/pip install --upgrade "pip==25.3" \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt "dagster-k8s==0.29.27" \
    && rm /tmp/requirements.txt

FROM deps AS build
COPY setup.py README.md LICENSE ./
COPY labmesh_dagster ./labmesh_dagster
# A regular (non-editable) install with the venv's paths and scripts, written under /staging: /staging/opt/venv
# holds labmesh's files only. --no-deps: the dependencies are in the venv already.
RUN /opt/venv/bin/pip install --no-deps --root /staging .

FROM ${PYTHON_IMAGE} AS runtime
# A fixed, unprivileged uid (numeric in USER below, so Kubernetes' runAsNonRoot can check it without /etc/passwd).
ARG LABMESH_UID=10001
RUN groupadd --system --gid "${LABMESH_UID}" labmesh \
    && useradd --system --uid "${LABMESH_UID}" --gid labmesh --home-dir /opt/labmesh --create-home labmesh
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /staging/opt/venv /opt/venv
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
