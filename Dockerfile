# The webhook image for users who build with a registry at hand. `make images` writes the same
# image without a daemon (docs/proof.md); both build the binary with `make static`, so the
# compiler flags live in the Makefile only. The binary is static (glibc, +crt-static) and needs
# nothing at run time: in a cluster the API server's CA comes from the service account, so the
# image carries no CA bundle.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cp "$(make -s static STATIC_BINS=drain-webhook | tail -n 1)" /drain-webhook

FROM scratch
COPY --from=build /drain-webhook /drain-webhook
USER 65532:65532
# 8443: admission webhook (TLS); 8080: health and metrics.
EXPOSE 8443 8080
# The server drains on SIGTERM itself (unready, serve for the shutdown delay, finish reviews).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/drain-webhook"]
CMD ["serve"]
