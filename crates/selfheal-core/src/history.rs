//! Revision history from ReplicaSets (design.md §3.1).
