# rafiki-rs/predictor: the predictor of an inference job (fan-out to its inference workers,
# ensemble of their answers). Built by scripts/build-images.sh.
ARG BASE_IMAGE=rafiki-rs/base:bookworm
FROM ${BASE_IMAGE}
COPY rafiki-predictor /usr/local/bin/rafiki-predictor
CMD ["rafiki-predictor"]
