"""A hostile client of ztunnel-ca (Python's ssl and the h2 package):

  ca_hostile.py big HOST PORT ROOT_PEM
      one CreateCertificate whose body is 80 KiB; print "grpc-status N" from
      the answer (or "reset" if the stream or connection went)
  ca_hostile.py settings HOST PORT ROOT_PEM
      print "max_concurrent_streams N" as the server advertises it
  ca_hostile.py streams HOST PORT ROOT_PEM N
      open N request streams at once, ignoring the advertised limit (the h2
      package's own check is bypassed); print "goaway CODE" if the server
      ends the connection, else "refused K" for the streams it reset
  ca_hostile.py alpn HOST PORT ROOT_PEM PROTO
      TLS with ALPN PROTO only; print "handshake failed" or "alpn X"
  ca_hostile.py trickle HOST PORT SECONDS
      send a ClientHello one byte per second; print "closed after S" when
      the server closes (or "open after SECONDS")
"""
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate"


def tls(host, port, root, alpn=("h2",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(root)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection((host, port), timeout=10)
    return ctx.wrap_socket(raw)


def h2_open(host, port, root):
    sock = tls(host, port, root)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def request_headers(host, n):
    return [(":method", "POST"), (":scheme", "https"), (":authority", host), (":path", PATH),
            ("content-type", "application/grpc"), ("te", "trailers"), ("content-length", str(n))]


def pump(sock, conn, until, seconds=10):
    """Feeds received bytes to conn until until(event) is true for an event;
    returns the events seen, or None when the connection went."""
    seen = []
    sock.settimeout(seconds)
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            data = sock.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            return seen
        if not data:
            return None if not seen else seen
        for ev in conn.receive_data(data):
            seen.append(ev)
            if isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if until(ev):
                sock.sendall(conn.data_to_send())
                return seen
        sock.sendall(conn.data_to_send())
    return seen


def grpc_status(events):
    """The grpc-status of a response (trailers, or a trailers-only answer)."""
    for ev in events:
        if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
            status = dict(ev.headers).get(b"grpc-status")
            if status is not None:
                return status.decode()
    return None


def big(host, port, root):
    sock, conn = h2_open(host, port, root)
    body = b"\0" + (80 * 1024 - 5).to_bytes(4, "big") + b"\x0a" * (80 * 1024 - 5)
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, request_headers(host, len(body)))
    sent, events = 0, []
    done = (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated)
    while not any(isinstance(ev, done) for ev in events):
        room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(body) - sent)
        if sent < len(body) and room > 0:
            conn.send_data(sid, body[sent:sent + room], end_stream=sent + room == len(body))
            sent += room
            sock.sendall(conn.data_to_send())
            continue
        seen = pump(sock, conn, lambda ev: isinstance(ev, done + (h2.events.WindowUpdated,)))
        if not seen:
            break
        events += seen
    status = grpc_status(events)
    if status is not None:
        print(f"grpc-status {status}")
    else:
        print("reset")


def settings(host, port, root):
    sock, conn = h2_open(host, port, root)
    pump(sock, conn, lambda ev: isinstance(ev, h2.events.RemoteSettingsChanged))
    print(f"max_concurrent_streams {conn.remote_settings.max_concurrent_streams}")


def streams(host, port, root, n):
    sock, conn = h2_open(host, port, root)
    pump(sock, conn, lambda ev: isinstance(ev, h2.events.RemoteSettingsChanged))
    # Ignore the server's limit: what a hostile client would do.
    conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 1000
    conn.remote_settings.acknowledge()
    ids = []
    for _ in range(n):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers(host, 5))  # body never sent: the stream stays open
        ids.append(sid)
    sock.sendall(conn.data_to_send())
    seen = pump(sock, conn, lambda ev: isinstance(ev, h2.events.ConnectionTerminated), seconds=3) or []
    refused = {ev.stream_id for ev in seen if isinstance(ev, h2.events.StreamReset)}
    goaway = [ev for ev in seen if isinstance(ev, h2.events.ConnectionTerminated)]
    print(f"goaway {goaway[0].error_code}" if goaway else f"refused {len(refused)}")


def alpn(host, port, root, proto):
    try:
        sock = tls(host, port, root, alpn=(proto,))
        sock.settimeout(3)
        sock.recv(1)  # TLS 1.3: the server's verdict may come after the client's Finished
        print(f"alpn {sock.selected_alpn_protocol()}")
    except (ssl.SSLError, OSError):
        print("handshake failed")


def trickle(host, port, seconds):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outb.read()
    raw = socket.create_connection((host, port), timeout=5)
    raw.settimeout(1)
    start = time.time()
    for b in hello:
        try:
            raw.sendall(bytes([b]))
            if raw.recv(1) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.time() - start > seconds:
            print(f"open after {seconds}")
            return
    print(f"closed after {time.time() - start:.0f}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "big":
        big(args[0], int(args[1]), args[2])
    elif cmd == "settings":
        settings(args[0], int(args[1]), args[2])
    elif cmd == "streams":
        streams(args[0], int(args[1]), args[2], int(args[3]))
    elif cmd == "alpn":
        alpn(args[0], int(args[1]), args[2], args[3])
    elif cmd == "trickle":
        trickle(args[0], int(args[1]), float(args[2]))
    else:
        sys.exit(f"unknown command {cmd}")
