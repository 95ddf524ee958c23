//! Fault injection: fail the next N resource requests, or delay every request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub(crate) fail: Option<(u32, u16)>,
    pub(crate) latency: Option<Duration>,
}

impl FaultState {
    /// Consumes one injected failure, if any is pending.
    pub(crate) fn take_failure(&mut self) -> Option<u16> {
        let (n, code) = self.fail?;
        self.fail = if n > 1 { Some((n - 1, code)) } else { None };
        Some(code)
    }
}

/// Handle returned by `TestServer::faults()`.
#[derive(Debug, Clone)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl Faults {
    pub(crate) fn new(state: Arc<Mutex<FaultState>>) -> Faults {
        Faults { state }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The next `n` non-discovery requests fail with `status_code` and a
    /// matching `Status` body (409 Conflict, 429, 500 InternalError, 503 …).
    pub fn fail_next(&self, n: u32, status_code: u16) -> &Self {
        self.lock().fail = (n > 0).then_some((n, status_code));
        self
    }
    /// Delay every request (discovery included) by `d`.
    pub fn latency(&self, d: Duration) -> &Self {
        self.lock().latency = Some(d);
        self
    }
    /// Removes all injected faults.
    pub fn clear(&self) -> &Self {
        let mut s = self.lock();
        s.fail = None;
        s.latency = None;
        self
    }
}
