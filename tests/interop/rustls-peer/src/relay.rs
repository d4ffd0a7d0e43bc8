//! One CONNECT stream <-> a byte stream, with HTTP/2 flow control:
//! received DATA is released only once written, sends wait for window.
//! END_STREAM maps to a half-close (shutdown) and back.
use bytes::Bytes;
use h2::{RecvStream, SendStream};
use std::future::poll_fn;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::tls::BoxError;

/// Sends all of `data` on the stream as the peer's window allows.
pub async fn send_all(send: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), BoxError> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let cap = poll_fn(|cx| send.poll_capacity(cx)).await.ok_or("stream closed while sending")??;
        if cap == 0 {
            continue;
        }
        let part = data.split_to(cap.min(data.len()));
        send.send_data(part, false)?;
    }
    Ok(())
}

/// Relays both ways until both directions ended; returns (bytes from the
/// stream, bytes to the stream).
pub async fn relay<S>(mut recv: RecvStream, mut send: SendStream<Bytes>, io: S) -> Result<(u64, u64), BoxError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let from_stream = async {
        let mut n = 0u64;
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            wr.write_all(&chunk).await?;
            n += chunk.len() as u64;
            recv.flow_control().release_capacity(chunk.len())?;
        }
        wr.shutdown().await?;
        Ok::<u64, BoxError>(n)
    };
    let to_stream = async {
        let mut n = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let got = rd.read(&mut buf).await?;
            if got == 0 {
                send.send_data(Bytes::new(), true)?;
                return Ok::<u64, BoxError>(n);
            }
            send_all(&mut send, Bytes::copy_from_slice(&buf[..got])).await?;
            n += got as u64;
        }
    };
    tokio::try_join!(from_stream, to_stream)
}
