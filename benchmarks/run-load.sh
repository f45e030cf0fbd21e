#!/usr/bin/env bash
# vfio-user load matrix (issue 3): our server (examples jar, null device) against the C echo yardstick, both
# driven by vfu-load (an independent C client that checks every reply), client and server pinned to one CPU.
# Optionally a second build of our server (BASELINE_JAR) runs beside the current one, in the same rounds.
#
#   benchmarks/run-load.sh            # full matrix, 5 runs each, then the Java LoadTool figures
#   BASELINE_JAR=/tmp/bench-before/vfio-user-examples.jar SKIP_JAVA_TOOL=1 \
#   ROWS="echo_d1 echo_d8 read4_d1 read4_d8 cfg4_d1 cfg4_d8" benchmarks/run-load.sh
#                                     # before/after: those rows, each of ours beside the baseline build's
#
# Environment:
#   RUNS=5        runs per measurement (medians are over these)
#   SECS=3        measured seconds per vfu-load run
#   CPU=1         the CPU every process is pinned to (taskset -c)
#   DEVICES=64    devices for the many-devices rows
#   JAVA=...      JDK 25 java (default: /usr/lib/jvm/temurin-25-jdk-amd64/bin/java)
#   JAVA_OPTS=    extra options for our server JVMs (e.g. -XX:StartFlightRecording=...)
#   SKIP_JAVA_TOOL=1  skip the LoadTool part (the jtool_* rows)
#   ROWS="a b"    run only these rows (default: all): echo_d1 chanecho_d1 read4_d1 cfg4_d1 echo_d8 chanecho_d8
#                 read4_d8 cfg4_d8 read1M_d1 write1M_d1 jtool_read4_d1 jtool_read4_d8 jtool_read1M_d1
#                 jtool_write1M_d1 echo_e_c64 chanecho_c64 read4_c64 (64 = DEVICES). A server that no chosen row
#                 needs is not started. An unknown name is an error.
#   BASELINE_JAR= an examples jar of another build (e.g. kept from before a change). Every chosen row whose server
#                 comes from our jars (all but echo_*) also runs as base_NAME against the same server started
#                 from that jar, in the same rounds, the two alternating which goes first; the table adds
#                 current/baseline. The clients stay the same for both (vfu-load, and LoadTool of this tree);
#                 ChannelEcho and ManyNullDevices of this tree are compiled against BASELINE_JAR for their base_
#                 rows, which are left out with a warning if they do not compile against it.
#   KEEP=1        keep the temp dir (raw RESULT lines in raw.txt, parsed rows in results.txt)
#   RESULTS_OUT=FILE, RAW_OUT=FILE  copy the parsed rows / raw RESULT lines there at the end
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
BASELINE_JAR=${BASELINE_JAR:-}
PIN="taskset -c $CPU"

# ----------------------------------------------------------------------------------------- row choice
JTOOL_ROWS=(jtool_read4_d1 jtool_read4_d8 jtool_read1M_d1 jtool_write1M_d1)
ALL_ROWS=(echo_d1 chanecho_d1 read4_d1 cfg4_d1 echo_d8 chanecho_d8 read4_d8 cfg4_d8 read1M_d1 write1M_d1
          "${JTOOL_ROWS[@]}" "echo_e_c$DEVICES" "chanecho_c$DEVICES" "read4_c$DEVICES")
declare -A WANT=()
for n in ${ROWS:-${ALL_ROWS[*]}}; do
    [[ " ${ALL_ROWS[*]} " == *" $n "* ]] || { echo "unknown row '$n' in ROWS; rows: ${ALL_ROWS[*]}" >&2; exit 2; }
    WANT[$n]=1
done
if [[ -n "${SKIP_JAVA_TOOL:-}" ]]; then
    for n in "${JTOOL_ROWS[@]}"; do unset "WANT[$n]"; done
fi
if [[ -n "$BASELINE_JAR" && ! -f "$BASELINE_JAR" ]]; then
    echo "BASELINE_JAR=$BASELINE_JAR: no such file" >&2
    exit 2
fi

# want ROW... : whether any of these rows was chosen
want() {
    local n
    for n; do
        if [[ -n "${WANT[$n]:-}" ]]; then return 0; fi
    done
    return 1
}

TMP=$(mktemp -d /tmp/vfu-load.XXXXXX)
PIDS=()
ECHO=

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -f "$TMP"/*.sock "$TMP"/*/*.sock
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

# One directory per build of our server: cur (this tree) and, with BASELINE_JAR, base. Each holds that build's
# examples jar (a private copy: other builds may rewrite target/ while we measure), its launcher classes, and its
# servers' sockets, pid lists and logs, so that a row's command differs between the builds only in the directory.
LAUNCHERS="$HERE/src/main/java/io/vfiouser/benchmarks/load"
BUILDS=(cur)
mkdir -p "$TMP/cur/classes"
cp "$REPO/examples/target/vfio-user-examples.jar" "$TMP/cur/examples.jar"
cp "$(ls "$REPO"/client/target/vfio-user-client-*.jar | grep -v -e sources -e tests | head -1)" "$TMP/client.jar"
"$JAVAC" -d "$TMP/cur/classes" -cp "$TMP/cur/examples.jar:$TMP/client.jar" $(find "$LAUNCHERS" -name '*.java')
# LoadTool is a client: the current one drives both builds' servers
CP="$TMP/cur/classes:$TMP/cur/examples.jar:$TMP/client.jar"
BASE_LAUNCHERS=
if [[ -n "$BASELINE_JAR" ]]; then
    BUILDS+=(base)
    mkdir -p "$TMP/base/classes"
    cp "$BASELINE_JAR" "$TMP/base/examples.jar"
    # only the server-side launchers; they need nothing beyond the (self-contained) examples jar
    if "$JAVAC" -d "$TMP/base/classes" -cp "$TMP/base/examples.jar" \
            "$LAUNCHERS/ChannelEcho.java" "$LAUNCHERS/ManyNullDevices.java" 2> "$TMP/base/javac.err"; then
        BASE_LAUNCHERS=1
    else
        log "WARNING: ChannelEcho/ManyNullDevices do not compile against $BASELINE_JAR (see below):" \
            "no base_chanecho_* and base_read4_c$DEVICES rows"
        cat "$TMP/base/javac.err" >&2
    fi
fi
JVM=($PIN "$JAVA" --enable-native-access=ALL-UNNAMED -Dio.netty.leakDetection.level=disabled $JAVA_OPTS)

# the classpath of BUILD's server-side launchers
launcher_cp() { # build
    if [[ $1 == cur ]]; then echo "$CP"; else echo "$TMP/base/classes:$TMP/base/examples.jar"; fi
}

# whether ROW has a base_ twin in this run
has_base() { # row
    [[ -n "$BASELINE_JAR" ]] || return 1
    case $1 in
        echo_*) return 1 ;;
        chanecho_*|read4_c*) [[ -n "$BASE_LAUNCHERS" ]] ;;
        *) return 0 ;;
    esac
}

# the builds that serve ROW, in the order of round R: the current build first in odd rounds, the baseline first
# in even ones, so that neither always runs right after a warm-up or right before the other
builds_for() { # row round
    if has_base "$1"; then
        if (( $2 % 2 )); then echo cur base; else echo base cur; fi
    else
        echo cur
    fi
}

row_name() { # build row
    if [[ $1 == cur ]]; then echo "$2"; else echo "base_$2"; fi
}

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

# run_jtool NAME RUN LoadTool-args... : the same with our Java LoadTool as the client (no server CPU figure)
run_jtool() {
    local name=$1 r=$2
    shift 2
    local line
    line=$("${JVM[@]}" -cp "$CP" io.vfiouser.benchmarks.load.LoadTool "$@" -L "$name" 2>>"$TMP/loadtool.err" \
           | grep '^RESULT') || { echo "LoadTool failed: $name (see $TMP/loadtool.err)" >&2; exit 1; }
    echo "$line" >> "$TMP/raw.txt"
    awk -v n="$name" -v r="$r" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s %s %s %s %s %s -\n", n, r, v["ops_per_s"], v["mb_per_s"], v["p50_us"], v["p99_us"]
    }' <<< "$line" >> "$RESULTS"
    log "$(tail -1 "$RESULTS")"
}

# measure RUNNER ROW RUN ARGS... : ROW, if chosen, with RUNNER (run or run_jtool) against every build that serves
# it (see builds_for); in ARGS, {B} stands for the build's directory
measure() {
    local runner=$1 row=$2 r=$3
    shift 3
    if ! want "$row"; then return 0; fi
    local b a args
    for b in $(builds_for "$row" "$r"); do
        args=()
        for a; do args+=("${a//"{B}"/$TMP/$b}"); done
        "$runner" "$(row_name "$b" "$row")" "$r" "${args[@]}"
    done
}

# start KEY CMD... : starts the server CMD in the background, output in $TMP/KEY.log, pid in SRV[KEY]
declare -A SRV=()
start() {
    local key=$1
    shift
    "$@" > "$TMP/$key.log" 2>&1 &
    SRV[$key]=$!
    PIDS+=($!)
}

# stops every server start() started (echo -e rounds excepted: they end by themselves)
stop_all() {
    local k
    for k in "${!SRV[@]}"; do kill "${SRV[$k]}" 2>/dev/null || true; done
    for k in "${!SRV[@]}"; do wait "${SRV[$k]}" 2>/dev/null || true; done
    SRV=()
}

# warm KEY vfu-load-args... : one unmeasured vfu-load run against server KEY of every build that runs one ({B} as
# in measure). The builds take each warm-up step in turn, so that both finish warming up together: a JVM measured
# right after its own warm-up while the other has had time to settle (JIT queue, GC) would lose to it.
warm() {
    local key=$1
    shift
    local b a args
    for b in "${BUILDS[@]}"; do
        if [[ -z "${SRV[$b/$key]:-}" ]]; then continue; fi
        args=()
        for a; do args+=("${a//"{B}"/$TMP/$b}"); done
        $VFU "${args[@]}" > /dev/null
    done
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------------------------------- servers, 1 device
NULL_ROWS=(read4_d1 cfg4_d1 read4_d8 cfg4_d8 read1M_d1 write1M_d1 "${JTOOL_ROWS[@]}")
if want echo_d1 echo_d8 chanecho_d1 chanecho_d8 "${NULL_ROWS[@]}"; then
    log "starting the servers for the 1-device rows, pinned to CPU $CPU"
    if want echo_d1 echo_d8; then
        $PIN "$TMP/bin/echo" -k "$TMP/echo.sock" & ECHO=$!
        PIDS+=($ECHO)
        wait_sock "$TMP/echo.sock" $ECHO
    fi
    for b in "${BUILDS[@]}"; do
        if want "${NULL_ROWS[@]}"; then
            start "$b/null" "${JVM[@]}" -jar "$TMP/$b/examples.jar" null --socket-path="$TMP/$b/null.sock"
            wait_sock "$TMP/$b/null.sock" "${SRV[$b/null]}"
        fi
        if want chanecho_d1 chanecho_d8 && { [[ $b == cur ]] || has_base chanecho_d1; }; then
            start "$b/chan" "${JVM[@]}" -cp "$(launcher_cp "$b")" io.vfiouser.benchmarks.load.ChannelEcho \
                "$TMP/$b/chan.sock"
            wait_sock "$TMP/$b/chan.sock" "${SRV[$b/chan]}"
        fi
    done

    log "warming up the JVMs (unmeasured)"
    warm null -i -o read -r 0 -l 4 -t 4 "{B}/null.sock"
    warm null -i -o read -r 0 -l 4 -d 8 -t 3 "{B}/null.sock"
    warm null -i -o read -r 7 -l 4 -t 2 "{B}/null.sock"
    warm null -i -o read -r 7 -l 4 -d 8 -t 2 "{B}/null.sock"
    warm null -i -o read -r 2 -l 1M -t 2 "{B}/null.sock"
    warm null -i -o write -r 2 -l 1M -t 2 "{B}/null.sock"
    warm chan -o echo -t 3 "{B}/chan.sock"
    warm chan -o echo -d 8 -t 2 "{B}/chan.sock"
    for b in "${BUILDS[@]}"; do
        if [[ -n "${SRV[$b/null]:-}" ]]; then tids_file "${SRV[$b/null]}" "$TMP/$b/null.pids"; fi
        if [[ -n "${SRV[$b/chan]:-}" ]]; then tids_file "${SRV[$b/chan]}" "$TMP/$b/chan.pids"; fi
    done

    if want echo_d1 echo_d8 chanecho_d1 chanecho_d8 read4_d1 cfg4_d1 read4_d8 cfg4_d8 read1M_d1 write1M_d1; then
        for r in $(seq 1 "$RUNS"); do
            log "run $r/$RUNS (1 device)"
            measure run echo_d1 "$r" -o echo -t "$SECS" -p "$ECHO" "$TMP/echo.sock"
            measure run chanecho_d1 "$r" -o echo -t "$SECS" -p "@{B}/chan.pids" "{B}/chan.sock"
            measure run read4_d1 "$r" -i -o read -r 0 -l 4 -t "$SECS" -p "@{B}/null.pids" "{B}/null.sock"
            measure run cfg4_d1 "$r" -i -o read -r 7 -O 0 -l 4 -t "$SECS" -p "@{B}/null.pids" "{B}/null.sock"
            measure run echo_d8 "$r" -o echo -d 8 -t "$SECS" -p "$ECHO" "$TMP/echo.sock"
            measure run chanecho_d8 "$r" -o echo -d 8 -t "$SECS" -p "@{B}/chan.pids" "{B}/chan.sock"
            measure run read4_d8 "$r" -i -o read -r 0 -l 4 -d 8 -t "$SECS" -p "@{B}/null.pids" "{B}/null.sock"
            measure run cfg4_d8 "$r" -i -o read -r 7 -O 0 -l 4 -d 8 -t "$SECS" -p "@{B}/null.pids" \
                "{B}/null.sock"
            measure run read1M_d1 "$r" -i -o read -r 2 -l 1M -t "$SECS" -p "@{B}/null.pids" "{B}/null.sock"
            measure run write1M_d1 "$r" -i -o write -r 2 -l 1M -t "$SECS" -p "@{B}/null.pids" "{B}/null.sock"
        done
    fi

    # ------------------------------------------------------------------------------------ Java LoadTool
    if want "${JTOOL_ROWS[@]}"; then
        for r in $(seq 1 "$RUNS"); do
            log "run $r/$RUNS (Java LoadTool)"
            measure run_jtool jtool_read4_d1 "$r" -d 1 -o read -r 0 -l 4 -w 1 -t "$SECS" "{B}/null.sock"
            measure run_jtool jtool_read4_d8 "$r" -d 8 -o read -r 0 -l 4 -w 1 -t "$SECS" "{B}/null.sock"
            measure run_jtool jtool_read1M_d1 "$r" -d 1 -o read -r 2 -l 1M -w 1 -t "$SECS" "{B}/null.sock"
            measure run_jtool jtool_write1M_d1 "$r" -d 1 -o write -r 2 -l 1M -w 1 -t "$SECS" "{B}/null.sock"
        done
    fi

    if [[ -n "$ECHO" ]]; then
        kill $ECHO 2>/dev/null || true
        wait $ECHO 2>/dev/null || true
    fi
    stop_all
fi

# --------------------------------------------------------------------------------------- N devices
if want "echo_e_c$DEVICES" "chanecho_c$DEVICES" "read4_c$DEVICES"; then
    for b in "${BUILDS[@]}"; do
        if want "read4_c$DEVICES" && { [[ $b == cur ]] || has_base "read4_c$DEVICES"; }; then
            log "starting $DEVICES null devices in one JVM (ManyNullDevices, $b)"
            start "$b/many" "${JVM[@]}" -cp "$(launcher_cp "$b")" io.vfiouser.benchmarks.load.ManyNullDevices \
                "$DEVICES" "$TMP/$b/dev%d.sock"
            for i in $(seq 0 $((DEVICES - 1))); do wait_sock "$TMP/$b/dev$i.sock" "${SRV[$b/many]}"; done
        fi
        if want "chanecho_c$DEVICES" && { [[ $b == cur ]] || has_base "chanecho_c$DEVICES"; }; then
            CSOCKS=()
            for i in $(seq 0 $((DEVICES - 1))); do CSOCKS+=("$TMP/$b/c$i.sock"); done
            start "$b/chanmany" "${JVM[@]}" -cp "$(launcher_cp "$b")" io.vfiouser.benchmarks.load.ChannelEcho \
                "${CSOCKS[@]}"
            for i in $(seq 0 $((DEVICES - 1))); do wait_sock "$TMP/$b/c$i.sock" "${SRV[$b/chanmany]}"; done
        fi
    done
    log "warming up (unmeasured)"
    warm many -c "$DEVICES" -i -o read -r 0 -l 4 -t 4 "{B}/dev%d.sock"
    warm chanmany -c "$DEVICES" -o echo -t 4 "{B}/c%d.sock"
    for b in "${BUILDS[@]}"; do
        if [[ -n "${SRV[$b/many]:-}" ]]; then tids_file "${SRV[$b/many]}" "$TMP/$b/many.pids"; fi
        if [[ -n "${SRV[$b/chanmany]:-}" ]]; then tids_file "${SRV[$b/chanmany]}" "$TMP/$b/chanmany.pids"; fi
    done
    ESOCKS=()
    for i in $(seq 0 $((DEVICES - 1))); do ESOCKS+=("$TMP/e$i.sock"); done

    for r in $(seq 1 "$RUNS"); do
        log "run $r/$RUNS ($DEVICES devices)"
        if want "echo_e_c$DEVICES"; then
            rm -f "$TMP"/e*.sock
            $PIN "$TMP/bin/echo" -e "${ESOCKS[@]}" & EE=$!
            PIDS+=($EE)
            wait_sock "$TMP/e$((DEVICES - 1)).sock" $EE
            run "echo_e_c$DEVICES" "$r" -c "$DEVICES" -o echo -t "$SECS" -p $EE "$TMP/e%d.sock"
            wait $EE 2>/dev/null || true   # echo -e exits when its clients have gone
        fi
        measure run "chanecho_c$DEVICES" "$r" -c "$DEVICES" -o echo -t "$SECS" -p "@{B}/chanmany.pids" \
            "{B}/c%d.sock"
        measure run "read4_c$DEVICES" "$r" -c "$DEVICES" -i -o read -r 0 -l 4 -t "$SECS" -p "@{B}/many.pids" \
            "{B}/dev%d.sock"
    done
    stop_all
fi

# ------------------------------------------------------------------------------------------- table
echo
echo "## vfio-user load: medians of $RUNS runs, ${SECS}s each, client and server on CPU $CPU"
echo
if [[ -n "$BASELINE_JAR" ]]; then
    echo "Current = this tree's build; base_* = the same rows on BASELINE_JAR=$BASELINE_JAR."
fi
echo "Load average (1/5/15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
awk -v D="$DEVICES" -v B="${BASELINE_JAR:+1}" '
function isort(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
}
function median(name, col,   n, i, a) {
    n = 0
    for (i = 1; i <= cnt[name]; i++) a[++n] = val[name, i, col]
    if (n == 0 || a[1] == "-") return "-"
    isort(a, n)
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# median over the rounds both rows ran of name/ref in column col ("" when there is none)
function runratio(name, ref, col,   n, i, a) {
    n = 0
    for (i = 1; i <= cnt[name]; i++)
        if ((ref, i, col) in val && val[ref, i, col] != "-" && val[name, i, col] != "-" && val[ref, i, col] + 0 > 0)
            a[++n] = val[name, i, col] / val[ref, i, col]
    if (n == 0) return ""
    isort(a, n)
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# "ratio of the medians / median of the per-round ratios" of name to ref in column col, or "-"
function ratios(name, ref, col,   x, y, m) {
    if (!(ref in cnt)) return "-"
    x = median(name, col); y = median(ref, col); m = runratio(name, ref, col)
    if (x == "-" || y == "-" || y + 0 == 0 || m == "") return "-"
    return sprintf("**%.2f** / %.2f", x / y, m)
}
{ cnt[$1]++; for (c = 1; c <= 5; c++) val[$1, cnt[$1], c] = $(c + 2); if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
END {
    ref["read4_d1"] = "echo_d1"; tgt["read4_d1"] = 0.84
    ref["read4_d8"] = "echo_d8"; tgt["read4_d8"] = 0.55
    ref["read4_c" D] = "echo_e_c" D; tgt["read4_c" D] = 0.97
    ref["cfg4_d1"] = "echo_d1"; ref["cfg4_d8"] = "echo_d8"
    ref["chanecho_d1"] = "echo_d1"; ref["chanecho_d8"] = "echo_d8"; ref["chanecho_c" D] = "echo_e_c" D
    for (n in ref) { ref["base_" n] = ref[n]; if (n in tgt) tgt["base_" n] = tgt[n] }
    printf "| measurement | ops/s | MB/s | p50 us | p99 us | server CPU us/op | vs echo (ratio of medians / median of per-run ratios) | target |"
    if (B) printf " current/baseline ops/s (same) | current/baseline server CPU us/op (same) |"
    printf "\n|---|---|---|---|---|---|---|---|%s\n", B ? "---|---|" : ""
    for (i = 1; i <= k; i++) {
        n = order[i]
        r = "-"; t = "-"
        if (n in ref) {
            r = ratios(n, ref[n], 1)
            t = (n in tgt) ? sprintf(">= %.2f", tgt[n]) : (n ~ /chanecho/ ? "(floor)" : "-")
        }
        printf "| %s | %.0f | %.2f | %.2f | %.2f | %s | %s | %s |", n, median(n, 1), median(n, 2), median(n, 3),
               median(n, 4), median(n, 5), r, t
        if (B) printf " %s | %s |", ratios(n, "base_" n, 1), ratios(n, "base_" n, 5)
        printf "\n"
    }
}' "$RESULTS"
echo
echo "(1 MiB rows: MB/s = 10^6 payload bytes/s; jtool_* rows: Java LoadTool, not the yardstick;"
echo " chanecho_*: ChannelEcho, our channel + frame decoder echoing like echo.c = the floor under the vfio-user layers;"
echo " cfg4_*: 4-byte reads of the configuration space (region 7), which always take the general path)"
cp "$RESULTS" "${RESULTS_OUT:-/dev/null}" 2>/dev/null || true
cp "$TMP/raw.txt" "${RAW_OUT:-/dev/null}" 2>/dev/null || true
