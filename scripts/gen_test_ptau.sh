#!/usr/bin/env bash
# Regenerates tests/data/srs/test-pot13.ptau, a small powers-of-tau ceremony file in snarkjs's format (one
# contribution; for tests only). Needs Node.js and the npm registry. Each run draws fresh randomness, so the
# file (and its sha256 in tests/data/srs/README.md) changes; the tests only need it to be a valid ceremony.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npx --yes snarkjs@0.7.6 powersoftau new bn128 13 "$work/pot13_0.ptau"
npx --yes snarkjs@0.7.6 powersoftau contribute "$work/pot13_0.ptau" "$work/pot13_1.ptau" \
  --name="veil test contribution" -e="veil test entropy 13"
npx --yes snarkjs@0.7.6 powersoftau verify "$work/pot13_1.ptau"
cp "$work/pot13_1.ptau" tests/data/srs/test-pot13.ptau
sha256sum tests/data/srs/test-pot13.ptau
