# Helpers for the guest's test scripts (sourced by /init and by each /vfu/test.sh).
#
# Marker lines go to the second serial port (/dev/ttyS1) when there is one, so that kernel messages on the console
# cannot break them, and are echoed to the console for the human reader. Their form:
#   @@VFU-BEGIN <test name>
#   @@VFU-RESULT <key> <value>        (one line; the last one for a key wins)
#   @@VFU-LINE <key> <text>           (one line of a command's output captured by vfu_capture; in order)
#   @@VFU-END <exit code of the test script>

if [ -c /dev/ttyS1 ]; then VFU_MARKS=/dev/ttyS1; else VFU_MARKS=/dev/console; fi

vfu_mark() {
  echo "@@VFU-$*" >"$VFU_MARKS"
  [ "$VFU_MARKS" = /dev/console ] || echo "@@VFU-$*"
}

# vfu_result KEY VALUE...: reports one value (newlines become spaces).
vfu_result() {
  key="$1"; shift
  vfu_mark "RESULT $key $(echo "$*" | tr '\n' ' ' | sed 's/ *$//')"
}

# vfu_capture KEY COMMAND...: runs the command, reports each line of its output (stdout and stderr) as LINE KEY and
# its exit code as RESULT KEY.rc. Returns the command's exit code.
vfu_capture() {
  key="$1"; shift
  "$@" >/tmp/vfu-capture.out 2>&1
  crc=$?
  while IFS= read -r line || [ -n "$line" ]; do
    vfu_mark "LINE $key $line"
  done </tmp/vfu-capture.out
  vfu_result "$key.rc" "$crc"
  return $crc
}

# vfu_modprobe MODULE: loads a module packed by build-env.sh and its dependencies, in order. The list holds soft
# dependencies too, some of which cannot load on this machine (crc32c-intel wants SSE4.2, which QEMU's default CPU
# lacks): a dependency that fails is reported and skipped; if the module really needed it, its own insmod fails.
vfu_modprobe() {
  [ -f "/vfu/modules/$1.order" ] || { echo "vfu_modprobe: module $1 was not packed" >&2; return 1; }
  want="$(tail -n 1 "/vfu/modules/$1.order")"
  while read -r ko; do
    mod="$(basename "$ko" .ko | tr - _)"
    grep -q "^$mod " /proc/modules && continue
    if ! insmod "$ko"; then
      [ "$ko" = "$want" ] && { echo "vfu_modprobe: insmod $ko failed" >&2; return 1; }
      echo "vfu_modprobe: dependency $ko of $1 did not load; going on" >&2
    fi
  done <"/vfu/modules/$1.order"
}

# vfu_pci_dev VENDOR DEVICE: prints the sysfs directories of the PCI functions with these ids (hex, no 0x).
vfu_pci_dev() {
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = "0x$1" ] && [ "$(cat "$d/device")" = "0x$2" ] && echo "$d"
  done
}

# vfu_bar_start DEVDIR BAR: prints the physical start address of a BAR (0x...), from DEVDIR/resource.
vfu_bar_start() {
  sed -n "$(( $2 + 1 ))p" "$1/resource" | cut -d' ' -f1
}
