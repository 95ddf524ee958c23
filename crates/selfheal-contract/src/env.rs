//! The one rule every function and the CLI read configuration variables by:
//! a value is trimmed, and a blank one counts as unset. Templates and
//! consoles leave a variable empty to mean "not set", so no variable
//! behaves differently from another.
//!
//! Configuration readers take a lookup (`impl Fn(&str) -> Option<String>`):
//! [`process`] in a binary, a map in tests, so tests never mutate the
//! process environment.

/// The process environment as a lookup; a value that is not UTF-8 counts as unset.
pub fn process(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `name` through `lookup`, trimmed; `None` when unset or blank.
pub fn get(lookup: impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    let value = lookup(name)?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A lookup over fixed `(name, value)` pairs (the last pair for a name
/// wins): how tests feed a configuration reader without the process
/// environment.
pub fn from_pairs<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// A configuration variable holds an unusable value: the one shape of
/// every crate's `Config` error, so a reader's error passes through a
/// caller's unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration {variable}: {reason}")]
pub struct Invalid {
    pub variable: &'static str,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "SET" => Some("  value \n".into()),
            "BLANK" => Some(" \t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn values_are_trimmed_and_blank_is_unset() {
        assert_eq!(get(lookup, "SET").as_deref(), Some("value"));
        assert_eq!(get(lookup, "BLANK"), None);
        assert_eq!(get(lookup, "EMPTY"), None);
        assert_eq!(get(lookup, "UNSET"), None);
    }

    #[test]
    fn pairs_look_up_by_name_and_the_last_one_wins() {
        let lookup = from_pairs(&[("A", "1"), ("B", " "), ("A", "2")]);
        assert_eq!(lookup("A").as_deref(), Some("2"));
        assert_eq!(get(&lookup, "B"), None);
        assert_eq!(lookup("C"), None);
    }
}
