//! The reference tables of the docs agree with the lists the code exports
//! (issue #3): a variable or `errorType` added to the code without a table row,
//! or a row left behind after the code dropped it, fails here.
//!
//! | document, section | code list |
//! |---|---|
//! | README.md "Policy", functions/README.md "Policy" | `selfheal_core::POLICY_VARIABLES` (names and literal defaults) |
//! | functions/README.md "Cluster access" | `selfheal_lambda::config::FUNCTION_VARIABLES` |
//! | README.md "Request and outcome", functions/README.md "Errors" | `selfheal_lambda::DOCUMENTED_ERROR_TYPES` |
//! | docs/alarms.md §8 | `selfheal_ingest::config::VARIABLES` (names and defaults) |
//! | functions/README.md "Off switch" | `selfheal_aws::switch::VARIABLES` (names and defaults) |
//!
//! Only table rows count: names are taken from the first cell of each row of
//! the one table in the named section, so a name mentioned in prose elsewhere
//! neither satisfies nor breaks a check. Beyond those tables, the first cell
//! of every table row in the three documents may name only `SELFHEAL_*`
//! variables the code reads, and every `errorType` table in the two READMEs
//! only documented `errorType`s.
//!
//! Pure: reads the files, starts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

fn doc(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One Markdown table: header cells and body rows (cells trimmed; `\|` kept
/// as a literal pipe inside its cell, as GitHub renders it).
#[derive(Debug)]
struct Table {
    /// 1-based line of the header row, for messages.
    line: usize,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner
        .replace("\\|", "\u{0}")
        .split('|')
        .map(|c| c.trim().replace('\u{0}', "|"))
        .collect()
}

fn is_delimiter(line: &str) -> bool {
    let cs = cells(line);
    !cs.is_empty()
        && cs.iter().all(|c| {
            let c = c.trim_matches(':');
            !c.is_empty() && c.chars().all(|ch| ch == '-')
        })
}

/// Lines of `text` that are outside fenced code blocks, with their 1-based
/// line numbers (relative to `first_line`).
fn prose_lines(text: &str, first_line: usize) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((first_line + i, line));
        }
    }
    out
}

/// Every table in `text` (outside code fences).
fn tables(text: &str, first_line: usize) -> Vec<Table> {
    let lines = prose_lines(text, first_line);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (n, line) = lines[i];
        let next_is_delimiter = lines.get(i + 1).is_some_and(|(_, l)| is_delimiter(l));
        if line.trim_start().starts_with('|') && next_is_delimiter {
            let mut table = Table {
                line: n,
                header: cells(line),
                rows: Vec::new(),
            };
            i += 2;
            while let Some((_, row)) = lines.get(i) {
                if !row.trim_start().starts_with('|') {
                    break;
                }
                table.rows.push(cells(row));
                i += 1;
            }
            out.push(table);
        } else {
            i += 1;
        }
    }
    out
}

/// The text under the heading line equal to `heading` (e.g. `### Policy`),
/// up to the next heading of the same or a higher level, and the line number
/// of its first line. Exactly one such heading must exist.
fn section(text: &str, file: &str, heading: &str) -> (String, usize) {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let lines = prose_lines(text, 1);
    let starts: Vec<usize> = lines
        .iter()
        .filter(|(_, l)| l.trim_end() == heading)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        starts.len(),
        1,
        "{file}: expected exactly one heading {heading:?}, found it at lines {starts:?}"
    );
    let start = starts[0];
    let end = lines
        .iter()
        .find(|(n, l)| {
            let hashes = l.chars().take_while(|c| *c == '#').count();
            *n > start && hashes > 0 && hashes <= level && l[hashes..].starts_with(' ')
        })
        .map_or(usize::MAX, |(n, _)| *n);
    let body: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i + 1 > start && *i + 1 < end)
        .map(|(_, l)| l)
        .collect();
    (body.join("\n"), start + 1)
}

/// The one table of `heading`'s section whose header's first cell is `first_header`.
fn table_in(text: &str, file: &str, heading: &str, first_header: &str) -> Table {
    let (body, first_line) = section(text, file, heading);
    let mut found: Vec<Table> = tables(&body, first_line)
        .into_iter()
        .filter(|t| t.header.first().map(String::as_str) == Some(first_header))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{file} {heading:?}: expected one table with first column {first_header:?}, found {}",
        found.len()
    );
    found.remove(0)
}

/// Backticked spans of a cell (`` `A` / `B` `` gives both).
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

fn is_variable(name: &str) -> bool {
    name.strip_prefix("SELFHEAL_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

fn is_error_type(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Names in the first cell of every row, each row naming at least one; no
/// name listed twice.
fn first_column_names(
    table: &Table,
    file: &str,
    accept: fn(&str) -> bool,
) -> Vec<(String, Vec<String>)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for row in &table.rows {
        let names: Vec<&str> = code_spans(&row[0])
            .into_iter()
            .filter(|n| accept(n))
            .collect();
        assert!(
            !names.is_empty(),
            "{file}: a row of the table at line {} names nothing in its first cell: {row:?}",
            table.line
        );
        for name in names {
            assert!(
                seen.insert(name.to_owned()),
                "{file}: {name} is listed twice in the table at line {}",
                table.line
            );
            out.push((name.to_owned(), row.clone()));
        }
    }
    out
}

/// The table's names are exactly `code`'s; the message says which side lacks what.
fn assert_same_names(file: &str, what: &str, table: &Table, documented: &[String], code: &[&str]) {
    let documented: BTreeSet<&str> = documented.iter().map(String::as_str).collect();
    let code: BTreeSet<&str> = code.iter().copied().collect();
    let missing: Vec<_> = code.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&code).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{file}, table at line {} ({what}): in the code but not the table: {missing:?}; \
         in the table but unknown to the code: {unknown:?}",
        table.line
    );
}

/// Defaults are compared when the code gives a literal value: `600` must be
/// documented as `600` (backticks aside); `(unset: …)` / `(required)` only as
/// starting with the same word.
fn assert_default(file: &str, name: &str, documented: &str, code: &str) {
    let normal = |s: &str| {
        s.replace('`', "")
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_owned()
    };
    let (documented, code) = (normal(documented), normal(code));
    let word = |s: &str| {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let ok = if code.starts_with("unset") || code.starts_with("required") {
        word(&documented) == word(&code)
    } else {
        documented == code
    };
    assert!(
        ok,
        "{file}: default of {name} is documented as {documented:?}, the code says {code:?}"
    );
}

const README: &str = "README.md";
const FUNCTIONS: &str = "functions/README.md";
const ALARMS: &str = "docs/alarms.md";

fn check_variable_table(
    file: &str,
    heading: &str,
    first_header: &str,
    code: &[(&str, &str, &str)],
) {
    let text = doc(file);
    let table = table_in(&text, file, heading, first_header);
    let rows = first_column_names(&table, file, is_variable);
    let names: Vec<String> = rows.iter().map(|(n, _)| n.clone()).collect();
    let code_names: Vec<&str> = code.iter().map(|(n, _, _)| *n).collect();
    assert_same_names(file, heading, &table, &names, &code_names);
    for (name, row) in &rows {
        let (_, default, _) = code.iter().find(|(n, _, _)| n == name).unwrap();
        let documented = row
            .get(1)
            .unwrap_or_else(|| panic!("{file}: the row of {name} has no default column"));
        assert_default(file, name, documented, default);
    }
}

#[test]
fn policy_tables_list_exactly_policy_variables() {
    let code = selfheal_core::POLICY_VARIABLES;
    check_variable_table(
        README,
        "## Policy (environment variables)",
        "Variable",
        code,
    );
    check_variable_table(FUNCTIONS, "### Policy", "Variable", code);
}

#[test]
fn cluster_access_table_lists_exactly_function_variables() {
    let text = doc(FUNCTIONS);
    let table = table_in(&text, FUNCTIONS, "### Cluster access", "Variable");
    let rows = first_column_names(&table, FUNCTIONS, is_variable);
    let names: Vec<String> = rows.into_iter().map(|(n, _)| n).collect();
    assert_same_names(
        FUNCTIONS,
        "Cluster access",
        &table,
        &names,
        selfheal_lambda::config::FUNCTION_VARIABLES,
    );
}

#[test]
fn off_switch_table_lists_exactly_switch_variables() {
    check_variable_table(
        FUNCTIONS,
        "### Off switch",
        "Variable",
        selfheal_aws::switch::VARIABLES,
    );
}

#[test]
fn ingest_environment_table_lists_exactly_ingest_variables() {
    check_variable_table(
        ALARMS,
        "## 8. Environment of the ingest function",
        "variable",
        selfheal_ingest::config::VARIABLES,
    );
}

#[test]
fn error_type_tables_list_exactly_documented_error_types() {
    let code = selfheal_lambda::DOCUMENTED_ERROR_TYPES;
    for (file, heading) in [
        (
            README,
            "## Request and outcome (Step Functions input and output)",
        ),
        (FUNCTIONS, "## Errors (`errorType`)"),
    ] {
        let text = doc(file);
        let table = table_in(&text, file, heading, "`errorType`");
        let rows = first_column_names(&table, file, is_error_type);
        let names: Vec<String> = rows.into_iter().map(|(n, _)| n).collect();
        assert_same_names(file, heading, &table, &names, code);
    }
}

/// Outside the tables checked above: no table row anywhere in these documents
/// introduces a `SELFHEAL_*` variable no code reads, and no other `errorType`
/// table of the READMEs names an unknown `errorType`.
#[test]
fn no_table_names_an_unknown_variable_or_error_type() {
    let mut known: BTreeSet<&str> = selfheal_core::POLICY_VARIABLES
        .iter()
        .chain(selfheal_ingest::config::VARIABLES)
        .chain(selfheal_aws::switch::VARIABLES)
        .map(|(n, _, _)| *n)
        .collect();
    known.extend(selfheal_lambda::config::FUNCTION_VARIABLES);
    for file in [README, FUNCTIONS, ALARMS] {
        let text = doc(file);
        let all = tables(&text, 1);
        assert!(!all.is_empty(), "{file}: no tables found");
        for table in &all {
            for row in &table.rows {
                for name in code_spans(&row[0]).into_iter().filter(|n| is_variable(n)) {
                    assert!(
                        known.contains(name),
                        "{file}, table at line {}: {name} is read by no code list \
                         (POLICY_VARIABLES, FUNCTION_VARIABLES, ingest VARIABLES, switch VARIABLES)",
                        table.line
                    );
                }
            }
        }
    }
    for file in [README, FUNCTIONS] {
        let text = doc(file);
        for table in tables(&text, 1) {
            let header = table.header.first().map(|h| h.replace('`', ""));
            if header.as_deref() != Some("errorType") {
                continue;
            }
            for (name, _) in first_column_names(&table, file, is_error_type) {
                assert!(
                    selfheal_lambda::DOCUMENTED_ERROR_TYPES.contains(&name.as_str()),
                    "{file}, table at line {}: errorType {name} is not in DOCUMENTED_ERROR_TYPES",
                    table.line
                );
            }
        }
    }
}

/// The parser itself: sections end at the next heading of the same level,
/// fenced headings do not count, escaped pipes stay inside their cell.
#[test]
fn table_parser_reads_rows_of_one_section_only() {
    let text = "\
# Top
## A
```sh
## not a heading
```
| Variable | Default |
|---|---|
| `SELFHEAL_X` / `SELFHEAL_Y` | `a\\|b` |
prose `SELFHEAL_PROSE`
### A.1
| Variable | Default |
|---|---|
| `SELFHEAL_Z` | 1 |
## B
| Variable | Default |
|:--|--:|
| `SELFHEAL_W` | 2 |
";
    let (body, first) = section(text, "t", "## A");
    let found = tables(&body, first);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].line, 6);
    assert_eq!(
        found[0].rows,
        vec![vec!["`SELFHEAL_X` / `SELFHEAL_Y`", "`a|b`"]]
    );
    let names = first_column_names(&found[0], "t", is_variable);
    assert_eq!(
        names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["SELFHEAL_X", "SELFHEAL_Y"]
    );
    let b = table_in(text, "t", "## B", "Variable");
    assert_eq!(b.rows, vec![vec!["`SELFHEAL_W`", "2"]]);
    assert_default("t", "SELFHEAL_W", "`600`", "600");
    assert_default("t", "SELFHEAL_W", "unset (all)", "(unset: all)");
}
