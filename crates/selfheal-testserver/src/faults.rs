//! Fault injection: fail the next N resource requests, delay every request,
//! drop the connection around a write, or run a hook just before a request
//! (a concurrent writer that slips in between a client's read and its write),
//! end every open watch early, or reset every open connection (a dropped watch).

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// When [`Faults::reset_next`] drops the connection, relative to the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Nothing is applied; the client gets no answer.
    BeforeApplying,
    /// The request is applied (and visible to later reads); the client gets no answer.
    AfterApplying,
}

/// A one-shot hook run before the next request with a given method.
pub(crate) struct Hook {
    pub(crate) method: String,
    pub(crate) run: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub(crate) fail: Option<(u32, u16)>,
    pub(crate) latency: Option<Duration>,
    /// Method, when, how many more.
    pub(crate) reset: Option<(String, Reset, u32)>,
    pub(crate) hooks: Vec<Hook>,
    /// Wakes every open connection to reset it ([`Faults::drop_connections`]).
    pub(crate) drops: Arc<tokio::sync::Notify>,
    /// Ends every open watch cleanly ([`Faults::end_watches`]).
    pub(crate) ends: Arc<tokio::sync::Notify>,
}

impl FaultState {
    /// Consumes one injected failure, if any is pending.
    pub(crate) fn take_failure(&mut self) -> Option<u16> {
        let (n, code) = self.fail?;
        self.fail = if n > 1 { Some((n - 1, code)) } else { None };
        Some(code)
    }

    /// Consumes one pending connection reset for `method`, if any.
    pub(crate) fn take_reset(&mut self, method: &str) -> Option<Reset> {
        let (m, when, n) = self.reset.take()?;
        if !m.eq_ignore_ascii_case(method) {
            self.reset = Some((m, when, n));
            return None;
        }
        if n > 1 {
            self.reset = Some((m, when, n - 1));
        }
        Some(when)
    }

    /// Removes and returns the first hook registered for `method`.
    pub(crate) fn take_hook(&mut self, method: &str) -> Option<Hook> {
        let i = self
            .hooks
            .iter()
            .position(|h| h.method.eq_ignore_ascii_case(method))?;
        Some(self.hooks.remove(i))
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
    /// The next `n` non-discovery requests with `method` (e.g. `PATCH`) get
    /// no answer: the server closes the connection, before or after applying
    /// the request. The request log records them with status 0.
    pub fn reset_next(&self, n: u32, method: &str, when: Reset) -> &Self {
        self.lock().reset = (n > 0).then(|| (method.to_ascii_uppercase(), when, n));
        self
    }
    /// Run `hook` once, just before the next authorised non-discovery request
    /// with `method` is handled, with no server lock held: it may seed or
    /// change objects through the `TestServer` (a concurrent writer that wins
    /// the race against that request). Hooks queue in registration order.
    pub fn before_next(&self, method: &str, hook: impl FnOnce() + Send + 'static) -> &Self {
        self.lock().hooks.push(Hook {
            method: method.to_ascii_uppercase(),
            run: Box::new(hook),
        });
        self
    }
    /// Resets every open connection now (TCP RST, no closing chunk): a
    /// network drop in the middle of a watch or between requests, which a
    /// client must not mistake for the server ending a watch. Later
    /// connections are served as usual.
    pub fn drop_connections(&self) -> &Self {
        self.lock().drops.notify_waiters();
        self
    }
    /// Ends every open watch now, cleanly and before its `timeoutSeconds`,
    /// as a real API server does when it restarts or rebalances: the
    /// client must watch again, from where it was.
    pub fn end_watches(&self) -> &Self {
        self.lock().ends.notify_waiters();
        self
    }
    /// Removes all injected faults (pending hooks included).
    pub fn clear(&self) -> &Self {
        let mut s = self.lock();
        s.fail = None;
        s.latency = None;
        s.reset = None;
        s.hooks.clear();
        self
    }
}
