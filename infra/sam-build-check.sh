#!/usr/bin/env bash
# Builds the functions exactly as a deployment does (`sam build --beta-features`, the
# rust-cargolambda build method: `cargo lambda build --release --bin <Binary>` per
# function, linked by zig) for x86_64, then checks that every function of the template
# has its `bootstrap` artifact, of at most 10 MB, and prints the sizes. Offline: nothing
# is deployed.
#
#   infra/sam-build-check.sh            build dir: .aws-sam/build (what `sam deploy` reads)
#   SAM_BUILD_DIR=/tmp/x infra/sam-build-check.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=infra/tools.sh
source infra/tools.sh
build_dir=${SAM_BUILD_DIR:-.aws-sam/build}

ensure_sam
ensure_cargo_lambda
echo "$("$SAM" --version); $(cargo lambda --version); zig $(zig version); $(cargo --version)"

started=$(date +%s)
"$SAM" build --beta-features \
  --template-file infra/template.yaml \
  --build-dir "$build_dir" \
  --parameter-overrides Architecture=x86_64 \
  --region us-east-1
elapsed=$(($(date +%s) - started))

# Every AWS::Serverless::Function of the template must have an x86-64 executable.
"$(dirname "$SAM")/python" - "$build_dir" infra/template.yaml <<'PY'
import os, sys, yaml

build_dir, template = sys.argv[1], sys.argv[2]
resources = yaml.safe_load(open(template))["Resources"]
functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
failed = False
total = 0
for logical_id, fn in sorted(functions.items()):
    binary = fn["Metadata"]["BuildProperties"]["Binary"]
    path = os.path.join(build_dir, logical_id, "bootstrap")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        print(f"MISSING  {logical_id:22} {binary:14} {path}")
        failed = True
        continue
    with open(path, "rb") as f:
        header = f.read(20)
    # ELF magic, then e_machine at offset 18: 0x3e is x86-64.
    machine = int.from_bytes(header[18:20], "little")
    if header[:4] != b"\x7fELF" or machine != 0x3E:
        print(f"NOT x86-64 ELF  {logical_id:22} {binary:14} {path}")
        failed = True
        continue
    size = os.path.getsize(path)
    total += size
    # The target for every function (BENCHMARKS.md), met by the release profile.
    if size > 10_000_000:
        print(f"OVER 10 MB  {logical_id:22} {binary:14} {size / 1e6:6.2f} MB  {path}")
        failed = True
        continue
    print(f"ok  {logical_id:22} {binary:14} {size / 1048576:6.2f} MiB  {path}")
print(f"{len(functions)} functions, {total / 1048576:.2f} MiB in all")
sys.exit(1 if failed else 0)
PY
echo "sam build: ${elapsed} s"
