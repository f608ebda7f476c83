#!/usr/bin/env bash
# make demo: build the example appliance medium and boot it in qemu (finishes by itself).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/build-appliance.sh" jumphost
exec "$here/target/x86_64-unknown-linux-gnu/release/demo" jumphost
