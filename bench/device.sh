#!/usr/bin/env bash
# Issue 19's measurements on the 16-core device, in one call that fits its 600 s per command.
#
# Here first (the package registry is needed; ~2.5 min):
#   .venv/bin/python -m bench.offline bench/offline --python-version 3.12 --archive \
#       --seed-src /path/to/the/tutorial/src/main.go
# Then one device `run` with carry ["bench/offline.tar.xz"], timeout_s 590, command:
#   bash bench/device.sh            # both parts, ~9.5 min; or one: threads (~5 min), scaling (~4.5)
#   bash bench/device.sh floors     # ~40 s, not in "all": the reference servers' idle phase
# Everything goes to $OUT, which comes back; on this side draw the plots from its JSON with
#   .venv/bin/python -m bench.plots OUT/results/*.json --out docs/images
# Each step has its own time limit, so one that hangs still leaves the others' results.
set -u
out="${OUT:?OUT: the folder whose files come back}"
python3 -m tarfile -e bench/offline.tar.xz /tmp/ || exit 1
export PYTHONUNBUFFERED=1 BENCH_RESULTS="$out/results"
mkdir -p "$BENCH_RESULTS"
step() {  # step SECONDS LOG ARGS...: run.sh ARGS (python3 ARGS with the folder's packages)
    local limit=$1 log=$2
    shift 2
    echo "== $(date -u +%T) $*" | tee -a "$out/steps.log"
    timeout "$limit" bash /tmp/offline/run.sh "$@" > "$out/$log" 2>&1
    echo "== $(date -u +%T) exit $?" | tee -a "$out/steps.log"
}
{ nproc; ulimit -n; uname -r; python3 -V; } > "$out/machine.txt" 2>&1

part="${1:-all}"
# The wheels go in once, outside any step's time.
step 90 install.log -c "import tornado, redis, psycopg"
if [ "$part" = all ] || [ "$part" = threads ]; then
    # Sends from 1, 2, 4 and 8 threads alone, bare and through the server's Outbox (~10 s).
    step 30 send-threads.log -m bench.send_threads --threads 1,2,4,8 --repeat 2
    step 30 send-threads-outbox.log -m bench.send_threads --threads 1,2,4,8 --repeat 2 --outbox
    # One process beside the Go server, both on cores 0-3: one writer thread, then four.
    for threads in 1 4; do
        step 100 "pair-threads-$threads.log" bench/run.py --quick --phases fixed,ramp \
            --cores server=0-3,loadgen=4-15 "--server-arg=--send-threads=$threads"
    done
fi
if [ "$part" = all ] || [ "$part" = scaling ]; then
    # N nodes of one cluster, each on a core of its own (~4 min on the machine).
    step 270 scaling.log bench/run.py --nodes 1,2,4,8 --quick
fi
if [ "$part" = floors ]; then
    # Not in "all", which takes ~9.5 of the command's 10 minutes: the handshake and an idle
    # connection beside Tornado alone and asyncio alone (bench/floors.py; ~40 s).
    step 90 floors.log bench/run.py --quick --phases idle --servers go,ours,tornado,asyncio
fi
