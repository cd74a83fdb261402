#!/usr/bin/env bash
# Lints the deployment template offline: cfn-lint, then the SAM CLI's own validation
# (the SAM transform plus cfn-lint). Exits non-zero on any error or warning.
#
#   infra/lint.sh [TEMPLATE]    (default infra/template.yaml)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=infra/tools.sh
source infra/tools.sh
template=${1:-infra/template.yaml}

ensure_sam
echo "cfn-lint $("$CFN_LINT" --version | awk '{print $2}'): $template"
"$CFN_LINT" "$template"
echo "$("$SAM" --version): sam validate --lint"
# An explicit region: validation never needs AWS, but the SAM CLI wants one named.
"$SAM" validate --lint --template-file "$template" --region us-east-1
echo "lint: ok"
