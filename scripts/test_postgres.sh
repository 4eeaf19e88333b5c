# Sourced (". scripts/test_postgres.sh NAME") by scripts/test.sh and
# scripts/sanitize.sh, from the repository root: starts one throwaway
# PostgreSQL for the run (initdb in a temporary folder, as an unprivileged
# user: scripts/pg_test_server.sh), exports FACEREC_PG_URI for the gallery
# and multi-node tests, and stops it when the sourcing shell exits (an EXIT
# trap). When it cannot start, NAME's warning says so loudly and those tests skip.
pg_dir=$(mktemp -d /tmp/facerec_pg_XXXXXX)
trap 'scripts/pg_test_server.sh stop "$pg_dir"' EXIT
if pg_uri=$(scripts/pg_test_server.sh start "$pg_dir"); then
  export FACEREC_PG_URI=$pg_uri
else
  echo "!!!!! ${1:-test}: PostgreSQL could NOT be started: the PostgreSQL gallery tests will be SKIPPED !!!!!" >&2
fi
