#!/usr/bin/env bash
# `make test`'s pytest run: the browser tests (-m e2e) and the rest as two pytest processes side by side.
# Run one after the other they left the cores idle a third of the time on a 2-core box (the browser tests
# wait on Chromium and on the server's reruns); side by side the cores are busy throughout, so the suite is
# bound by CPU (~16 min here, README.md). Each process gets half the cores for torch/OpenMP: two processes
# spinning all threads on the same cores slow each other down many times over (sam_core/threads.py). The
# rest's output streams; the browser tests' follows it. Each prints its slowest tests (what to trim: the goal
# is ~15 min). Extra arguments go to both runs; SAMLAB_TEST_SERIAL=1 runs the whole suite in one process.
set -u
PY=${PY:-.venv/bin/python}
if [ "${SAMLAB_TEST_SERIAL:-0}" = 1 ]; then
    exec "$PY" -m pytest -q "$@"
fi
cores=$(nproc 2>/dev/null || echo 2)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cores > 3 ? cores / 2 : 1 ))}
logs=$(mktemp -d)
e2e_pid=
trap 'kill "$e2e_pid" 2>/dev/null; rm -rf "$logs"' EXIT
"$PY" -m pytest -q --durations=10 -m e2e -p no:cacheprovider --basetemp "$logs/tmp-e2e" "$@" > "$logs/e2e.log" 2>&1 &
e2e_pid=$!
echo "== the suite without the browser tests (the browser tests run beside it; their report follows)"
"$PY" -m pytest -q --durations=15 -m "not e2e" "$@"
rest=$?
wait "$e2e_pid"
e2e=$?
echo
echo "== the browser tests (-m e2e)"
cat "$logs/e2e.log"
echo "== exit status: the rest $rest, the browser tests $e2e"
# pytest exits 5 when its selection is empty: a filter given through "$@" may leave one side with nothing
if [ "$rest" = 5 ] && [ "$e2e" = 5 ]; then exit 5; fi
[ "$rest" = 5 ] && rest=0
[ "$e2e" = 5 ] && e2e=0
[ "$rest" = 0 ] && [ "$e2e" = 0 ]
