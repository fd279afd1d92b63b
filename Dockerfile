# hookline: multi-stage build; the runtime image holds the binary only and
# runs as a non-root user. SQLite and libpq (with OpenSSL) are compiled in.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hookline

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/hookline --create-home hookline
COPY --from=build /src/target/release/hookline /usr/local/bin/hookline
USER hookline
WORKDIR /var/lib/hookline
ENV HOOKLINE_LISTEN=0.0.0.0:8080 \
    HOOKLINE_DATA_DIR=/var/lib/hookline
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["hookline"]
CMD ["serve"]
