# forewarm/node:<version> — a forewarm node (and the delay proxy, `forewarm proxy`): the static
# `forewarm` binary on an empty image. Built by `make images` (no registry exists).
# The node reaches the Docker engine through the mounted socket (/var/run/docker.sock) and,
# with `container = "<its name>"` in its config, joins each tenant network to reach runners.
FROM scratch
COPY forewarm /forewarm
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/forewarm"]
CMD ["node", "--config", "/etc/forewarm/node.toml"]
