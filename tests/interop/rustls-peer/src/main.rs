//! An independent HBONE peer on the libraries Istio's ztunnel is built on
//! (rustls 0.23 with aws-lc-rs, h2, tokio), for interop tests of our agent.
//!
//!   rustls-peer server --listen IP:PORT --cert-dir DIR --roots PEM
//!       --trust-domain TD [--forward] [--deny SPIFFE_ID]... [--once]
//!     Prints "port N" once listening. Each CONNECT: 400 for a bad
//!     request; 401 when the client's identity is in --deny (header-only,
//!     END_STREAM, as Istio); with --forward a TCP connection to the
//!     authority, which must be the address the client dialled (400 "ip
//!     mismatch" otherwise, 503 if the connect fails), else an echo. Logs
//!     one line per connection and stream to stderr.
//!   rustls-peer client --connect IP:PORT --cert-dir DIR --roots PEM
//!       --expect SPIFFE_ID --authority IP:PORT [--streams N] [--bytes B]
//!       [--rounds R] [--idle SECONDS] [--status CODE] [--greeting]
//!     R rounds on one HBONE connection, SECONDS idle between them; each
//!     round opens N CONNECT streams at once (Istio's baggage, forwarded
//!     and traceparent headers), sends B patterned bytes on each,
//!     half-closes and checks the echo. --greeting: the far end first
//!     sends one line (tests/net/tcp_echo.py), printed. --status: the
//!     CONNECT must be answered with CODE instead (e.g. 401).
//!     --tally: open the N streams, send nothing, print "status CODE: COUNT"
//!     per answer and exit, leaving the streams open until then.
//!
//! Both sides PING every 10 s and wait 20 s for the ACK (SPEC §2.2); a
//! missed ACK closes the connection and is logged as "PING timeout".
mod relay;
mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::{Ping, PingPong};
use http::{Method, Request, Response, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use tls::{BoxError, Spiffe};

const PING_INTERVAL: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

struct Args(Vec<(String, String)>);

impl Args {
    fn parse(raw: &[String]) -> Result<Args, BoxError> {
        let flags = ["--forward", "--once", "--greeting", "--tally"];
        let mut out = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if flags.contains(&a.as_str()) {
                out.push((a.clone(), String::new()));
            } else if a.starts_with("--") {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                out.push((a.clone(), v.clone()));
            } else {
                return Err(format!("unexpected argument {a}").into());
            }
        }
        Ok(Args(out))
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn need(&self, k: &str) -> Result<&str, BoxError> {
        self.get(k).ok_or_else(|| format!("{k} is required").into())
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect()
    }
    fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
    fn num(&self, k: &str, default: u64) -> Result<u64, BoxError> {
        self.get(k).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{k}: not a number").into()))
    }
}

/// SPEC §2.2 keepalive; `dead` fires when an ACK did not come in time.
async fn keepalive(mut pp: PingPong, side: &'static str, acked: Arc<AtomicU64>, dead: oneshot::Sender<()>) {
    loop {
        tokio::time::sleep(PING_INTERVAL).await;
        match tokio::time::timeout(PING_TIMEOUT, pp.ping(Ping::opaque())).await {
            Ok(Ok(_)) => {
                let n = acked.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!("{side}: PING acked ({n})");
            }
            Ok(Err(_)) => return, // connection gone
            Err(_) => {
                eprintln!("{side}: PING timeout: closing the connection");
                let _ = dead.send(());
                return;
            }
        }
    }
}

fn peer_identity(certs: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> String {
    certs
        .and_then(|c| c.first())
        .and_then(|c| tls::spiffe_sans(c).into_iter().next())
        .map_or_else(|| "(none)".into(), |id| id.to_string())
}

// ---- server ----

struct ServerOpts {
    forward: bool,
    deny: Vec<Spiffe>,
}

fn header<'a>(req: &'a Request<h2::RecvStream>, name: &str) -> &'a str {
    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn answer(
    req: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    local: SocketAddr,
    peer: Spiffe,
    opts: Arc<ServerOpts>,
) -> Result<(), BoxError> {
    let authority = req.uri().authority().map(|a| a.as_str().to_string()).unwrap_or_default();
    eprintln!(
        "server: CONNECT {authority} from {peer}; baggage: {}; forwarded: {}; traceparent: {}",
        header(&req, "baggage"),
        header(&req, "forwarded"),
        header(&req, "traceparent")
    );
    let reply = |respond: &mut h2::server::SendResponse<Bytes>, code: u16, why: &str| {
        eprintln!("server: stream {authority}: {code} {why}");
        let resp = Response::builder().status(code).body(()).unwrap();
        respond.send_response(resp, true).map(|_| ())
    };
    let target: Option<SocketAddr> = authority.parse().ok();
    let target = match (req.method() == Method::CONNECT, target) {
        (true, Some(t)) => t,
        _ => return Ok(reply(&mut respond, 400, "bad request")?),
    };
    if opts.deny.contains(&peer) {
        return Ok(reply(&mut respond, 401, "denied by policy")?);
    }
    let recv = req.into_body();
    let (bytes_in, bytes_out) = if opts.forward {
        // Istio: only the address the connection was for, never a relay.
        if target.ip() != local.ip() {
            return Ok(reply(&mut respond, 400, "ip mismatch")?);
        }
        let upstream = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(target)).await {
            Ok(Ok(s)) => s,
            _ => return Ok(reply(&mut respond, 503, "upstream connect failed")?),
        };
        upstream.set_nodelay(true)?;
        let send = respond.send_response(Response::builder().status(StatusCode::OK).body(())?, false)?;
        relay::relay(recv, send, upstream).await?
    } else {
        let (near, far) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(far);
            let _ = tokio::io::copy(&mut r, &mut w).await;
            let _ = w.shutdown().await;
        });
        let send = respond.send_response(Response::builder().status(StatusCode::OK).body(())?, false)?;
        relay::relay(recv, send, near).await?
    };
    eprintln!("server: stream {authority}: 200, {bytes_in} bytes in, {bytes_out} bytes out");
    Ok(())
}

async fn serve_conn(tcp: TcpStream, acceptor: TlsAcceptor, opts: Arc<ServerOpts>) -> Result<(), BoxError> {
    let local = tcp.local_addr()?;
    let remote = tcp.peer_addr()?;
    tcp.set_nodelay(true)?;
    let tls = acceptor.accept(tcp).await.map_err(|e| format!("TLS handshake with {remote} failed: {e}"))?;
    let (_, sc) = tls.get_ref();
    let peer = peer_identity(sc.peer_certificates());
    eprintln!(
        "server: connection from {remote} to {local}: peer {peer}, {:?}, {:?}, alpn {:?}",
        sc.protocol_version(),
        sc.negotiated_cipher_suite().map(|c| c.suite()),
        sc.alpn_protocol().map(String::from_utf8_lossy)
    );
    let peer = Spiffe::parse(&peer).ok_or("client has no SPIFFE identity")?;
    // SPEC §2.2, server column.
    let mut conn = h2::server::Builder::new()
        .initial_window_size(4 << 20)
        .initial_connection_window_size(16 << 20)
        .max_frame_size(1 << 20)
        .max_header_list_size(64 << 10)
        .max_concurrent_streams(200)
        .max_send_buffer_size(400 << 10)
        .handshake::<_, Bytes>(tls)
        .await?;
    let (dead_tx, mut dead) = oneshot::channel();
    if let Some(pp) = conn.ping_pong() {
        tokio::spawn(keepalive(pp, "server", Arc::new(AtomicU64::new(0)), dead_tx));
    }
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    let opts = opts.clone();
                    let peer = peer.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(req, respond, local, peer, opts).await {
                            eprintln!("server: stream failed: {e}");
                        }
                    });
                }
                Some(Err(e)) => return Err(format!("HTTP/2: {e}").into()),
                None => break,
            },
            _ = &mut dead => {
                conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                return Err("PING timeout".into());
            }
        }
    }
    eprintln!("server: connection from {remote} closed");
    Ok(())
}

async fn run_server(a: &Args) -> Result<(), BoxError> {
    let id = tls::load_identity(a.need("--cert-dir")?, a.need("--roots")?)?;
    let cfg = tls::server_config(id, a.need("--trust-domain")?)?;
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let mut deny = Vec::new();
    for d in a.all("--deny") {
        deny.push(Spiffe::parse(d).ok_or_else(|| format!("--deny {d}: not a SPIFFE id"))?);
    }
    let opts = Arc::new(ServerOpts { forward: a.has("--forward"), deny });
    let listener = TcpListener::bind(a.need("--listen")?).await?;
    println!("port {}", listener.local_addr()?.port());
    loop {
        let (tcp, _) = listener.accept().await?;
        let work = serve_conn(tcp, acceptor.clone(), opts.clone());
        if a.has("--once") {
            return work.await;
        }
        tokio::spawn(async move {
            if let Err(e) = work.await {
                eprintln!("server: {e}");
            }
        });
    }
}

// ---- client ----

fn pattern(off: u64, stream: u64) -> u8 {
    (off.wrapping_mul(7).wrapping_add(stream)) as u8
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rustls::crypto::aws_lc_rs::default_provider().secure_random.fill(&mut b).expect("random");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct ClientJob {
    authority: String,
    forwarded: String,
    bytes: u64,
    status: u16,
    greeting: bool,
}

/// One CONNECT stream: send the pattern, half-close, check the echo.
async fn one_stream(mut h2: h2::client::SendRequest<Bytes>, job: Arc<ClientJob>, idx: u64) -> Result<(), BoxError> {
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri(job.authority.as_str())
        .header("baggage", "k8s.cluster.name=Kubernetes,k8s.namespace.name=foreign,k8s.deployment.name=peer,service.name=peer,service.version=latest")
        .header("forwarded", job.forwarded.as_str())
        .header("traceparent", format!("00-{}-{}-00", random_hex(16), random_hex(8)))
        .body(())?;
    h2 = h2.ready().await?;
    let (resp, mut send) = h2.send_request(req, false)?;
    let resp = resp.await?;
    let status = resp.status().as_u16();
    if status != job.status {
        return Err(format!("CONNECT {}: status {status}, want {}", job.authority, job.status).into());
    }
    if status != 200 {
        return Ok(());
    }
    let mut recv = resp.into_body();
    let sender = async {
        let mut off = 0u64;
        while off < job.bytes {
            let len = (job.bytes - off).min(64 * 1024);
            let chunk: Vec<u8> = (off..off + len).map(|o| pattern(o, idx)).collect();
            relay::send_all(&mut send, Bytes::from(chunk)).await?;
            off += len;
        }
        send.send_data(Bytes::new(), true)?;
        Ok::<(), BoxError>(())
    };
    let receiver = async {
        let mut got = 0u64;
        let mut line = Vec::new();
        let mut in_greeting = job.greeting;
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            recv.flow_control().release_capacity(chunk.len())?;
            let mut data = &chunk[..];
            if in_greeting {
                match data.iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        line.extend_from_slice(&data[..p]);
                        eprintln!("client: greeting: {}", String::from_utf8_lossy(&line));
                        data = &data[p + 1..];
                        in_greeting = false;
                    }
                    None => {
                        line.extend_from_slice(data);
                        continue;
                    }
                }
            }
            for (i, b) in data.iter().enumerate() {
                if *b != pattern(got + i as u64, idx) {
                    return Err(format!("stream {idx}: echoed byte {} differs", got + i as u64).into());
                }
            }
            got += data.len() as u64;
        }
        if got != job.bytes {
            return Err(format!("stream {idx}: {got} bytes echoed, want {}", job.bytes).into());
        }
        Ok::<(), BoxError>(())
    };
    tokio::try_join!(sender, receiver)?;
    Ok(())
}

async fn run_client(a: &Args) -> Result<(), BoxError> {
    let id = tls::load_identity(a.need("--cert-dir")?, a.need("--roots")?)?;
    let expect = a.need("--expect")?;
    let expected = Spiffe::parse(expect).ok_or_else(|| format!("--expect {expect}: not a SPIFFE id"))?;
    let cfg = tls::client_config(id, vec![expected])?;
    let addr: SocketAddr = a.need("--connect")?.parse()?;
    let streams = a.num("--streams", 1)?;
    let rounds = a.num("--rounds", 1)?;
    let idle = Duration::from_secs(a.num("--idle", 0)?);

    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let local = tcp.local_addr()?;
    // No SNI is sent (enable_sni = false); rustls still wants a name.
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
    let (_, cc) = tls.get_ref();
    let peer = peer_identity(cc.peer_certificates());
    let summary = format!(
        "peer {peer}, {:?}, {:?}",
        cc.protocol_version(),
        cc.negotiated_cipher_suite().map(|c| c.suite())
    );
    eprintln!("client: connected to {addr}: {summary}");
    // SPEC §2.2, client column.
    let (h2, mut conn) = h2::client::Builder::new()
        .initial_window_size(4 << 20)
        .initial_connection_window_size(16 << 20)
        .max_frame_size(1 << 20)
        .max_header_list_size(16 << 10)
        .enable_push(false)
        .handshake::<_, Bytes>(tls)
        .await?;
    let acked = Arc::new(AtomicU64::new(0));
    let (dead_tx, dead) = oneshot::channel();
    if let Some(pp) = conn.ping_pong() {
        tokio::spawn(keepalive(pp, "client", acked.clone(), dead_tx));
    }
    let driver = tokio::spawn(async move {
        tokio::select! {
            r = conn => r.map_err(|e| format!("HTTP/2 connection: {e}")),
            _ = dead => Err("PING timeout".to_string()),
        }
    });
    let job = Arc::new(ClientJob {
        authority: a.need("--authority")?.to_string(),
        forwarded: format!("for=\"{local}\""),
        bytes: a.num("--bytes", 65536)?,
        status: a.num("--status", 200)? as u16,
        greeting: a.has("--greeting"),
    });
    if a.has("--tally") {
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let h2 = h2.clone();
            let job = job.clone();
            tasks.push(tokio::spawn(async move {
                let req = Request::builder().method(Method::CONNECT).uri(job.authority.as_str()).body(())?;
                let mut h2 = h2.ready().await?;
                let (resp, send) = h2.send_request(req, false)?;
                let status = resp.await?.status().as_u16();
                Ok::<(u16, h2::SendStream<Bytes>), BoxError>((status, send))
            }));
        }
        let mut tally = std::collections::BTreeMap::new();
        let mut held = Vec::new();
        for t in tasks {
            let (status, send) = t.await??;
            *tally.entry(status).or_insert(0u64) += 1;
            held.push(send);
        }
        for (status, n) in tally {
            println!("status {status}: {n}");
        }
        return Ok(());
    }
    for round in 0..rounds {
        if round > 0 && !idle.is_zero() {
            eprintln!("client: idle for {}s on the same connection", idle.as_secs());
            tokio::time::sleep(idle).await;
            if driver.is_finished() {
                return Err(format!("connection ended while idle: {:?}", driver.await?).into());
            }
        }
        let mut tasks = Vec::new();
        for i in 0..streams {
            tasks.push(tokio::spawn(one_stream(h2.clone(), job.clone(), round * streams + i + 1)));
        }
        for t in tasks {
            t.await??;
        }
    }
    println!(
        "ok: {rounds} round(s) x {streams} stream(s) x {} bytes, status {}; {summary}; {} PING(s) acked",
        job.bytes,
        job.status,
        acked.load(Ordering::Relaxed)
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let result = match (raw.first().map(String::as_str), Args::parse(raw.get(1..).unwrap_or(&[]))) {
        (_, Err(e)) => Err(e),
        (Some("server"), Ok(a)) => run_server(&a).await,
        (Some("client"), Ok(a)) => run_client(&a).await,
        _ => Err("usage: rustls-peer server|client ... (see the top of src/main.rs)".into()),
    };
    if let Err(e) = result {
        eprintln!("rustls-peer: {e}");
        std::process::exit(1);
    }
}
