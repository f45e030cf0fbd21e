#!/usr/bin/env python3
# Cold start (issue 15): starts the examples jar's null device, waits for its socket, and times the first VERSION
# round trip of a fresh server (QEMU's VERSION request), then one DEVICE_GET_INFO.
#   python3 benchmarks/cold-start.py examples/target/vfio-user-examples.jar
import socket, struct, time, subprocess, os, sys, json
sock_path = "/tmp/vfu-cold-start-%d.sock" % os.getpid()
if os.path.exists(sock_path): os.unlink(sock_path)
jar = sys.argv[1]
p = subprocess.Popen([os.environ.get("JAVA", "/usr/lib/jvm/temurin-25-jdk-amd64/bin/java"), "--enable-native-access=ALL-UNNAMED", "-jar", jar, "null", "--socket-path=" + sock_path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t0 = time.perf_counter()
while not os.path.exists(sock_path):
    time.sleep(0.001)
t_sock = time.perf_counter() - t0
js = json.dumps({"capabilities": {"max_msg_fds": 16, "max_data_xfer_size": 1048576, "pgsizes": 4096, "max_dma_maps": 65535, "migration": {"pgsize": 4096, "max_bitmap_size": 268435456}, "write_multiple": True}}).encode() + b"\0"
payload = struct.pack("<HH", 0, 2) + js
msg = struct.pack("<HHIII", 0, 1, 16 + len(payload), 0, 0) + payload
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
t1 = time.perf_counter()
s.sendall(msg)
hdr = s.recv(16)
t2 = time.perf_counter()
size = struct.unpack("<I", hdr[4:8])[0]
rest = b""
while len(rest) < size - 16: rest += s.recv(size - 16 - len(rest))
# second VERSION-less command: DEVICE_GET_INFO
m2 = struct.pack("<HHIII", 1, 4, 16 + 16, 0, 0) + struct.pack("<IIII", 16, 0, 0, 0)
t3 = time.perf_counter(); s.sendall(m2); r2 = s.recv(64); t4 = time.perf_counter()
print("socket after %.0f ms; first VERSION reply %.1f ms; then GET_INFO %.2f ms" % (t_sock*1000, (t2-t1)*1000, (t4-t3)*1000))
s.close(); p.terminate(); p.wait()
