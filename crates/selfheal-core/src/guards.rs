//! Guards of design.md §3.4: each returns a refusal naming its [`Guard`](crate::Guard).
