#!/usr/bin/env bash
# vfio-user load matrix (issue 3): our server (examples jar, null device) against the C echo yardstick, both
# driven by vfu-load (an independent C client that checks every reply), client and server pinned to one CPU.
#
#   benchmarks/run-load.sh            # full matrix, 5 runs each, then the Java LoadTool figures
#
# Environment:
#   RUNS=5        runs per measurement (medians are over these)
#   SECS=3        measured seconds per vfu-load run
#   CPU=1         the CPU every process is pinned to (taskset -c)
#   DEVICES=64    devices for the many-devices row
#   JAVA=...      JDK 25 java (default: /usr/lib/jvm/temurin-25-jdk-amd64/bin/java)
#   JAVA_OPTS=    extra options for our server JVMs (e.g. -XX:StartFlightRecording=...)
#   SKIP_JAVA_TOOL=1  skip the LoadTool part
#   KEEP=1        keep the temp dir (raw RESULT lines in results.txt)
#
# Needs: the repo built (mvn -B -q -o package -DskipTests: examples/target/vfio-user-examples.jar and
# client/target/vfio-user-client-*.jar), gcc, and ../shared/bench beside the repo. vfu-load and echo are built
# from there into a temp dir; the Java launchers (ManyNullDevices, LoadTool, ChannelEcho) in benchmarks/src/main/java/io/vfiouser/benchmarks/load are compiled with javac into it (the
# benchmarks module does not depend on server/examples/client yet).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=$(cd "$REPO/../shared/bench" && pwd)
RUNS=${RUNS:-5}
SECS=${SECS:-3}
CPU=${CPU:-1}
DEVICES=${DEVICES:-64}
JAVA=${JAVA:-/usr/lib/jvm/temurin-25-jdk-amd64/bin/java}
JAVAC=${JAVAC:-$(dirname "$JAVA")/javac}
JAVA_OPTS=${JAVA_OPTS:-}
PIN="taskset -c $CPU"

TMP=$(mktemp -d /tmp/vfu-load.XXXXXX)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -f "$TMP"/*.sock
    if [[ -n "${KEEP:-}" ]]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%T)] $*" >&2; }

wait_sock() { # path pid
    local i
    for i in $(seq 1 200); do
        [[ -S "$1" ]] && return 0
        kill -0 "$2" 2>/dev/null || { echo "server $2 died before $1 appeared" >&2; return 1; }
        sleep 0.05
    done
    echo "timeout waiting for $1" >&2
    return 1
}

# all thread ids of a process, for vfu-load -p @file (/proc/PID/schedstat alone is the JVM's main thread)
tids_file() { # pid file
    ls "/proc/$1/task" | paste -sd, > "$2"
}

# ---------------------------------------------------------------------------------------------- build
log "building vfu-load and echo into $TMP/bin"
make -s -C "$SHARED" OUT="$TMP/bin" >&2
VFU="$PIN $TMP/bin/vfu-load"

# private copies: other builds may rewrite target/ while we measure
cp "$REPO/examples/target/vfio-user-examples.jar" "$TMP/examples.jar"
cp "$(ls "$REPO"/client/target/vfio-user-client-*.jar | grep -v -e sources -e tests | head -1)" "$TMP/client.jar"
CP="$TMP/examples.jar:$TMP/client.jar"
mkdir -p "$TMP/classes"
"$JAVAC" -d "$TMP/classes" -cp "$CP" $(find "$HERE/src/main/java/io/vfiouser/benchmarks/load" -name '*.java')
CP="$TMP/classes:$CP"
JVM=($PIN "$JAVA" --enable-native-access=ALL-UNNAMED -Dio.netty.leakDetection.level=disabled $JAVA_OPTS)

RESULTS="$TMP/results.txt"
: > "$RESULTS"

# run NAME RUN vfu-load-args... : appends "NAME RUN ops mbps p50 p99 srv_cpu_us" to $RESULTS
run() {
    local name=$1 r=$2
    shift 2
    local line
    line=$($VFU -L "$name" "$@" | grep '^RESULT') || { echo "vfu-load failed: $name $*" >&2; exit 1; }
    echo "$line" >> "$TMP/raw.txt"
    awk -v n="$name" -v r="$r" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s %s %s %s %s %s %s\n", n, r, v["ops_per_s"], v["mb_per_s"], v["p50_us"], v["p99_us"],
               (v["server_cpu_us_per_op"] == "" ? "-" : v["server_cpu_us_per_op"])
    }' <<< "$line" >> "$RESULTS"
    log "$(tail -1 "$RESULTS")"
}

# ----------------------------------------------------------------------------------- servers, 1 device
log "starting echo -k and the null device (java), pinned to CPU $CPU"
$PIN "$TMP/bin/echo" -k "$TMP/echo.sock" & ECHO=$!
PIDS+=($ECHO)
"${JVM[@]}" -jar "$TMP/examples.jar" null --socket-path="$TMP/null.sock" > "$TMP/null.log" 2>&1 & NULLPID=$!
PIDS+=($NULLPID)
"${JVM[@]}" -cp "$CP" io.vfiouser.benchmarks.load.ChannelEcho "$TMP/chan.sock" > "$TMP/chan.log" 2>&1 & CHAN=$!
PIDS+=($CHAN)
wait_sock "$TMP/echo.sock" $ECHO
wait_sock "$TMP/null.sock" $NULLPID
wait_sock "$TMP/chan.sock" $CHAN

log "warming up the JVM (unmeasured)"
$VFU -i -o read -r 0 -l 4 -t 4 "$TMP/null.sock" > /dev/null
$VFU -i -o read -r 0 -l 4 -d 8 -t 3 "$TMP/null.sock" > /dev/null
$VFU -i -o read -r 2 -l 1M -t 2 "$TMP/null.sock" > /dev/null
$VFU -i -o write -r 2 -l 1M -t 2 "$TMP/null.sock" > /dev/null
$VFU -o echo -t 3 "$TMP/chan.sock" > /dev/null
$VFU -o echo -d 8 -t 2 "$TMP/chan.sock" > /dev/null
tids_file $NULLPID "$TMP/null.pids"
tids_file $CHAN "$TMP/chan.pids"

for r in $(seq 1 "$RUNS"); do
    log "run $r/$RUNS (1 device)"
    run echo_d1 "$r" -o echo -t "$SECS" -p $ECHO "$TMP/echo.sock"
    run chanecho_d1 "$r" -o echo -t "$SECS" -p "@$TMP/chan.pids" "$TMP/chan.sock"
    run read4_d1 "$r" -i -o read -r 0 -l 4 -t "$SECS" -p "@$TMP/null.pids" "$TMP/null.sock"
    run echo_d8 "$r" -o echo -d 8 -t "$SECS" -p $ECHO "$TMP/echo.sock"
    run chanecho_d8 "$r" -o echo -d 8 -t "$SECS" -p "@$TMP/chan.pids" "$TMP/chan.sock"
    run read4_d8 "$r" -i -o read -r 0 -l 4 -d 8 -t "$SECS" -p "@$TMP/null.pids" "$TMP/null.sock"
    run read1M_d1 "$r" -i -o read -r 2 -l 1M -t "$SECS" -p "@$TMP/null.pids" "$TMP/null.sock"
    run write1M_d1 "$r" -i -o write -r 2 -l 1M -t "$SECS" -p "@$TMP/null.pids" "$TMP/null.sock"
done

# ------------------------------------------------------------------------------------ Java LoadTool
if [[ -z "${SKIP_JAVA_TOOL:-}" ]]; then
    for r in $(seq 1 "$RUNS"); do
        log "run $r/$RUNS (Java LoadTool)"
        for spec in "jtool_read4_d1:-d 1 -o read -r 0 -l 4" "jtool_read4_d8:-d 8 -o read -r 0 -l 4" \
                    "jtool_read1M_d1:-d 1 -o read -r 2 -l 1M" "jtool_write1M_d1:-d 1 -o write -r 2 -l 1M"; do
            name=${spec%%:*}
            line=$("${JVM[@]}" -cp "$CP" io.vfiouser.benchmarks.load.LoadTool ${spec#*:} -w 1 -t "$SECS" \
                   -L "$name" "$TMP/null.sock" 2>>"$TMP/loadtool.err" | grep '^RESULT') \
                || { echo "LoadTool failed: $name (see $TMP/loadtool.err)" >&2; exit 1; }
            echo "$line" >> "$TMP/raw.txt"
            awk -v n="$name" -v r="$r" '{
                for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                printf "%s %s %s %s %s %s -\n", n, r, v["ops_per_s"], v["mb_per_s"], v["p50_us"], v["p99_us"]
            }' <<< "$line" >> "$RESULTS"
            log "$(tail -1 "$RESULTS")"
        done
    done
fi

kill $NULLPID $ECHO $CHAN 2>/dev/null || true
wait $NULLPID $ECHO $CHAN 2>/dev/null || true

# --------------------------------------------------------------------------------------- N devices
log "starting $DEVICES null devices in one JVM (ManyNullDevices)"
"${JVM[@]}" -cp "$CP" io.vfiouser.benchmarks.load.ManyNullDevices "$DEVICES" "$TMP/dev%d.sock" \
    > "$TMP/many.log" 2>&1 & MANY=$!
PIDS+=($MANY)
for i in $(seq 0 $((DEVICES - 1))); do wait_sock "$TMP/dev$i.sock" $MANY; done
CSOCKS=()
for i in $(seq 0 $((DEVICES - 1))); do CSOCKS+=("$TMP/c$i.sock"); done
"${JVM[@]}" -cp "$CP" io.vfiouser.benchmarks.load.ChannelEcho "${CSOCKS[@]}" > "$TMP/chanmany.log" 2>&1 & CHANMANY=$!
PIDS+=($CHANMANY)
for i in $(seq 0 $((DEVICES - 1))); do wait_sock "$TMP/c$i.sock" $CHANMANY; done
log "warming up (unmeasured)"
$VFU -c "$DEVICES" -i -o read -r 0 -l 4 -t 4 "$TMP/dev%d.sock" > /dev/null
$VFU -c "$DEVICES" -o echo -t 4 "$TMP/c%d.sock" > /dev/null
tids_file $MANY "$TMP/many.pids"
tids_file $CHANMANY "$TMP/chanmany.pids"
ESOCKS=()
for i in $(seq 0 $((DEVICES - 1))); do ESOCKS+=("$TMP/e$i.sock"); done

for r in $(seq 1 "$RUNS"); do
    log "run $r/$RUNS ($DEVICES devices)"
    rm -f "$TMP"/e*.sock
    $PIN "$TMP/bin/echo" -e "${ESOCKS[@]}" & EE=$!
    PIDS+=($EE)
    wait_sock "$TMP/e$((DEVICES - 1)).sock" $EE
    run echo_e_c$DEVICES "$r" -c "$DEVICES" -o echo -t "$SECS" -p $EE "$TMP/e%d.sock"
    wait $EE 2>/dev/null || true   # echo -e exits when its clients have gone
    run chanecho_c$DEVICES "$r" -c "$DEVICES" -o echo -t "$SECS" -p "@$TMP/chanmany.pids" "$TMP/c%d.sock"
    run read4_c$DEVICES "$r" -c "$DEVICES" -i -o read -r 0 -l 4 -t "$SECS" -p "@$TMP/many.pids" "$TMP/dev%d.sock"
done

# ------------------------------------------------------------------------------------------- table
echo
echo "## vfio-user load: medians of $RUNS runs, ${SECS}s each, client and server on CPU $CPU"
echo
awk -v D="$DEVICES" '
function median(name, col,   n, i, j, t, a) {
    n = 0
    for (i = 1; i <= cnt[name]; i++) a[++n] = val[name, i, col]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    if (n == 0) return "-"
    if (a[1] == "-") return "-"
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# median over runs of ours/ref measured in the same run
function runratio(name, ref,   n, i, j, t, a) {
    n = 0
    for (i = 1; i <= cnt[name]; i++) if ((ref, i, 1) in val) a[++n] = val[name, i, 1] / val[ref, i, 1]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ cnt[$1]++; for (c = 1; c <= 5; c++) val[$1, cnt[$1], c] = $(c + 2); if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
END {
    ref["read4_d1"] = "echo_d1"; tgt["read4_d1"] = 0.84
    ref["read4_d8"] = "echo_d8"; tgt["read4_d8"] = 0.55
    ref["read4_c" D] = "echo_e_c" D; tgt["read4_c" D] = 0.97
    ref["chanecho_d1"] = "echo_d1"; ref["chanecho_d8"] = "echo_d8"; ref["chanecho_c" D] = "echo_e_c" D
    printf "| measurement | ops/s | MB/s | p50 us | p99 us | server CPU us/op | vs echo (ratio of medians / median of per-run ratios) | target |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= k; i++) {
        n = order[i]
        r = "-"; t = "-"
        if (n in ref) {
            r = sprintf("**%.2f** / %.2f", median(n, 1) / median(ref[n], 1), runratio(n, ref[n]))
            t = (n in tgt) ? sprintf(">= %.2f", tgt[n]) : "(floor)"
        }
        printf "| %s | %.0f | %.2f | %.2f | %.2f | %s | %s | %s |\n", n, median(n, 1), median(n, 2), median(n, 3),
               median(n, 4), median(n, 5), r, t
    }
}' "$RESULTS"
echo
echo "(1 MiB rows: MB/s = 10^6 payload bytes/s; jtool_* rows: Java LoadTool, not the yardstick;"
echo " chanecho_*: ChannelEcho, our channel + frame decoder echoing like echo.c = the floor under the vfio-user layers)"
cp "$RESULTS" "${RESULTS_OUT:-/dev/null}" 2>/dev/null || true
cp "$TMP/raw.txt" "${RAW_OUT:-/dev/null}" 2>/dev/null || true
