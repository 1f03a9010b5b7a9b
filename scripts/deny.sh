#!/usr/bin/env bash
# cargo deny over the dependency tree (deny.toml): licences, bans and sources always; known
# advisories when the RustSec database can be fetched (it lives on GitHub: on this project's
# machines, which reach package registries only, it cannot, and this says so). Installs
# cargo-deny when missing (from crates.io, ~2.5 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  cargo install cargo-deny --locked
fi
cargo deny --log-level error check licenses bans sources
if timeout 60 cargo deny --log-level error fetch db >/dev/null 2>&1; then
  cargo deny --log-level error check advisories
else
  echo "scripts/deny.sh: advisories NOT checked: the RustSec database (github.com/RustSec/advisory-db) could not be fetched from here" >&2
fi
