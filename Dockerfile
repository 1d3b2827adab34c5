# The webhook image. distroless/cc carries glibc and CA certificates; nonroot is UID 65532.
# The build stage is bookworm, like distroless cc-debian12, so the binary asks for no newer glibc.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --bin drain-webhook \
    && cp target/release/drain-webhook /drain-webhook

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /drain-webhook /drain-webhook
USER 65532:65532
# 8443: admission webhook (TLS); 8080: health and metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/drain-webhook"]
CMD ["serve"]
