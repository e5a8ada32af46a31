# syntax=docker/dockerfile:1
# callback-sidecar image. scripts/check-deploy.sh lints this file and replays its stages without a
# container engine (scripts/deploy-checks/dockerfile.mjs): keep to the instructions it knows.

# One pinned base for both stages, so the code runs on the Node that built it. Node 24 is an LTS line
# (supported to 2028-04); bookworm matches the Debian 12 machines that replay this file in CI.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first: the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="callback-sidecar" \
      org.opencontainers.image.description="Consumes Kafka domain events and sends signed webhooks (pyfly.callbacks)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
WORKDIR /app
# Production dependencies only, without install scripts: none of them builds native code.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
# After the installs, so npm kept its cache in /root/.npm. HOME in /tmp: the only writable path
# under readOnlyRootFilesystem.
# The CLI itself keeps V8's old space near the live set (src/cli/index.ts); the image adds a hard
# cap, which a container's memory limit wants. Raise it for large payloads: the event consumer
# buffers 2 x max-in-flight records (kafka.max-buffered), so about 6 x max-in-flight x the largest payload, plus 64 MB
# (env NODE_OPTIONS overrides it; docs/operations.md#sizing).
ENV NODE_ENV=production \
    HOME=/tmp \
    NODE_OPTIONS=--max-old-space-size=128 \
    PYFLY_CONFIG_FILE=/etc/callback-sidecar/application.yml
# Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd. Files stay root-owned:
# the process cannot change its own code.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "/app/dist/cli/index.js"]
CMD ["run"]
