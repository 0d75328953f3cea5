#!/usr/bin/env bash
# Install the hardware tools the fpga family's RTL tests use, from Debian packages:
#   yosys    — synthesis (`synth_xilinx -family xcup`, UltraScale+ as on the ZCU102)
#   iverilog — Icarus Verilog, RTL simulation for the bit-exact co-simulation
# Idempotent: does nothing when both are on PATH. Without root or apt it prints a note and exits 0;
# the tests that need the tools then print a clear "skipped: … not installed" note.
# Usage: scripts/setup-hw-tools.sh
set -euo pipefail

if command -v yosys >/dev/null && command -v iverilog >/dev/null && command -v vvp >/dev/null; then
  echo "setup-hw-tools: $(yosys -V | head -n1); $(iverilog -V 2>&1 | head -n1)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup-hw-tools: not root and no sudo; install yosys and iverilog by hand (Debian: apt-get install yosys iverilog)" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-hw-tools: no apt-get; install yosys and iverilog by hand" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends yosys iverilog
echo "setup-hw-tools: $(yosys -V | head -n1); $(iverilog -V 2>&1 | head -n1)"
