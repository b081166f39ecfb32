# Latchkey: the release build, in a small non-root runtime image.
#   docker build -t latchkey .
#   docker run -p 8080:8080 -e LATCHKEY_ISSUER=https://id.example.com latchkey
# With no LATCHKEY_DATABASE_URL it keeps an SQLite file in the /app/data volume; set
# LATCHKEY_DATABASE_URL=postgres://... for PostgreSQL. Probes: GET /healthz (alive),
# GET /readyz (database reachable).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p latchkey --bin latchkey \
 && strip target/release/latchkey

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin latchkey \
 && mkdir -p /app/data /app/config && chown -R latchkey /app/data
COPY --from=build /src/target/release/latchkey /usr/local/bin/latchkey
COPY config/default.toml /app/config/default.toml
WORKDIR /app
USER latchkey
ENV LATCHKEY_LISTEN=0.0.0.0:8080 \
    LATCHKEY_LOG_FORMAT=json
VOLUME ["/app/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
