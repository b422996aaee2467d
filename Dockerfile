# waguard container image: the binary and the default policy, nothing else.
#
#   docker build -t waguard:0.1.0 .        (or: podman build -t waguard:0.1.0 .)
#   docker run --rm waguard:0.1.0 --version
#
# The chart (charts/waguard) mounts /etc/waguard/waguard.toml, the callers file and, unless
# policies.source=image, the policy over /etc/waguard/policies.

# ---- build ----------------------------------------------------------------------------------
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build folder between builds (BuildKit, podman/buildah).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin waguard \
    && install -D -m 0755 target/release/waguard /out/usr/local/bin/waguard \
    && mkdir -p /out/etc/waguard \
    && cp -r policies /out/etc/waguard/policies \
    && find /out/etc/waguard/policies -name '*_test.rego' -delete

# ---- run ------------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc and CA certificates; no shell, no package manager. Its "nonroot"
# variant runs as 65532:65532, the user the chart's securityContext expects.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/waguard"]
CMD ["serve", "--config", "/etc/waguard/waguard.toml"]
