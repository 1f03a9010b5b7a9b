#!/usr/bin/env bash
# What `make test` needs besides Rust, make and a Docker engine, installed when missing:
# cargo-nextest (the test runner); python3 and curl (the chaos scripts); docker-compose (the
# compose cluster of chaos S2/S3); nsenter (util-linux) and iptables (their partitions inside
# a container's network namespace); promtool (Debian's prometheus package, without its
# recommends: the metrics test runs `promtool check metrics`); chromium (Debian's, headless: the
# dashboard tests); openapi-spec-validator (PyPI: the OpenAPI test). Debian packages need root (or
# sudo).
set -euo pipefail

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
missing=()
for pair in curl:curl python3:python3 docker-compose:docker-compose nsenter:util-linux \
  iptables:iptables openssl:openssl; do
  tool=${pair%%:*} package=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || missing+=("$package")
done
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
updated=""
if [ "${#missing[@]}" -gt 0 ]; then
  $sudo apt-get update
  updated=1
  $sudo apt-get install -y "${missing[@]}"
fi
# Debian's chromium, without its recommends: the dashboard tests load /ui in it, headless.
if ! command -v chromium >/dev/null 2>&1; then
  [ -n "$updated" ] || { $sudo apt-get update; updated=1; }
  $sudo apt-get install -y --no-install-recommends chromium
fi
if ! command -v promtool >/dev/null 2>&1; then
  [ -n "$updated" ] || $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends prometheus
fi
# openapi-spec-validator (PyPI): the OpenAPI test checks /openapi.json with it.
if ! python3 -c "import openapi_spec_validator" >/dev/null 2>&1; then
  python3 -m pip install --quiet openapi-spec-validator
fi
