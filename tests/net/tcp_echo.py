"""Minimal TCP echo pair for net tests (standard library only).

  tcp_echo.py serve PORT            accept forever; each connection first gets
                                    "from=<peer ip>\\n", then its bytes echoed
  tcp_echo.py check IP PORT SRC_IP  connect, verify the server saw SRC_IP
                                    (no NAT on the path), send random bytes and
                                    verify the echo; exit 0 only if all holds
"""
import os
import socket
import sys
import threading


def serve(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(128)
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


def recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SystemExit(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def check(ip, port, src_ip):
    payload = os.urandom(256 * 1024)
    with socket.create_connection((ip, port), timeout=5) as s:
        hello = b""
        while not hello.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                raise SystemExit("no greeting from server")
            hello += c
        seen = hello.decode().strip().removeprefix("from=")
        if seen != src_ip:
            raise SystemExit(f"server saw source {seen}, expected {src_ip}")
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        got = recv_exactly(s, len(payload))
        sender.join()
        if got != payload:
            raise SystemExit("echoed bytes differ")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "check":
        check(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(__doc__)
