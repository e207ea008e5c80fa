# A small non-root image of vigil: built with the workspace's toolchain and linked statically
# with glibc (as scripts/image builds it), run on distroless/static (CA certificates, no
# shell, no shared libraries). `docker build -t vigil .`
#
# Like prom/prometheus, the working directory /prometheus is writable by the image's user, so
# Prometheus's Deployments that pass only `--config.file` (chapter 14's) keep their data there.
FROM rust:1-bookworm AS build
# The UI is bundled by crates/web/build.rs with Node.js and npm.
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# `--target` keeps crt-static off build scripts and proc macros, which must stay dynamic.
RUN host=$(rustc -vV | sed -n 's/^host: //p') \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile dist -p vigil --target "$host" \
 && mkdir -p /out/prometheus && cp "target/$host/dist/vigil" /out/vigil

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vigil /bin/vigil
COPY --from=build --chown=65532:65532 /out/prometheus /prometheus
EXPOSE 9090
USER 65532:65532
WORKDIR /prometheus
ENTRYPOINT ["/bin/vigil"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
