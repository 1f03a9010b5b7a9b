# forewarm/runner:<version> — the in-container runner, a static binary on an empty image.
# Built by `make images` (no registry exists: every image is built locally).
FROM scratch
COPY forewarm-runner /forewarm-runner
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/forewarm-runner"]
