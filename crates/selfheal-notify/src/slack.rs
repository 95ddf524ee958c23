//! The Slack post (Block Kit) and the escaping of alert text.
//!
//! Alert text (alarm names, reasons, labels, annotations) is written by
//! whoever writes an alert rule, and it reaches approval requests. In Slack
//! mrkdwn `<url|label>` is a link and `<!channel>`, `<!here>`, `<@U…>` are
//! mentions, so every piece of text goes through [`escape_mrkdwn`] and the
//! approval links live in a block of their own, the first one, which holds
//! no alert text (see `render` in the crate root).

use serde::{Deserialize, Serialize};

/// Slack's limit on a section's text.
pub const SECTION_TEXT_MAX: usize = 3000;

/// An incoming-webhook payload: `text` is what Slack shows in notifications,
/// `blocks` the message itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Block>,
}

/// The one block kind notify uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Section { block_id: String, text: Text },
}

impl Block {
    /// A mrkdwn section; `text` must already be escaped.
    pub fn section(block_id: &str, text: String) -> Block {
        Block::Section {
            block_id: block_id.to_owned(),
            text: Text::Mrkdwn {
                text: clip(text, SECTION_TEXT_MAX),
            },
        }
    }

    pub fn block_id(&self) -> &str {
        match self {
            Block::Section { block_id, .. } => block_id,
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Block::Section {
                text: Text::Mrkdwn { text },
                ..
            } => text,
        }
    }
}

/// A Block Kit text object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Text {
    Mrkdwn { text: String },
}

/// Word joiner: invisible, and it splits `@here` or `<!` so that Slack (or
/// a chat bridge reading the SNS text) forms no mention.
const JOINER: char = '\u{2060}';

/// Line breaks and other control characters become spaces, so one field
/// stays on its line. ingest already strips them from alert text; requests
/// started by hand (console, CLI) do not pass through ingest.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `@channel`, `@here` and `@everyone` (any case) with a word joiner after
/// the `@`, so they read the same and notify nobody.
pub fn neutralise_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['@', '<']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let mut chars = from.chars();
        let first = chars.next().unwrap_or('@');
        out.push(first);
        let after = chars.as_str();
        let lower = after.to_ascii_lowercase();
        let mention = match first {
            '@' => ["channel", "here", "everyone"]
                .iter()
                .any(|word| lower.starts_with(word)),
            // `<!channel>`, `<!subteam^…>`, `<@U…>`, `<#C…>`
            _ => after.starts_with(['!', '@', '#']),
        };
        if mention {
            out.push(JOINER);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Text as Slack mrkdwn shows it literally: on one line, `&`, `<` and `>`
/// escaped (so it forms no link and no `<!…>`/`<@…>` mention) and
/// `@channel`-style words neutralised.
pub fn escape_mrkdwn(text: &str) -> String {
    selfheal_approval::http::escape_with(
        &neutralise_mentions(&one_line(text)),
        &[('&', "&amp;"), ('<', "&lt;"), ('>', "&gt;")],
    )
}

/// A mrkdwn link to a URL selfheal made (approval links, the console).
/// `|` would end the URL part, so it is percent-encoded.
pub fn link(url: &str, label: &str) -> String {
    let url: String = one_line(url)
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "%3C".to_owned(),
            '>' => "%3E".to_owned(),
            '|' => "%7C".to_owned(),
            ' ' => "%20".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!("<{url}|{}>", escape_mrkdwn(label))
}

/// At most `max` characters, with `…` when cut.
fn clip(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_link_and_no_mention() {
        let hostile = "x <!channel> <!here|here> <@U024BE7LH> <#C024BE7LR> <https://evil|Approve> & @here @Channel a@b.example";
        let escaped = escape_mrkdwn(hostile);
        assert!(
            !escaped.contains('<') && !escaped.contains('>'),
            "{escaped}"
        );
        assert_eq!(
            escaped,
            "x &lt;\u{2060}!channel&gt; &lt;\u{2060}!here|here&gt; &lt;\u{2060}@U024BE7LH&gt; &lt;\u{2060}#C024BE7LR&gt; &lt;https://evil|Approve&gt; &amp; @\u{2060}here @\u{2060}Channel a@b.example"
        );
        // Pre-escaped entities stay text.
        assert_eq!(
            escape_mrkdwn("&lt;!channel&gt;"),
            "&amp;lt;!channel&amp;gt;"
        );
        assert_eq!(escape_mrkdwn("a\nb\r\tc"), "a b  c");
    }

    #[test]
    fn links_keep_their_url_and_escape_the_rest() {
        assert_eq!(
            link("https://u/approve?id=X&key=K", "Approve"),
            "<https://u/approve?id=X&amp;key=K|Approve>"
        );
        assert_eq!(link("https://u/a|b", "<x>"), "<https://u/a%7Cb|&lt;x&gt;>");
    }

    #[test]
    fn sections_are_clipped_to_slacks_limit() {
        let block = Block::section("details", "é".repeat(SECTION_TEXT_MAX + 10));
        assert_eq!(block.text().chars().count(), SECTION_TEXT_MAX);
        assert!(block.text().ends_with('…'));
        assert_eq!(
            serde_json::to_value(&block).unwrap(),
            serde_json::json!({"type": "section", "block_id": "details",
                "text": {"type": "mrkdwn", "text": block.text()}})
        );
    }
}
