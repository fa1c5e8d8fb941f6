# syntax=docker/dockerfile:1
# The Kontor image: the one `kontor` binary on a distroless base, running as a non-root user.
# Build from the repository root:   docker build -t kontor:dev .
# (BuildKit, the default builder since Docker 23, is needed for the cache mounts.)
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz itself (deploy/kubernetes).

ARG RUST_VERSION=1.95

# --- build: the production binary (Cargo.toml's production profile: release, optimised across
# crates), from the locked dependency versions ------------------------------------------------
# Bookworm, like the run stage's debian12: the binary links against that release's glibc.
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The registry and target caches survive between builds on the same builder; the binary is
# copied out of the cached target folder because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile production --locked -p kontor \
    && install -D -m 0555 target/production/kontor /out/kontor

# --- run: glibc, libgcc, CA certificates and tzdata, nothing else (no shell) -----------------
# The bank and webhook HTTP clients verify TLS against the system roots, read at start from
# /etc/ssl/certs/ca-certificates.crt (this base ships Debian's ca-certificates); SSL_CERT_FILE
# or SSL_CERT_DIR point them at another bundle.
# SQLite is compiled into the binary; rustls with ring needs no OpenSSL.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/kontor /usr/local/bin/kontor
# 65532 is the base's "nonroot" user; numeric, so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kontor"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
