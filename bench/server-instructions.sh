#!/usr/bin/env bash
# Server instructions per statement, counted by callgrind on a single-user Postgres backend: the
# same count on every run, whatever else the machine is doing (wall and CPU times here swing by
# 2-3x; see bench/results/README.md). For comparing statement shapes, not for absolute speed.
#
#   bench/server-instructions.sh [--setup SETUP.sql] [FILE.sql ...]
#
# Each FILE holds one statement. Without files it measures the batch enqueue: 1,000 tasks as the
# client sends them (enqueue_many_json: names and args), the same with a queue name per task, and
# a bare INSERT ... SELECT of the same names and args (what the table alone costs).
#
# It makes a throwaway cluster (initdb) in a temp directory, applies pgjobs' migrations there
# (from this checkout's build: `npm run build` first) and SETUP.sql if given (say, a schema
# change to weigh: `alter table jobs.tasks drop constraint tasks_queue_check;`), then runs each statement 1 and 5 times in
# one transaction (rolled back, on an emptied table) under callgrind and prints
# (Ir of 5 - Ir of 1) / 4: one execution, without start-up, parsing or planning.
# Needs valgrind and PostgreSQL's server binaries (initdb, pg_ctl, postgres); as root, the
# cluster runs as the user postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
[ -x "$bindir/postgres" ] || { echo "server-instructions: no postgres binaries in '$bindir': set PG_BINDIR" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "server-instructions: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

setup=
if [ "${1:-}" = --setup ]; then setup=$(realpath "$2"); shift 2; fi

work=$(mktemp -d /tmp/pgjobs-instructions-XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"

as_pg "$bindir/initdb" -D "$work/data" --locale=C.UTF-8 -E UTF8 -A trust >/dev/null
port=$((20000 + RANDOM % 20000))
as_pg "$bindir/pg_ctl" -D "$work/data" -o "-p $port -k $work -c listen_addresses=''" -l "$work/log" -w start >/dev/null
url="postgres://postgres@/postgres?host=$work&port=$port"
node bin/run.js migrate --database-url "$url" >/dev/null
if [ -n "$setup" ]; then
  node --input-type=module -e '
    import pg from "pg"; import { readFileSync } from "node:fs";
    const c = new pg.Client(process.argv[1]); await c.connect();
    await c.query(readFileSync(process.argv[2], "utf8")); await c.end();' "$url" "$setup"
fi
as_pg "$bindir/pg_ctl" -D "$work/data" -w stop >/dev/null

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  node --input-type=module - "$work" <<'EOF'
import { writeFileSync } from "node:fs";
const dir = process.argv[2];
const n = 1000;
const names = JSON.stringify(Array(n).fill("noop"));
const args = JSON.stringify(Array.from({ length: n }, (_, i) => [{ i }]));
const queues = JSON.stringify(Array(n).fill("email"));
writeFileSync(`${dir}/enqueue_many_json.sql`, `select jobs.enqueue_many_json('${names}', '${args}');`);
writeFileSync(`${dir}/enqueue_many_json-queues.sql`, `select jobs.enqueue_many_json('${names}', '${args}', '${queues}');`);
writeFileSync(`${dir}/bare-insert.sql`, `insert into jobs.tasks (name, args) select 'noop', x from jsonb_array_elements('${args}') x returning id;`);
EOF
  files=("$work/enqueue_many_json.sql" "$work/enqueue_many_json-queues.sql" "$work/bare-insert.sql")
fi

# Ir of the statement in $1 run $2 times (single-user mode: statements end with ";" and a blank line).
run() {
  { printf 'truncate jobs.tasks;\n\nbegin;\n\n'; for _ in $(seq "$2"); do cat "$1"; printf '\n\n'; done; printf 'rollback;\n\n'; } > "$work/in.sql"
  chmod 644 "$work/in.sql"
  rm -f "$work"/cg.*
  as_pg valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$bindir/postgres" --single -j -D "$work/data" postgres \
    < "$work/in.sql" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  if grep -q "ERROR" "$work/out"; then grep -m1 "ERROR" "$work/out" >&2; exit 1; fi
  grep -h "^summary:" "$work"/cg.* | awk '{ s += $2 } END { print s }'
}
for f in "${files[@]}"; do
  one=$(run "$f" 1)
  five=$(run "$f" 5)
  awk -v f="$(basename "$f")" -v a="$one" -v b="$five" 'BEGIN { printf "%-32s %6.1f M instructions\n", f, (b - a) / 4 / 1e6 }'
done
