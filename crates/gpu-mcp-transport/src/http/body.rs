//! Response bodies: complete ones, and the event streams of requests that send notifications
//! before their response; both hold their bytes of the process-wide budget until they are
//! written.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::budget::Held;

/// What a handler answers with: a complete body, or a request's event stream.
#[derive(Debug)]
pub(crate) enum ReplyBody {
    /// The whole body at once.
    Full(Full<Bytes>),
    /// SSE events, written as the request produces them.
    Events(EventStream),
}

impl From<Bytes> for ReplyBody {
    fn from(bytes: Bytes) -> Self {
        Self::Full(Full::new(bytes))
    }
}

/// The SSE events of one request, each with the budget bytes it holds; those go back once hyper
/// asks for the next frame (it has taken this one), whether or not the next event is ready.
///
/// Dropping the stream (the client went away) aborts the task that produces it, and with it
/// the request: a call whose client disconnected is cancelled.
#[derive(Debug)]
pub(crate) struct EventStream {
    events: mpsc::Receiver<(Bytes, Held)>,
    writing: Held,
    _producer: AbortOnDropHandle<()>,
}

impl EventStream {
    /// The events `producer` sends on the other end of `events`.
    pub(crate) fn new(
        events: mpsc::Receiver<(Bytes, Held)>,
        producer: AbortOnDropHandle<()>,
    ) -> Self {
        Self {
            events,
            writing: Held::none(),
            _producer: producer,
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match &mut *self {
            Self::Full(full) => Pin::new(full).poll_frame(cx),
            Self::Events(stream) => {
                // Asked for the next frame: hyper has taken the last one.
                stream.writing = Held::none();
                match stream.events.poll_recv(cx) {
                    Poll::Ready(Some((event, held))) => {
                        stream.writing = held;
                        Poll::Ready(Some(Ok(Frame::data(event))))
                    }
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(full) => full.is_end_stream(),
            Self::Events(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(full) => full.size_hint(),
            Self::Events(_) => SizeHint::default(),
        }
    }
}

/// A response body with the budget bytes it holds while hyper writes it, and whatever else
/// must live exactly as long as the response (the connection's in-flight mark).
#[derive(Debug)]
pub(crate) struct BudgetedBody<G> {
    inner: ReplyBody,
    _held: Held,
    _guard: G,
}

impl<G> BudgetedBody<G> {
    pub(crate) fn new(inner: ReplyBody, held: Held, guard: G) -> Self {
        Self {
            inner,
            _held: held,
            _guard: guard,
        }
    }
}

impl<G: Unpin> Body for BudgetedBody<G> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
