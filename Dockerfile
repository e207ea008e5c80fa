# A small non-root image of vigil: built with the workspace's toolchain, run on distroless
# (glibc, CA certificates, no shell). `docker build -t vigil .`
#
# Like prom/prometheus, the working directory /prometheus is writable by the image's user, so
# Prometheus's Deployments that pass only `--config.file` (chapter 14's) keep their data there.
FROM rust:1-bookworm AS build
# The UI is bundled by crates/web/build.rs with Node.js and npm.
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --profile dist -p vigil && mkdir -p /out/prometheus

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/dist/vigil /bin/vigil
COPY --from=build --chown=65532:65532 /out/prometheus /prometheus
EXPOSE 9090
USER 65532:65532
WORKDIR /prometheus
ENTRYPOINT ["/bin/vigil"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
