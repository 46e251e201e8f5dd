# syntax=docker/dockerfile:1
# ssl-loss-server images. Two targets:
#   docker build --target cpu -t ssl-loss-server:cpu .   (node 20 slim, @tensorflow/tfjs-node)
#   docker build --target gpu -t ssl-loss-server:gpu .   (CUDA 11.2 + cuDNN 8, @tensorflow/tfjs-node-gpu)
# A plain `docker build .` builds the cpu target (the last stage).
#
# Every install, health and start step is docker/recipe.sh, which CI also runs outside
# Docker (`docker/recipe.sh cpu ci`); see docs/deployment.md for what was and was not run.

# tfjs-node-gpu 4.22 downloads libtensorflow 2.9.1, built against CUDA 11.2 and cuDNN 8.1
# (TensorFlow's tested build configurations for 2.9); the runtime image carries exactly
# those libraries. Override with --build-arg CUDA_IMAGE=... to use a mirror of it.
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------
# Node.js for the CUDA images: the official build needs glibc >= 2.28, Ubuntu 20.04 has 2.31.
FROM ${NODE_IMAGE} AS node

# The CUDA base with node and npm copied in.
FROM ${CUDA_IMAGE} AS cuda-node
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version

# ---------------------------------------------------------------------------------------
# Build stages: compilers and python exist only here (node-pre-gyp's fallback build, and the
# wheel route of setup:tensorflow), never in the images that run.
FROM ${NODE_IMAGE} AS build-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so that a source change does not reinstall them (layer cache).
COPY package.json package-lock.json .npmrc ./
COPY docker/recipe.sh docker/recipe.sh
COPY scripts/ scripts/
RUN bash docker/recipe.sh cpu deps
# download (default): tfjs-node's own install script; wheel: build from the tensorflow-cpu wheel.
ARG TF_ADDON_SOURCE=download
RUN TF_ADDON_SOURCE=${TF_ADDON_SOURCE} bash docker/recipe.sh cpu backend
COPY . .

FROM cuda-node AS build-gpu
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY docker/recipe.sh docker/recipe.sh
COPY scripts/ scripts/
RUN bash docker/recipe.sh gpu deps
# Runs @tensorflow/tfjs-node-gpu's install script (ignore-scripts is overridden for it alone).
RUN bash docker/recipe.sh gpu backend
COPY . .

# ---------------------------------------------------------------------------------------
# GPU runtime.
FROM cuda-node AS gpu
# TensorFlow otherwise reserves nearly all GPU memory in the first worker process; the
# server runs one worker process per visible GPU and tensors are allocated as they come.
# libtensorflow 2.9.1 carries no kernels for GPUs newer than its CUDA 11.2 build knows
# (Hopper and later): the driver compiles its PTX at first use. The cache keeps that to
# once per container instead of once per worker process (the default cache is 256 MiB,
# too small for TensorFlow's kernels, and sits in a home directory that does not exist).
ENV TF_FORCE_GPU_ALLOW_GROWTH=true \
    CUDA_CACHE_PATH=/tmp/cuda-cache \
    CUDA_CACHE_MAXSIZE=4294967296 \
    BACKEND=tensorflow-gpu \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
# Non-root: uid/gid 1000, the same numbers as the `node` user of the cpu image, so one
# securityContext (runAsUser 1000, fsGroup 1000) fits both.
RUN groupadd --gid 1000 app \
 && useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data && chown 1000:1000 /data
WORKDIR /app
# Owned by root and read-only to the server: it writes only to DATA_DIR and /tmp.
COPY --from=build-gpu /app /app
VOLUME ["/data"]
USER 1000:1000
EXPOSE 8080
# The start period covers CUDA initialisation and the workers' warm-up (/health/ready is
# 503 until every worker is warm).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["bash", "docker/recipe.sh", "gpu", "health"]
STOPSIGNAL SIGTERM
CMD ["bash", "docker/recipe.sh", "gpu", "start"]

# ---------------------------------------------------------------------------------------
# CPU runtime (last, so that it is the default target).
FROM ${NODE_IMAGE} AS cpu
ENV BACKEND=tensorflow \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
RUN mkdir -p /data && chown node:node /data
WORKDIR /app
COPY --from=build-cpu /app /app
VOLUME ["/data"]
# `node` is uid/gid 1000 in the official node images.
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["bash", "docker/recipe.sh", "cpu", "health"]
STOPSIGNAL SIGTERM
CMD ["bash", "docker/recipe.sh", "cpu", "start"]
