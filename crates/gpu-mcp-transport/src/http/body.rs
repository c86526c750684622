//! Response bodies that hold their bytes of the process-wide budget until they are written.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};

use crate::budget::Held;

/// A complete response body and the budget bytes it holds while hyper writes it.
#[derive(Debug)]
pub(crate) struct BudgetedBody {
    inner: Full<Bytes>,
    _held: Held,
}

impl BudgetedBody {
    pub(crate) fn new(inner: Full<Bytes>, held: Held) -> Self {
        Self { inner, _held: held }
    }
}

impl Body for BudgetedBody {
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
