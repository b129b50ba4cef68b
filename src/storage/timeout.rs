//! `Timeout` on every storage call.
//!
//! Athens hands its `Timeout` to the storage backends, which bound their
//! calls with it (the object stores' uploads and deletes, every call of
//! its Mongo backend). Here every call of the configured backend is
//! bounded by it, reads included: a store that accepts connections and
//! never answers would otherwise hold each request (and the stash worker
//! saving to it) until the object-store client's own retries give up,
//! minutes later, or for ever on a hung file system.
//!
//! A call past the limit ends with [`StorageError::Service`], which the
//! protocol answers like any other storage failure: a 500, which the go
//! command does not fall through on (the store is broken, the module is
//! not missing). The call's future is dropped, which leaves nothing a
//! reader can see: every backend publishes a version in one step (disk:
//! a directory rename; object stores: the `.info` marker written last),
//! and what an abandoned save left (a temporary directory, a staged
//! upload, objects without their marker) is removed or replaced as the
//! backends already handle a save that died.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{CatalogPage, ServiceFailure, SideKey, Storage, StorageError, StoredZip, ZipReader};

/// A [`Storage`] whose every call must end within `limit`.
pub struct TimeoutStorage {
    inner: Arc<dyn Storage>,
    limit: Duration,
    service: &'static str,
}

impl TimeoutStorage {
    /// Bounds each call of `inner` by `limit`; `service` names the backend
    /// in the errors (`disk`, `s3`, ...).
    pub fn new(inner: Arc<dyn Storage>, limit: Duration, service: &'static str) -> Self {
        TimeoutStorage {
            inner,
            limit,
            service,
        }
    }

    fn expired(&self, op: &'static str, key: String) -> StorageError {
        StorageError::Service(Box::new(ServiceFailure {
            service: self.service,
            op,
            key,
            message: format!("no answer within Timeout ({})", humanize(self.limit)),
        }))
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        key: impl FnOnce() -> String,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(self.limit, call).await {
            Ok(result) => result,
            Err(_) => {
                let error = self.expired(op, key());
                tracing::warn!(%error, "storage call abandoned");
                Err(error)
            }
        }
    }
}

fn humanize(limit: Duration) -> String {
    if limit.subsec_nanos() == 0 {
        format!("{}s", limit.as_secs())
    } else {
        format!("{}ms", limit.as_millis())
    }
}

fn version_key(module: &str, version: &str, what: &str) -> String {
    format!("{module}@{version} {what}")
}

#[async_trait]
impl Storage for TimeoutStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.bounded(
            "reading",
            || version_key(module, version, ".info"),
            self.inner.info(module, version),
        )
        .await
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.bounded(
            "reading",
            || version_key(module, version, "go.mod"),
            self.inner.go_mod(module, version),
        )
        .await
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        let zip = self
            .bounded(
                "reading",
                || version_key(module, version, "zip"),
                self.inner.zip(module, version),
            )
            .await?;
        if zip.in_memory.is_some() {
            return Ok(zip);
        }
        // A streamed zip: the store must keep sending, each piece within
        // the limit of the previous one, however long the whole takes.
        Ok(StoredZip {
            size: zip.size,
            reader: Box::pin(StallBound::new(zip.reader, self.limit)),
            in_memory: None,
        })
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        self.bounded(
            "checking",
            || version_key(module, version, "files"),
            self.inner.exists(module, version),
        )
        .await
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        self.bounded(
            "listing",
            || format!("{module} versions"),
            self.inner.list(module),
        )
        .await
    }

    async fn save(
        &self,
        module: &str,
        version: &str,
        go_mod: Bytes,
        zip: &mut (dyn AsyncRead + Send + Unpin),
        info: Bytes,
    ) -> Result<(), StorageError> {
        // As Athens bounds an upload of the three files as a whole.
        self.bounded(
            "saving",
            || version_key(module, version, "files"),
            self.inner.save(module, version, go_mod, zip, info),
        )
        .await
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        self.bounded(
            "deleting",
            || version_key(module, version, "files"),
            self.inner.delete(module, version),
        )
        .await
    }

    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError> {
        self.bounded(
            "listing",
            || "the catalog".to_string(),
            self.inner.catalog(token, page_size),
        )
        .await
    }

    async fn get_side(&self, key: &SideKey<'_>) -> Result<Option<Bytes>, StorageError> {
        self.bounded("reading", || key.to_string(), self.inner.get_side(key))
            .await
    }

    async fn put_side(
        &self,
        key: &SideKey<'_>,
        data: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        self.bounded(
            "writing",
            || key.to_string(),
            self.inner.put_side(key, data),
        )
        .await
    }

    async fn delete_side(&self, key: &SideKey<'_>) -> Result<(), StorageError> {
        self.bounded("deleting", || key.to_string(), self.inner.delete_side(key))
            .await
    }
}

/// A reader that fails with [`io::ErrorKind::TimedOut`] when its source
/// keeps a read waiting for `limit`. Only the time a read waits counts: a
/// consumer that pauses between reads (a slow client) is no stall.
struct StallBound {
    inner: ZipReader,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether a read is waiting for the source (the timer runs for it).
    waiting: bool,
}

impl StallBound {
    fn new(inner: ZipReader, limit: Duration) -> Self {
        StallBound {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            waiting: false,
        }
    }
}

impl AsyncRead for StallBound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.waiting {
            let deadline = Instant::now() + this.limit;
            this.timer.as_mut().reset(deadline);
        }
        match this.inner.as_mut().poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.waiting = false;
                Poll::Ready(result)
            }
            Poll::Pending => {
                this.waiting = true;
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.waiting = false;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "storage sent nothing of the zip within Timeout ({})",
                                humanize(this.limit)
                            ),
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use tokio::io::AsyncReadExt;

    /// A backend whose calls never end, as a store that accepts
    /// connections and never answers.
    struct Hung;

    #[async_trait]
    impl Storage for Hung {
        async fn info(&self, _: &str, _: &str) -> Result<Bytes, StorageError> {
            std::future::pending().await
        }
        async fn go_mod(&self, _: &str, _: &str) -> Result<Bytes, StorageError> {
            std::future::pending().await
        }
        async fn zip(&self, _: &str, _: &str) -> Result<StoredZip, StorageError> {
            // Opens at once, then never sends a byte.
            Ok(StoredZip {
                size: 10,
                reader: Box::pin(tokio::io::empty().chain(Never)),
                in_memory: None,
            })
        }
        async fn exists(&self, _: &str, _: &str) -> Result<bool, StorageError> {
            std::future::pending().await
        }
        async fn list(&self, _: &str) -> Result<Vec<String>, StorageError> {
            std::future::pending().await
        }
        async fn save(
            &self,
            _: &str,
            _: &str,
            _: Bytes,
            _: &mut (dyn AsyncRead + Send + Unpin),
            _: Bytes,
        ) -> Result<(), StorageError> {
            std::future::pending().await
        }
        async fn delete(&self, _: &str, _: &str) -> Result<(), StorageError> {
            std::future::pending().await
        }
        async fn catalog(&self, _: &str, _: usize) -> Result<CatalogPage, StorageError> {
            std::future::pending().await
        }
    }

    struct Never;

    impl AsyncRead for Never {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    fn expect_timeout<T: std::fmt::Debug>(result: Result<T, StorageError>, op: &str) {
        let err = result.expect_err("a hung call must fail");
        assert!(matches!(err, StorageError::Service(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("storage (s3)"), "{text}");
        assert!(text.contains(op), "{text}");
        assert!(text.contains("within Timeout (200ms)"), "{text}");
    }

    /// Every call of a backend that never answers ends with the timeout
    /// error once the limit has passed.
    #[tokio::test]
    async fn every_call_of_a_hung_backend_ends_at_the_limit() {
        let storage = TimeoutStorage::new(Arc::new(Hung), Duration::from_millis(200), "s3");
        let m = "example.com/m";
        expect_timeout(storage.info(m, "v1.0.0").await, "reading");
        expect_timeout(storage.go_mod(m, "v1.0.0").await, "reading");
        expect_timeout(storage.exists(m, "v1.0.0").await, "checking");
        expect_timeout(storage.list(m).await, "listing");
        expect_timeout(storage.catalog("", 10).await, "listing");
        expect_timeout(storage.delete(m, "v1.0.0").await, "deleting");
        let mut zip: &[u8] = b"zip";
        expect_timeout(
            storage
                .save(m, "v1.0.0", Bytes::new(), &mut zip, Bytes::new())
                .await,
            "saving",
        );
        // A zip whose bytes stop coming fails the read, not the server.
        let mut stored = storage.zip(m, "v1.0.0").await.unwrap();
        let err = stored
            .reader
            .read_to_end(&mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    }

    /// A source that keeps sending, a byte every 100 ms, is read to its
    /// end with a limit of 300 ms although the whole takes longer: the
    /// limit bounds silence, not the transfer. (A stalled runtime delays
    /// both timers alike; the source's, due first, is polled first.)
    #[tokio::test]
    async fn a_slow_but_steady_zip_is_read_whole() {
        struct Trickle {
            left: u8,
            wait: Option<Pin<Box<Sleep>>>,
        }
        impl AsyncRead for Trickle {
            fn poll_read(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                if self.left == 0 {
                    return Poll::Ready(Ok(()));
                }
                let wait = self.wait.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep(Duration::from_millis(100)))
                });
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
                self.left -= 1;
                buf.put_slice(b"z");
                Poll::Ready(Ok(()))
            }
        }
        let mut reader = StallBound::new(
            Box::pin(Trickle {
                left: 8,
                wait: None,
            }),
            Duration::from_millis(300),
        );
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"zzzzzzzz");

        // A consumer that pauses longer than the limit between reads (a
        // slow client) does not count against the source.
        let mut reader = StallBound::new(
            Box::pin(Trickle {
                left: 3,
                wait: None,
            }),
            Duration::from_millis(300),
        );
        let mut byte = [0u8; 1];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            reader.read_exact(&mut byte).await.unwrap();
        }
    }

    /// Calls that answer in time pass through unchanged.
    #[tokio::test]
    async fn answering_calls_pass_through() {
        let memory = Arc::new(MemoryStorage::new());
        let storage = TimeoutStorage::new(memory, Duration::from_secs(30), "memory");
        crate::storage::conformance::run(&storage).await;
    }
}
