# forewarm/probe:test — test-only: a static binary that tries TCP connections from inside a
# container (crates/forewarm-probe). Built by `make images` for the tenant isolation tests; no
# node ever runs it as a workload, and the runner image does not carry it.
FROM scratch
COPY forewarm-probe /forewarm-probe
USER 65534:65534
ENTRYPOINT ["/forewarm-probe"]
