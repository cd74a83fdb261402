# Pinned deployment tools, each in its own Python virtual environment outside the
# repository. Sourced by the scripts of infra/; nothing here talks to AWS.
#
#   ensure_sam           aws-sam-cli (with cfn-lint) -> $SAM, $CFN_LINT
#   ensure_cargo_lambda  cargo-lambda (with zig)     -> $CARGO_LAMBDA_BIN, zig on PATH
#   ensure_moto          moto_server                 -> $MOTO_SERVER, $MOTO_PYTHON (boto3, PyYAML)
#
# A tool is installed only when missing or at another version. INFRA_TOOLS_DIR moves the
# environments (default ~/.cache/replicache-sync/tools).

# The versions: infra/versions.env, the one place they are pinned.
# shellcheck source=infra/versions.env
source "$(dirname "${BASH_SOURCE[0]}")/versions.env"

INFRA_TOOLS_DIR=${INFRA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/replicache-sync/tools}
export SAM_CLI_TELEMETRY=0

_infra_log() { printf '[infra] %s\n' "$*" >&2; }

# _infra_venv NAME: creates the environment NAME once; prints its directory.
_infra_venv() {
  local dir="$INFRA_TOOLS_DIR/$1"
  if [ ! -x "$dir/bin/python" ]; then
    mkdir -p "$INFRA_TOOLS_DIR"
    python3 -m venv "$dir" >&2 || return 1
  fi
  printf '%s\n' "$dir"
}

# _infra_pip_ensure VENV PKG==VERSION...: installs what is missing or at another version.
_infra_pip_ensure() {
  local venv=$1 spec name want have missing=()
  shift
  for spec in "$@"; do
    name=${spec%%==*}
    name=${name%%[*}
    want=${spec#*==}
    have=$("$venv/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    if [ "$have" != "$want" ]; then missing+=("$spec"); fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    _infra_log "installing ${missing[*]} into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}" >&2
  fi
}

ensure_sam() {
  local venv
  venv=$(_infra_venv sam) || return 1
  _infra_pip_ensure "$venv" "aws-sam-cli==$AWS_SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION" || return 1
  SAM="$venv/bin/sam"
  CFN_LINT="$venv/bin/cfn-lint"
}

ensure_cargo_lambda() {
  local venv zig_dir shims
  venv=$(_infra_venv cargo-lambda) || return 1
  _infra_pip_ensure "$venv" "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION" || return 1
  zig_dir=$("$venv/bin/python" -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))') || return 1
  # `cargo lambda` runs cargo-lambda from PATH, and it links with the zig it finds on PATH
  # (so does `sam build`). Only those two go on PATH: the environment's python stays off.
  shims="$venv/shims"
  mkdir -p "$shims"
  ln -sf "$venv/bin/cargo-lambda" "$shims/cargo-lambda"
  CARGO_LAMBDA_BIN="$shims"
  case ":$PATH:" in
    *":$shims:"*) ;;
    *) PATH="$shims:$zig_dir:$PATH" ;;
  esac
  export PATH
}

# Uses a moto_server on PATH when it is the pinned version, else installs one.
ensure_moto() {
  local venv
  if command -v moto_server >/dev/null 2>&1 &&
    [ "$(python3 -m pip show moto 2>/dev/null | sed -n 's/^Version: //p')" = "$MOTO_VERSION" ]; then
    MOTO_SERVER=$(command -v moto_server)
    MOTO_PYTHON=python3
    return 0
  fi
  venv=$(_infra_venv moto) || return 1
  _infra_pip_ensure "$venv" "moto[server]==$MOTO_VERSION" || return 1
  MOTO_SERVER="$venv/bin/moto_server"
  MOTO_PYTHON="$venv/bin/python"
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_port PORT SECONDS: until something listens on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 limit=$2 waited=0
  until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port" 2>/dev/null; do
    sleep 0.2
    waited=$((waited + 1))
    if [ "$waited" -ge $((limit * 5)) ]; then return 1; fi
  done
}
