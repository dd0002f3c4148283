# PostgreSQL 15 with the dnr extension, built from this checkout.
# Used by docker-compose.yml; not tested on the project's machines (they
# have no Docker): scripts/dev-postgres.sh is the tested way.
FROM postgres:15-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential curl ca-certificates pkg-config \
      libclang-dev clang postgresql-server-dev-15 \
 && rm -rf /var/lib/apt/lists/*
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH
RUN cargo install --locked cargo-pgrx --version 0.18.0 \
 && cargo pgrx init --pg15 /usr/lib/postgresql/15/bin/pg_config
COPY . /src
WORKDIR /src/dnr-pgext
RUN cargo pgrx package --pg-config /usr/lib/postgresql/15/bin/pg_config

FROM postgres:15-bookworm
COPY --from=build /src/target/release/dnr-pg15/usr/share/postgresql/15/extension/ /usr/share/postgresql/15/extension/
COPY --from=build /src/target/release/dnr-pg15/usr/lib/postgresql/15/lib/ /usr/lib/postgresql/15/lib/
COPY dnr-pgext/sql/dnr--*.sql /usr/share/postgresql/15/extension/
COPY docker/init.sql /docker-entrypoint-initdb.d/10-dnr.sql
