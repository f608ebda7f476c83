#!/usr/bin/env bash
# Placeholder until the lbu package recipe lands (issue: overlays and lbu).
set -euo pipefail
exit 0
