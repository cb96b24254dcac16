#!/usr/bin/env bash
# Submit a raykd command to a Ray cluster's Jobs API, with token authentication.
#
#   cluster/submit.sh [--address http://127.0.0.1:8265] [--no-wait] [--submission-id ID] -- \
#       raykd train recipes/quickstart.yaml --set run.storage_path=s3://BUCKET/raykd
#
# The checkout goes with the job (cluster/runtime_env.yaml: working_dir is the repository root, so
# recipe paths resolve). The token comes from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token
# (`ray get-auth-token --generate` made it; the cluster must have been started with the same one).
# Authentication stays on: RAY_AUTH_MODE is token here, and any other value is refused.
set -euo pipefail

usage="usage: cluster/submit.sh [--address URL] [--no-wait] [--submission-id ID] -- raykd COMMAND ..."
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --address) args+=(--address "$2"); shift 2 ;;
    --no-wait) args+=(--no-wait); shift ;;
    --submission-id) args+=(--submission-id "$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "submit.sh: unknown option $1; $usage" >&2; exit 2 ;;
  esac
done
if [[ $# -eq 0 ]]; then
  echo "submit.sh: no command after --; $usage" >&2
  exit 2
fi
if [[ "${RAY_AUTH_MODE:-token}" != "token" ]]; then
  echo "submit.sh: RAY_AUTH_MODE=${RAY_AUTH_MODE} refused: raykd submits jobs with token authentication only" >&2
  exit 2
fi
export RAY_AUTH_MODE=token
if ! ray get-auth-token >/dev/null 2>&1; then
  echo "submit.sh: no Ray authentication token: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or put the" \
       "cluster's token in ~/.ray/auth_token" >&2
  exit 2
fi
cd "$(dirname "$0")/.."  # the runtime env's working_dir is the repository root
exec ray job submit "${args[@]}" --runtime-env cluster/runtime_env.yaml -- "$@"
