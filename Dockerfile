# syntax=docker/dockerfile:1
#
# One image, two binaries: /gpu-mcp-agent (DaemonSet, and the one-shot stdio process the
# gateway starts through pods/exec) and /gpu-mcp-gateway (Deployment).
#
#   docker build -t k8s-gpu-mcp-server:dev .
#
# The runtime base is distroless with glibc (cc-debian12): the agent loads libnvidia-ml.so.1
# with dlopen at run time, from the driver files the NVIDIA container runtime mounts into the
# container, so the binaries must be dynamically linked against glibc. The builder is Debian 12
# too, so the glibc the binaries are linked against matches the one they run with.

# Pinned to rust-toolchain.toml.
ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
ARG RUST_VERSION
# Use the image's toolchain as is; rust-toolchain.toml would otherwise ask rustup for the
# rustfmt and clippy components, which a release build does not need.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
# The target directory is a build cache, so the binaries are copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gpu-mcp-agent -p gpu-mcp-gateway \
    && install -D -m 0755 target/release/gpu-mcp-agent /out/gpu-mcp-agent \
    && install -D -m 0755 target/release/gpu-mcp-gateway /out/gpu-mcp-gateway

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="k8s-gpu-mcp-server" \
      org.opencontainers.image.description="GPU diagnostics for Kubernetes over the Model Context Protocol" \
      org.opencontainers.image.source="https://github.com/k8s-gpu-mcp-server/k8s-gpu-mcp-server" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/gpu-mcp-agent /gpu-mcp-agent
COPY --from=builder /out/gpu-mcp-gateway /gpu-mcp-gateway
# 65532 is distroless' "nonroot". The chart overrides the user per component
# (docs/security.md): UID 1000 for the gateway, UID 0 only for an agent reading /dev/kmsg.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/gpu-mcp-agent"]
CMD ["--transport", "http", "--listen", "0.0.0.0:8080"]
