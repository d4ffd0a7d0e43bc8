"""Independent HBONE peer: Python's ssl (OpenSSL) and the h2 package.

  h2_peer.py server CERT_DIR ROOT_PEM                (prints "port N")
      accept one connection, mutual TLS 1.3 + ALPN h2, answer every CONNECT
      with 200 and echo each stream, half-closing after the client does
  h2_peer.py client PORT CERT_DIR ROOT_PEM EXPECTED_ID STREAMS BYTES
      mutual TLS to 127.0.0.1:PORT, check the server's SPIFFE SAN, open
      STREAMS CONNECT streams, send BYTES each, half-close, verify the echo
  h2_peer.py connect HOST PORT CERT_DIR ROOT_PEM AUTHORITY [then-garbage|then-bad-frame]
      one CONNECT to AUTHORITY (a live agent's 15008); print "status N", the
      response's "baggage V" if any and, on 200, the first line the target
      sent; exit 3 if TLS fails. With the stream relaying, then-garbage
      writes a forged TLS record under the session (the agent's TLS fails),
      then-bad-frame a DATA frame on stream 0 inside it (an HTTP/2
      connection error: "goaway CODE" if the agent answers GOAWAY); both
      print "closed after S" once the agent ends the connection
  h2_peer.py rapid-reset HOST PORT CERT_DIR ROOT_PEM AUTHORITY COUNT
      CVE-2023-44487: COUNT times CONNECT to AUTHORITY and RST_STREAM it at
      once, in batches; print "goaway CODE" if the server sends GOAWAY and
      "sent N" (how many went out before the connection ended)
  h2_peer.py stream-burst HOST PORT CERT_DIR ROOT_PEM AUTHORITY COUNT [PAUSE]
      COUNT CONNECT streams to AUTHORITY on one connection, each half-closed
      at once, 100 in flight at a time, PAUSE seconds between batches (0);
      print "status S N" per status and "seconds T" it took
"""
import os
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography import x509


def h2_config(client_side):
    # h2 4.1 insists on :path/:scheme in every request, which RFC 9113 8.5
    # forbids for CONNECT: header validation off, framing still checked.
    return h2.config.H2Configuration(client_side=client_side, validate_inbound_headers=False,
                                     validate_outbound_headers=False)


def tls_context(server, cert_dir, root):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(f"{cert_dir}/cert-chain.pem", f"{cert_dir}/key.pem")
    ctx.load_verify_locations(root)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    return ctx


def peer_spiffe(sock):
    cert = x509.load_der_x509_certificate(sock.getpeercert(binary_form=True))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


class Pending:
    """Per-stream outgoing bytes, sent as flow control allows."""

    def __init__(self, conn):
        self.conn, self.buf, self.ending = conn, {}, set()

    def add(self, stream, data, end=False):
        queue = self.buf.setdefault(stream, [])
        if data:
            queue.append(memoryview(data))
        if end:
            self.ending.add(stream)
        self.flush()

    def flush(self):
        for stream in list(self.buf):
            queue = self.buf[stream]
            while queue:
                window = min(self.conn.local_flow_control_window(stream),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = queue[0][:window]
                self.conn.send_data(stream, chunk.tobytes())
                queue[0] = queue[0][len(chunk):]
                if not len(queue[0]):
                    queue.pop(0)
            if not queue and stream in self.ending:
                self.conn.end_stream(stream)
                self.ending.discard(stream)
                del self.buf[stream]


def serve(cert_dir, root):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    print(f"port {lsock.getsockname()[1]}", flush=True)
    raw, _ = lsock.accept()
    sock = tls_context(True, cert_dir, root).wrap_socket(raw, server_side=True)
    assert sock.selected_alpn_protocol() == "h2"
    print(f"client identity {peer_spiffe(sock)}", file=sys.stderr)
    conn = h2.connection.H2Connection(h2_config(False))
    conn.initiate_connection()
    out = Pending(conn)
    sock.sendall(conn.data_to_send())
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                headers = dict(ev.headers)
                status = b"200" if headers.get(b":method") == b"CONNECT" else b"400"
                conn.send_headers(ev.stream_id, [(":status", status.decode())],
                                  end_stream=status != b"200")
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                out.add(ev.stream_id, ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                out.add(ev.stream_id, b"", end=True)
            elif isinstance(ev, h2.events.WindowUpdated):
                out.flush()
        sock.sendall(conn.data_to_send())


def client(port, cert_dir, root, expected, n, nbytes):
    raw = socket.create_connection(("127.0.0.1", port))
    sock = tls_context(False, cert_dir, root).wrap_socket(raw)
    assert sock.selected_alpn_protocol() == "h2", "ALPN h2 not negotiated"
    assert sock.version() == "TLSv1.3"
    sans = peer_spiffe(sock)
    if expected not in sans:
        raise SystemExit(f"peer did not present the expected SAN ({expected}), got {sans}")
    conn = h2.connection.H2Connection(h2_config(True))
    conn.initiate_connection()
    out = Pending(conn)
    streams = {}
    for i in range(n):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", f"10.244.1.{i % 250 + 1}:7000")])
        streams[sid] = {"status": None, "got": bytearray(), "ended": False}
    sock.sendall(conn.data_to_send())
    payload = {sid: bytes((k * 13 + sid) & 0xFF for k in range(min(nbytes, 4096))) for sid in streams}
    while not all(s["ended"] for s in streams.values()):
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("server closed the connection")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers)[b":status"]
                streams[ev.stream_id]["status"] = status
                if status != b"200":
                    raise SystemExit(f"status {status}")
                body = (payload[ev.stream_id] * (nbytes // len(payload[ev.stream_id]) + 1))[:nbytes]
                out.add(ev.stream_id, body, end=True)
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                streams[ev.stream_id]["got"] += ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                streams[ev.stream_id]["ended"] = True
            elif isinstance(ev, h2.events.WindowUpdated):
                out.flush()
            elif isinstance(ev, h2.events.StreamReset):
                raise SystemExit(f"stream {ev.stream_id} reset")
        sock.sendall(conn.data_to_send())
    for sid, s in streams.items():
        body = (payload[sid] * (nbytes // len(payload[sid]) + 1))[:nbytes]
        if bytes(s["got"]) != body:
            raise SystemExit(f"stream {sid}: echo differs ({len(s['got'])} of {nbytes} bytes)")
    print(f"ok: {n} streams x {nbytes} bytes echoed by {expected}")


def connect_once(host, port, cert_dir, root, authority, after=None):
    raw = socket.create_connection((host, port), timeout=10)
    try:
        sock = tls_context(False, cert_dir, root).wrap_socket(raw)
        conn = h2.connection.H2Connection(h2_config(True))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "CONNECT"), (":authority", authority)])
        sock.sendall(conn.data_to_send())
        line = b""
        status = None
        while status != b"200" or not line.endswith(b"\n"):
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    headers = dict(ev.headers)
                    status = headers[b":status"]
                    print(f"status {status.decode()}", flush=True)
                    if b"baggage" in headers:
                        print(f"baggage {headers[b'baggage'].decode()}", flush=True)
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    line += ev.data
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    if status != b"200":
                        return
            sock.sendall(conn.data_to_send())
        if line:
            print(line.decode().strip(), flush=True)
        if after == "then-garbage" and status == b"200":
            start = time.time()
            # An application-data record that cannot authenticate, written
            # under the TLS layer.
            raw2 = socket.socket(fileno=os.dup(sock.fileno()))
            raw2.sendall(b"\x17\x03\x03\x00\x20" + b"\x5a" * 32)
            raw2.settimeout(10)
            try:
                while raw2.recv(65536):
                    pass
            except OSError:
                pass
            print(f"closed after {time.time() - start:.0f}", flush=True)
        if after == "then-bad-frame" and status == b"200":
            start = time.time()
            # DATA on stream 0 (RFC 9113 6.1: a connection error of type
            # PROTOCOL_ERROR), written past h2's own checks.
            sock.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
            code, state = None, "data"
            while state == "data" and time.time() - start < 10:
                try:
                    got, state = read_goaway(sock, conn, 10)
                except OSError:
                    break
                if got is not None and code is None:
                    code = got
                    print(f"goaway {int(code)}", flush=True)
            print(f"closed after {time.time() - start:.0f}", flush=True)
    except ssl.SSLError as e:
        print(f"tls failed: {e}", flush=True)
        raise SystemExit(3)
    except ConnectionResetError:
        print("tls failed: connection reset", flush=True)
        raise SystemExit(3)


def read_goaway(sock, conn, timeout):
    """One read: (the GOAWAY error code or None, "data" | "quiet" | "gone")."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return None, "quiet"
    if not data:
        return None, "gone"
    try:
        events = conn.receive_data(data)
    except h2.exceptions.ProtocolError:
        return None, "gone"
    for ev in events:
        if isinstance(ev, h2.events.ConnectionTerminated):
            return ev.error_code, "data"
    return None, "data"


def rapid_reset(host, port, cert_dir, root, authority, count):
    raw = socket.create_connection((host, port), timeout=10)
    sock = tls_context(False, cert_dir, root).wrap_socket(raw)
    conn = h2.connection.H2Connection(h2_config(True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    sent, goaway, state = 0, None, "data"
    try:
        while sent < count and goaway is None and state != "gone":
            for _ in range(min(50, count - sent)):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)])
                conn.reset_stream(sid, error_code=8)
                sent += 1
            sock.sendall(conn.data_to_send())
            goaway, state = read_goaway(sock, conn, 0.01)
        # Then until the GOAWAY, the end, or 5 s of silence.
        while goaway is None and state == "data":
            goaway, state = read_goaway(sock, conn, 5)
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, socket.timeout):
        pass
    if goaway is not None:
        print(f"goaway {int(goaway)}", flush=True)
    print(f"sent {sent}", flush=True)


def stream_burst(host, port, cert_dir, root, authority, count, pause):
    """count CONNECT streams on one connection, each half-closed at once,
    100 in flight at a time, pause seconds between those batches: prints
    how many got each status and how long it took."""
    start = time.monotonic()
    raw = socket.create_connection((host, port), timeout=10)
    sock = tls_context(False, cert_dir, root).wrap_socket(raw)
    conn = h2.connection.H2Connection(h2_config(True))
    conn.initiate_connection()
    statuses, opened = {}, 0
    while opened < count:
        pending = set()
        for _ in range(min(100, count - opened)):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)], end_stream=True)
            pending.add(sid)
            opened += 1
        sock.sendall(conn.data_to_send())
        while pending:
            data = sock.recv(65536)
            if not data:
                raise SystemExit(f"connection closed with {len(pending)} streams unanswered")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    statuses[ev.stream_id] = dict(ev.headers)[b":status"].decode()
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    pending.discard(ev.stream_id)
            sock.sendall(conn.data_to_send())
        if opened < count:
            time.sleep(pause)
    for status in sorted(set(statuses.values())):
        print(f"status {status} {sum(1 for s in statuses.values() if s == status)}", flush=True)
    print(f"seconds {time.monotonic() - start:.2f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "client":
        client(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]))
    elif sys.argv[1] == "connect":
        connect_once(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6],
                     sys.argv[7] if len(sys.argv) > 7 else None)
    elif sys.argv[1] == "rapid-reset":
        rapid_reset(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
    elif sys.argv[1] == "stream-burst":
        stream_burst(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]),
                     float(sys.argv[8]) if len(sys.argv) > 8 else 0.0)
    else:
        raise SystemExit(__doc__)
