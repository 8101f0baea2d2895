//! The send timeout (nginx's `send_timeout`): a connection whose writes to the client make
//! no progress for a while is closed, so a client that stops reading an answer (or reads a
//! byte now and then) cannot hold its connection, its connection slot and the answer's
//! buffers forever. hyper has no write timeout of its own.
//!
//! [`SendDeadline`] wraps the client's stream. Reads pass through untouched. A write,
//! flush or shutdown that completes at once (the common case) costs no timer work. Only
//! when one returns `Pending` (the client's socket is full) is the timer armed, for
//! `timeout` from that moment; any later call that completes disarms it, and the next
//! `Pending` arms it afresh. If the timer fires first, the pending call fails with
//! [`io::ErrorKind::TimedOut`] (and keeps failing until the stream moves again), and hyper
//! drops the connection.
//!
//! The timer, once made, is kept and moved with `reset` when armed again, rather than made
//! anew each time. A disarmed timer still goes off once at its old deadline and wakes the
//! connection's task for nothing; that is all it costs.
//!
//! This relies on what hyper does: after a write-side call returns `Pending`, it waits to
//! be woken before it calls again (it does not, say, flush after a pending write).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A stream whose writes fail with `TimedOut` once they have made no progress for
/// `timeout`.
pub struct SendDeadline<I> {
    io: I,
    timeout: Duration,
    /// Made on the first write that has to wait; kept for the next ones.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` counts down a wait now (otherwise its deadline is stale).
    armed: bool,
}

impl<I> SendDeadline<I> {
    pub fn new(io: I, timeout: Duration) -> SendDeadline<I> {
        SendDeadline {
            io,
            timeout,
            sleep: None,
            armed: false,
        }
    }

    /// Passes on what a write-side call of the inner stream returned: a completed call
    /// disarms the timer; a pending one arms it if it is not armed, and fails once it fires.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if !self.armed {
                    sleep.as_mut().reset(Instant::now() + self.timeout);
                }
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep(self.timeout))),
        };
        self.armed = true;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of the answer for the send timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendDeadline<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout_and_not_before() {
        let (near, _far) = tokio::io::duplex(64);
        let mut io = SendDeadline::new(near, TIMEOUT);
        let start = Instant::now();
        let err = io.write_all(&[7; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), TIMEOUT);
        // It stays failed while the client still reads nothing.
        let err = io.write_all(&[7; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn each_bit_of_progress_gives_the_client_the_whole_timeout_again() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = SendDeadline::new(near, TIMEOUT);
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            // One read just before the timeout, then nothing more.
            tokio::time::sleep(TIMEOUT - Duration::from_millis(100)).await;
            let mut buf = [0; 16];
            far.read_exact(&mut buf).await.unwrap();
            far
        });
        let err = io.write_all(&[7; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), TIMEOUT * 2 - Duration::from_millis(100));
        drop(reader.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_never_cut() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = SendDeadline::new(near, TIMEOUT);
        let total = 64 * 100;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0; 64];
            while got.len() < total {
                tokio::time::sleep(TIMEOUT - Duration::from_millis(10)).await;
                let n = far.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        let start = Instant::now();
        let data: Vec<u8> = (0..total).map(|i| i as u8).collect();
        io.write_all(&data).await.unwrap();
        io.flush().await.unwrap();
        io.shutdown().await.unwrap();
        // Far longer than the timeout in all.
        assert!(start.elapsed() > TIMEOUT * 50);
        assert_eq!(reader.await.unwrap(), data);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_pass_through_and_do_not_arm_the_timer() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = SendDeadline::new(near, TIMEOUT);
        far.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0; 16];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"GET / HTTP/1.1\r\n");
        // A read that waits long past the timeout is not cut.
        let later = tokio::spawn(async move {
            tokio::time::sleep(TIMEOUT * 5).await;
            far.write_all(b"more").await.unwrap();
            far
        });
        let mut buf = [0; 4];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"more");
        assert!(io.sleep.is_none());
        let _far = later.await.unwrap();
        // Writes that complete at once make no timer.
        io.write_all(b"ok").await.unwrap();
        io.flush().await.unwrap();
        assert!(io.sleep.is_none());
    }

    #[tokio::test]
    async fn whether_writes_are_vectored_is_the_inner_streams_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let vectored = tcp.is_write_vectored();
        assert_eq!(
            SendDeadline::new(tcp, TIMEOUT).is_write_vectored(),
            vectored
        );
        let (near, _far) = tokio::io::duplex(64);
        assert_eq!(
            SendDeadline::new(near, TIMEOUT).is_write_vectored(),
            tokio::io::duplex(64).0.is_write_vectored()
        );
    }
}
