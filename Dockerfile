# One image, two binaries: /gpu-mcp-agent (DaemonSet, and the one-shot stdio process the
# gateway starts through pods/exec) and /gpu-mcp-gateway (Deployment).
#
# With registry access (builds the binaries in a Rust image, runs on distroless):
#
#   DOCKER_BUILDKIT=1 docker build -t k8s-gpu-mcp-server:dev .
#
# Without it (binaries built on this machine, runtime files assembled from this machine's
# glibc; `cargo xtask image` prepares target/image/ and runs exactly this):
#
#   DOCKER_BUILDKIT=1 docker build --build-arg BINARIES=prebuilt \
#       --build-arg RUNTIME_BASE=local-base -t k8s-gpu-mcp-server:dev .
#
# The runtime is glibc-based (distroless cc-debian12, or the same files from a Debian 12 host):
# the agent loads libnvidia-ml.so.1 with dlopen at run time, from the driver files the NVIDIA
# container runtime mounts into the container, so the binaries are dynamically linked against
# glibc, and the builder is Debian 12 too so both glibc versions match.
#
# BuildKit builds only the stages the two arguments select, so neither default image is
# pulled when both are overridden.

# Pinned to rust-toolchain.toml.
ARG RUST_VERSION=1.95.0
# Where the binaries come from: `builder` (compiled here) or `prebuilt` (target/image/bin).
ARG BINARIES=builder
# The runtime files: the published distroless base, or `local-base` (target/image/rootfs).
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
ARG RUST_VERSION
# Use the image's toolchain as is; rust-toolchain.toml would otherwise ask rustup for the
# rustfmt and clippy components, which a release build does not need.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
# The target directory is a build cache, so the binaries are copied out in the same step,
# stripped (`install -s`: the release profile keeps symbols for profiling, the image needs none).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gpu-mcp-agent -p gpu-mcp-gateway \
    && install -s -D -m 0755 target/release/gpu-mcp-agent /out/gpu-mcp-agent \
    && install -s -D -m 0755 target/release/gpu-mcp-gateway /out/gpu-mcp-gateway

FROM scratch AS prebuilt
COPY target/image/bin/ /out/

# glibc, the loader, libgcc_s, CA certificates and a passwd/group naming 65532 "nonroot",
# the files the binaries need from distroless, assembled by `cargo xtask image`.
FROM scratch AS local-base
COPY target/image/rootfs/ /

FROM ${BINARIES} AS binaries

FROM ${RUNTIME_BASE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="k8s-gpu-mcp-server" \
      org.opencontainers.image.description="GPU diagnostics for Kubernetes over the Model Context Protocol" \
      org.opencontainers.image.source="https://github.com/k8s-gpu-mcp-server/k8s-gpu-mcp-server" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=binaries /out/gpu-mcp-agent /gpu-mcp-agent
COPY --from=binaries /out/gpu-mcp-gateway /gpu-mcp-gateway
# 65532 is distroless' "nonroot". The chart overrides the user per component
# (docs/security.md): UID 1000 for the gateway, UID 0 only for an agent reading /dev/kmsg.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/gpu-mcp-agent"]
CMD ["--transport", "http", "--listen", "0.0.0.0:8080"]
