"""TCP helpers for net tests (standard library only).

  tcp_echo.py serve PORT
      accept forever; each connection first gets "from=<peer ip>\\n", then
      its bytes echoed; the server closes after the client's FIN
  tcp_echo.py serve6 PORT
      the same on IPv6 (::, IPv6 only)
  tcp_echo.py check IP PORT SRC_IP [BYTES] [IDLE]
      connect, verify the server saw SRC_IP (no NAT on the path), stay idle
      IDLE seconds (default 0), send BYTES random bytes (default 256 KiB),
      half-close, read the echo to EOF and verify it; exit 0 only if all
      holds
  tcp_echo.py expect-closed IP PORT
      connect, send nothing; exit 0 only if the other side closes the
      connection cleanly (FIN) within 10 s, not with a reset
  tcp_echo.py expect-fail IP PORT [SECONDS]
      exit 0 only if no TCP connection can be opened within SECONDS (2)
  tcp_echo.py reset-server PORT
      accept forever; read one chunk from each connection, then reset it
      (SO_LINGER 0)
  tcp_echo.py stall PORT
      accept forever and never read (the sender's buffers fill up)
  tcp_echo.py expect-reset IP PORT
      connect, send, exit 0 only if the connection is reset (not closed)
  tcp_echo.py many IP PORT COUNT
      COUNT sequential short connections (greeting, 1 byte echoed, close)
  tcp_echo.py spoof-syn SRC_IP DST_IP DST_PORT
      send one bare TCP SYN with a forged source address (raw socket)
  tcp_echo.py flood IP PORT COUNT HOLD
      open COUNT connections at once (non-blocking, nothing sent), print
      "opened N", hold them HOLD seconds, close them
  tcp_echo.py spoof-segment SRC_IP SRC_PORT DST_IP DST_PORT
      send one forged ACK|PSH segment with a payload (raw socket), as if
      from SRC_IP:SRC_PORT
  tcp_echo.py parallel IP PORT COUNT HOLD
      COUNT connections open at once (greeting and 1 KiB echo on each),
      held HOLD seconds, then closed
  tcp_echo.py expect-cut IP PORT SECONDS
      connect and send without pause; exit 0 if the connection is reset
      or closed by the other side within SECONDS (the test kills the app)
  tcp_echo.py sniff IFACE SECONDS MARKER
      count frames on IFACE (AF_PACKET; any: every interface) for SECONDS; print JSON with the
      frames seen, those to or from TCP port 15008 and those holding MARKER
  tcp_echo.py hold IP PORT SECONDS
      connect, print "open", then echo a byte every 20 ms; when the
      connection is reset or closed print "cut <unix time>" and exit 0;
      exit 1 if it is still open after SECONDS
With ZT_MARKER set, check sends that text repeated instead of random bytes.
"""
import json
import os
import socket
import struct
import sys
import threading
import time


def listen_on(port, family=socket.AF_INET):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    srv.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    srv.listen(128)
    return srv


def serve(port, family=socket.AF_INET):
    srv = listen_on(port, family)
    while True:
        conn, peer = srv.accept()
        threading.Thread(target=echo, args=(conn, peer), daemon=True).start()


def echo(conn, peer):
    with conn:
        conn.sendall(f"from={peer[0]}\n".encode())
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


def check(ip, port, src_ip, nbytes, idle=0.0):
    marker = os.environ.get("ZT_MARKER", "").encode()
    payload = (marker * (nbytes // len(marker) + 1))[:nbytes] if marker else os.urandom(nbytes)
    with socket.create_connection((ip, port), timeout=10) as s:
        hello = b""
        while not hello.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                raise SystemExit("no greeting from server")
            hello += c
        seen = hello.decode().strip().removeprefix("from=")
        if seen != src_ip:
            raise SystemExit(f"server saw source {seen}, expected {src_ip}")
        time.sleep(idle)

        def send_then_half_close():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_then_half_close)
        sender.start()
        got = bytearray()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        sender.join()
        if bytes(got) != payload:
            raise SystemExit(f"echo differs: got {len(got)} of {len(payload)} bytes")


def expect_closed(ip, port):
    with socket.create_connection((ip, port), timeout=10) as s:
        try:
            if s.recv(64):
                raise SystemExit("the connection carried data")
        except ConnectionResetError:
            raise SystemExit("the connection was reset, not closed")


def expect_fail(ip, port, seconds):
    try:
        with socket.create_connection((ip, port), timeout=seconds) as s:
            s.settimeout(seconds)
            if s.recv(64):
                raise SystemExit(f"connection to {ip}:{port} succeeded")
    except OSError:
        return


def reset_server(port):
    srv = listen_on(port)
    while True:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def stall(port):
    srv = listen_on(port)
    held = []
    while True:
        conn, _ = srv.accept()
        held.append(conn)


def expect_reset(ip, port):
    with socket.create_connection((ip, port), timeout=10) as s:
        s.sendall(b"hello")
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            return
    raise SystemExit("connection was closed, not reset")


def many(ip, port, count):
    for i in range(count):
        with socket.create_connection((ip, port), timeout=10) as s:
            f = s.makefile("rb")
            if not f.readline().startswith(b"from="):
                raise SystemExit(f"connection {i}: no greeting")
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise SystemExit(f"connection {i}: no echo")


def parallel(ip, port, count, hold):
    conns = []
    for i in range(count):
        s = socket.create_connection((ip, port), timeout=10)
        conns.append(s)
    for i, s in enumerate(conns):
        f = s.makefile("rb")
        if not f.readline().startswith(b"from="):
            raise SystemExit(f"connection {i}: no greeting")
        data = os.urandom(1024)
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(len(data) - len(got))
            if not chunk:
                raise SystemExit(f"connection {i}: closed early")
            got += chunk
        if got != data:
            raise SystemExit(f"connection {i}: echo differs")
    print(f"{count} connections open", flush=True)
    time.sleep(hold)
    for s in conns:
        s.close()


def expect_cut(ip, port, seconds):
    chunk = os.urandom(65536)
    with socket.create_connection((ip, port), timeout=seconds) as s:
        s.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                s.sendall(chunk)
                s.setblocking(False)
                try:
                    if s.recv(1 << 20) == b"":
                        print("closed")
                        return
                except BlockingIOError:
                    pass
                s.settimeout(seconds)
            except (ConnectionResetError, BrokenPipeError):
                print("reset")
                return
            except socket.timeout:
                break
    raise SystemExit(f"connection still open after {seconds}s")


def hold(ip, port, seconds):
    with socket.create_connection((ip, port), timeout=5) as s:
        f = s.makefile("rb")
        if not f.readline().startswith(b"from="):
            raise SystemExit("no greeting")
        print("open", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                s.sendall(b"x")
                if s.recv(1) != b"x":
                    break
            except OSError:
                break
            time.sleep(0.02)
        else:
            raise SystemExit(f"connection still open after {seconds}s")
    print(f"cut {time.time():.3f}", flush=True)


def sniff(iface, seconds, marker):
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    if iface != "any":
        raw.bind((iface, 0))
    raw.settimeout(0.2)
    frames = hbone = marked = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = raw.recv(65536)
        except socket.timeout:
            continue
        frames += 1
        if len(frame) >= 14 + 20 and frame[12:14] == b"\x08\x00" and frame[23] == socket.IPPROTO_TCP:
            ihl = (frame[14] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", frame[14 + ihl:14 + ihl + 4])
            hbone += 15008 in (sport, dport)
        marked += marker in frame
    print(json.dumps({"frames": frames, "hbone": hbone, "marker": marked}), flush=True)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def flood(ip, port, count, hold):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((ip, port))
        held.append(s)
    print(f"opened {len(held)}", flush=True)
    time.sleep(hold)
    for s in held:
        s.close()


def spoof(src, sport, dst, dport, flags, payload=b""):
    s_ip, d_ip = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 1 if flags & 0x10 else 0, 5 << 4, flags,
                      65535, 0, 0) + payload
    pseudo = s_ip + d_ip + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64,
                     socket.IPPROTO_TCP, 0, s_ip, d_ip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.sendto(ip + tcp, (dst, 0))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(int(args[0]))
    elif cmd == "serve6":
        serve(int(args[0]), socket.AF_INET6)
    elif cmd == "check":
        check(args[0], int(args[1]), args[2], int(args[3]) if len(args) > 3 else 256 * 1024,
              float(args[4]) if len(args) > 4 else 0.0)
    elif cmd == "expect-closed":
        expect_closed(args[0], int(args[1]))
    elif cmd == "expect-fail":
        expect_fail(args[0], int(args[1]), float(args[2]) if len(args) > 2 else 2.0)
    elif cmd == "reset-server":
        reset_server(int(args[0]))
    elif cmd == "stall":
        stall(int(args[0]))
    elif cmd == "expect-reset":
        expect_reset(args[0], int(args[1]))
    elif cmd == "many":
        many(args[0], int(args[1]), int(args[2]))
    elif cmd == "parallel":
        parallel(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "expect-cut":
        expect_cut(args[0], int(args[1]), float(args[2]))
    elif cmd == "hold":
        hold(args[0], int(args[1]), float(args[2]))
    elif cmd == "sniff":
        sniff(args[0], float(args[1]), args[2].encode())
    elif cmd == "spoof-syn":
        spoof(args[0], 40000, args[1], int(args[2]), 0x02)
    elif cmd == "flood":
        flood(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "spoof-segment":
        spoof(args[0], int(args[1]), args[2], int(args[3]), 0x18, b"injected")
    else:
        raise SystemExit(__doc__)
