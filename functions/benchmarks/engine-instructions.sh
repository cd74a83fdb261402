#!/usr/bin/env bash
# The engine's CPU per operation in each given Cargo build profile, side by side:
# instructions counted under valgrind (cachegrind without cache simulation), which do not
# depend on the load of the machine, and, for information only, the native wall time.
# From the repository root:
#
#   functions/benchmarks/engine-instructions.sh release speed
#   functions/benchmarks/engine-instructions.sh release speed@/tmp/other-target --out FILE
#
# Each argument is a profile of the workspace's Cargo.toml, optionally with the target
# directory to build it in (default: $CARGO_TARGET_DIR or target/). The first profile is
# the baseline of the ratio columns. --out FILE writes the table there (for run.sh and
# BENCHMARKS.md) as well as to stdout.
#
# Instructions per operation = (I(n2) - I(n1)) / (n2 - n1), where I(n) is the count of a
# run of `engine-ops <operation> <n>` (examples/engine-ops.rs): both runs do the same
# setup, so the difference is n2 - n1 operations. Needs valgrind.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
OUT=""
PROFILES=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    *) PROFILES+=("$1"); shift ;;
  esac
done
if [[ ${#PROFILES[@]} -eq 0 ]]; then
  echo "usage: $0 PROFILE[@TARGET_DIR]... [--out FILE]" >&2
  exit 2
fi
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }

# operation, n1, n2 (under valgrind), n (native timing): enough operations that the
# difference dwarfs the noise of the setup, few enough that valgrind's ~50x slowdown stays
# within seconds.
OPERATIONS=(
  "push 20 220 5000"
  "pull-first-10k 1 4 40"
  "pull-first-10k-gzip 1 4 20"
  "pull-first-10k-sqlite 1 4 20"
  "pull-incremental-1k 20 220 5000"
  "pull-incremental-1k-sqlite 10 60 1000"
  "pull-incremental-10k-sqlite 10 60 1000"
)

declare -A BINARY
for spec in "${PROFILES[@]}"; do
  profile=${spec%%@*}
  dir=${CARGO_TARGET_DIR:-$ROOT/target}
  [[ $spec == *@* ]] && dir=${spec#*@}
  out_dir=$profile
  [[ $profile == dev ]] && out_dir=debug
  # ENGINE_OPS_SKIP_BUILD=1 takes the binaries as they are (while another build holds
  # cargo's lock on that directory).
  if [[ -z ${ENGINE_OPS_SKIP_BUILD:-} ]]; then
    echo "== building engine-ops, profile $profile, in $dir" >&2
    CARGO_TARGET_DIR=$dir cargo build --locked --profile "$profile" -p benchmarks --example engine-ops >&2
  fi
  BINARY[$profile]=$dir/$out_dir/examples/engine-ops
done

# instructions BINARY OPERATION N: the instruction count of one run.
instructions() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 >/dev/null |
    sed -n 's/^==[0-9]*== I *refs: *//p' | tr -d ','
}

# commas N: 1234567 -> 1,234,567 (printf's grouping depends on the locale).
commas() {
  printf '%d' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'
}

# nanos BINARY OPERATION N: the native wall time per operation (the example prints it).
nanos() {
  "$1" "$2" "$3" | awk '{print $3}'
}

names=()
for spec in "${PROFILES[@]}"; do names+=("${spec%%@*}"); done
base=${names[0]}
header="| operation |"
rule="| --- |"
for p in "${names[@]}"; do header+=" instructions/op, \`$p\` |"; rule+=" --- |"; done
for p in "${names[@]:1}"; do header+=" \`$p\` / \`$base\` (instructions) |"; rule+=" --- |"; done
for p in "${names[@]}"; do header+=" ns/op native, \`$p\` |"; rule+=" --- |"; done
for p in "${names[@]:1}"; do header+=" \`$p\` / \`$base\` (time) |"; rule+=" --- |"; done

rows=()
for line in "${OPERATIONS[@]}"; do
  read -r op n1 n2 native <<<"$line"
  declare -A per_op=() ns=()
  for p in "${names[@]}"; do
    echo "== $op, $p: valgrind n=$n1 and n=$n2" >&2
    i1=$(instructions "${BINARY[$p]}" "$op" "$n1")
    i2=$(instructions "${BINARY[$p]}" "$op" "$n2")
    per_op[$p]=$(( (i2 - i1) / (n2 - n1) ))
  done
  # Native times: the profiles alternate, three rounds, the fastest round counts, so that
  # a burst of load on the machine does not land on one profile only.
  for round in 1 2 3; do
    for p in "${names[@]}"; do
      t=$(nanos "${BINARY[$p]}" "$op" "$native")
      if [[ $round == 1 ]] || (( t < ${ns[$p]} )); then ns[$p]=$t; fi
    done
  done
  row="| $op |"
  for p in "${names[@]}"; do row+=" $(commas "${per_op[$p]}") |"; done
  for p in "${names[@]:1}"; do
    row+=" $(awk -v a="${per_op[$p]}" -v b="${per_op[$base]}" 'BEGIN{printf "%.2f", a/b}') |"
  done
  for p in "${names[@]}"; do row+=" $(commas "${ns[$p]}") |"; done
  for p in "${names[@]:1}"; do
    row+=" $(awk -v a="${ns[$p]}" -v b="${ns[$base]}" 'BEGIN{printf "%.2f", a/b}') |"
  done
  rows+=("$row")
  unset per_op ns
done

machine="$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1), $(nproc) cores"
table=$(
  echo "Command: \`functions/benchmarks/engine-instructions.sh ${names[*]}\`"
  echo
  echo "Machine: $machine; load average at the end $(cut -d' ' -f1 /proc/loadavg). $(valgrind --version); instructions per operation from two runs of \`engine-ops\` that differ only in the number of operations. Native times: the fastest of three alternating rounds, informative only."
  echo
  echo "$header"
  echo "$rule"
  printf '%s\n' "${rows[@]}"
)
echo "$table"
if [[ -n $OUT ]]; then echo "$table" >"$OUT"; fi
