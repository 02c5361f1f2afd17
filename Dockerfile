# Multi-stage build: compile in the Rust image, run on slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY templates templates
# The default poster background is compiled into the binary.
COPY static static
COPY benches benches
RUN cargo build --release --locked --bin fission

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app fission \
 && mkdir -p /app /data && chown fission /app /data
WORKDIR /app
COPY --from=build /src/target/release/fission /usr/local/bin/fission
COPY static static
USER fission
ENV FISSION_BIND=0.0.0.0:8080 \
    FISSION_STORAGE=file:///data
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["fission"]
CMD ["serve"]
