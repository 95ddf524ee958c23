//! The reference tables of the docs agree with the lists the code exports:
//! a variable or `errorType` added to the code without a table row, or a
//! row left behind after the code dropped it, fails here.
//!
//! | document, section | code list |
//! |---|---|
//! | README.md "Policy", functions/README.md "Policy" | `selfheal_core::POLICY_VARIABLES` (names and literal defaults) |
//! | functions/README.md "Cluster access" | `selfheal_lambda::config::FUNCTION_VARIABLES` |
//! | README.md "Request and outcome", functions/README.md "Errors" | `selfheal_core::ErrorType::from_kube_functions` |
//! | docs/alarms.md §8 | `selfheal_ingest::config::VARIABLES` (names and defaults) |
//! | functions/README.md "Off switch" | `selfheal_aws::switch::VARIABLES` (names and defaults) |
//! | functions/README.md "notify", "approve" | the `pub const …: &str = "SELFHEAL_…"` of `crates/selfheal-notify` and `crates/selfheal-approval` |
//!
//! Numbers the documents state: timeouts, memory, how many functions,
//! Kubernetes handlers and Fail states, the Fail-state tables of
//! statemachines/README.md, docs/limits.md's Lambda and state machine tables
//! and parameter defaults, the stack outputs the runbook (docs/operating.md)
//! and deploy/README.md list; compared with `template.yaml`,
//! `statemachines/*.asl.json`, `functions/*` and the code's constants
//! (section "Numbers the docs state" below).
//!
//! For the variable and `errorType` lists only table rows count: names are
//! taken from the first cell of each row of the one table in the named
//! section, so a name mentioned in prose elsewhere
//! neither satisfies nor breaks a check. Beyond those tables, the first cell
//! of every table row in the three documents may name only `SELFHEAL_*`
//! variables the code reads, and every `errorType` table in the two READMEs
//! only documented `errorType`s.
//!
//! Pure: reads the files, starts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod template_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use selfheal_core::ErrorType;

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
    let code: Vec<&str> = ErrorType::ALL
        .iter()
        .filter(|e| e.from_kube_functions())
        .map(|e| e.as_str())
        .collect();
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
        assert_same_names(file, heading, &table, &names, &code);
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
    let notify_approve: Vec<String> = ["notify", "approve"]
        .into_iter()
        .flat_map(|f| declared_variables(f).into_values())
        .collect();
    known.extend(notify_approve.iter().map(String::as_str));
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
                         (POLICY_VARIABLES, FUNCTION_VARIABLES, ingest VARIABLES, switch VARIABLES, \
                         notify/approve constants)",
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
                    ErrorType::name_is_from_kube_functions(&name),
                    "{file}, table at line {}: errorType {name} is not an ErrorType the \
                     Kubernetes functions return",
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

// ---- Numbers the docs state ---------------------------------------------
//
// Where a document states a number that the code or the templates decide
// (a timeout, how many functions or Fail states, a parameter's default), the
// number is compared with its source here: `template.yaml` (functions,
// parameters), `statemachines/*.asl.json` (states) and `functions/*`
// (packages). Prose is compared as a whole phrase built from those values
// (`assert_says`), so rewording a sentence means updating its phrase here,
// and changing a value fails until the text follows.

const STATEMACHINES: &str = "statemachines/README.md";
const DEPLOY: &str = "deploy/README.md";
const LIMITS: &str = "docs/limits.md";

/// Every document that may state such numbers.
const NUMBERED_DOCS: &[&str] = &[
    README,
    FUNCTIONS,
    STATEMACHINES,
    DEPLOY,
    ALARMS,
    LIMITS,
    "docs/operating.md",
    "cdk/README.md",
];

fn yaml_number(value: &selfheal_tests::yaml::Value) -> Option<u64> {
    match value {
        selfheal_tests::yaml::Value::Number(n) => n.as_u64(),
        selfheal_tests::yaml::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// What the stack defines, read from `template.yaml`.
struct Template {
    /// Function binary → (Timeout s, MemorySize MB), a function's own value
    /// or `Globals.Function`'s.
    functions: BTreeMap<String, (u64, u64)>,
    /// Functions given the policy (`SELFHEAL_REQUIRE_OPT_IN`): the
    /// Kubernetes handlers.
    kube_handlers: BTreeSet<String>,
    /// Parameter → default, as text.
    defaults: BTreeMap<String, String>,
}

fn template() -> Template {
    let doc: selfheal_tests::yaml::Value =
        selfheal_tests::yaml::from_str(&doc("template.yaml")).expect("template.yaml is YAML");
    let globals = &doc["Globals"]["Function"];
    let mut functions = BTreeMap::new();
    let mut kube_handlers = BTreeSet::new();
    for (binary, r) in template_common::functions(&doc) {
        let p = &r["Properties"];
        let value = |key: &str| {
            yaml_number(&p[key])
                .or_else(|| yaml_number(&globals[key]))
                .unwrap_or_else(|| panic!("{binary}: no {key}"))
        };
        functions.insert(binary.clone(), (value("Timeout"), value("MemorySize")));
        if p["Environment"]["Variables"]
            .get(selfheal_core::policy::REQUIRE_OPT_IN)
            .is_some()
        {
            kube_handlers.insert(binary);
        }
    }
    let mut defaults = BTreeMap::new();
    for (name, p) in doc["Parameters"].as_mapping().expect("Parameters") {
        let default = match p.get("Default") {
            Some(selfheal_tests::yaml::Value::String(s)) => s.clone(),
            Some(selfheal_tests::yaml::Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        defaults.insert(name.as_str().expect("name").to_owned(), default);
    }
    Template {
        functions,
        kube_handlers,
        defaults,
    }
}

impl Template {
    fn timeout(&self, function: &str) -> u64 {
        self.functions
            .get(function)
            .unwrap_or_else(|| panic!("template.yaml: no function {function}"))
            .0
    }

    /// The one timeout every Kubernetes handler has, but verify, which
    /// watches a whole rollout in one call and has its own.
    fn kube_timeout(&self) -> u64 {
        let timeouts: BTreeSet<u64> = self
            .kube_handlers
            .iter()
            .filter(|f| *f != "verify")
            .map(|f| self.timeout(f))
            .collect();
        assert_eq!(
            timeouts.len(),
            1,
            "Kubernetes handler timeouts differ: {timeouts:?}"
        );
        timeouts.into_iter().next().unwrap()
    }
}

/// A state machine definition's states, nested ones (Map, Parallel) included.
fn asl_states(file: &str) -> (serde_json::Value, Vec<(String, serde_json::Value)>) {
    let definition: serde_json::Value =
        serde_json::from_str(&doc(&format!("statemachines/{file}"))).expect("ASL is JSON");
    fn walk(states: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        for (name, state) in states.as_object().expect("States") {
            out.push((name.clone(), state.clone()));
            for key in ["Iterator", "ItemProcessor"] {
                if let Some(inner) = state.get(key) {
                    walk(&inner["States"], out);
                }
            }
            for branch in state["Branches"].as_array().into_iter().flatten() {
                walk(&branch["States"], out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&definition["States"], &mut out);
    (definition, out)
}

const DEPLOYMENT_ASL: &str = "remediate-deployment.asl.json";
const FLEET_ASL: &str = "remediate-fleet.asl.json";

/// The state machines' `Retry` and `Catch` match our errors by string: every
/// name outside AWS's own namespaces is an `ErrorType` or a state machine
/// error of ours (`Selfheal…`, a task failure), and a `Retry` names only
/// `Retryable…` ones.
#[test]
fn asl_error_equals_names_only_known_error_types() {
    let mut ours = 0;
    for file in [DEPLOYMENT_ASL, FLEET_ASL] {
        let (_, states) = asl_states(file);
        for (state, definition) in &states {
            for (key, retry) in [("Retry", true), ("Catch", false)] {
                for rule in definition[key].as_array().into_iter().flatten() {
                    let names = rule["ErrorEquals"].as_array().expect("ErrorEquals");
                    for name in names.iter().map(|n| n.as_str().expect("a name")) {
                        let aws = ["States.", "Lambda.", "StepFunctions.", "Sandbox."];
                        if aws.iter().any(|p| name.starts_with(p)) || name.starts_with("Selfheal") {
                            continue;
                        }
                        let known = ErrorType::from_name(name).unwrap_or_else(|| {
                            panic!("{file} {state}: {key} names {name}, which is no ErrorType")
                        });
                        assert!(
                            !retry || known.is_retryable(),
                            "{file} {state}: Retry names {name}, which retrying cannot fix"
                        );
                        ours += 1;
                    }
                }
            }
        }
    }
    assert!(ours > 0, "no Retry or Catch names an ErrorType");
}

fn state_timeout(file: &str, state: &str) -> u64 {
    let (_, states) = asl_states(file);
    states
        .iter()
        .find(|(n, _)| n == state)
        .and_then(|(_, s)| s["TimeoutSeconds"].as_u64())
        .unwrap_or_else(|| panic!("{file}: no state {state} with TimeoutSeconds"))
}

/// `functions/<folder>/Cargo.toml` → (folder, package name).
fn function_packages() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("functions/") {
        let path = entry.expect("entry").path();
        let Ok(manifest) = std::fs::read_to_string(path.join("Cargo.toml")) else {
            continue;
        };
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("package name");
        let folder = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((folder, name.to_owned()));
    }
    out.sort();
    out
}

const NUMBER_WORDS: [&str; 13] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

/// `word` as a count: digits or a number word, any case.
fn count_word(word: &str) -> Option<u64> {
    let word = word.to_ascii_lowercase();
    word.parse().ok().or_else(|| {
        NUMBER_WORDS
            .iter()
            .position(|w| *w == word)
            .map(|i| i as u64)
    })
}

/// The prose of a document (outside code fences) with every run of
/// whitespace, line breaks included, as one space.
fn prose(text: &str) -> String {
    let lines: Vec<&str> = prose_lines(text, 1).into_iter().map(|(_, l)| l).collect();
    lines
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every count stated right before `noun` (e.g. `five` before `Fail states`),
/// as (count, the words around it).
fn counts_before(text: &str, noun: &str) -> Vec<(u64, String)> {
    let words: Vec<&str> = text.split(' ').collect();
    let noun: Vec<&str> = noun.split(' ').collect();
    let clean = |w: &str| {
        w.trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_owned()
    };
    let mut out = Vec::new();
    for i in 1..words.len() {
        let follows = noun
            .iter()
            .enumerate()
            .all(|(k, n)| words.get(i + k).is_some_and(|w| clean(w) == *n));
        if follows && let Some(count) = count_word(&clean(words[i - 1])) {
            let from = i.saturating_sub(4);
            let to = (i + noun.len() + 2).min(words.len());
            out.push((count, words[from..to].join(" ")));
        }
    }
    out
}

/// Every number right after `prefix` that is followed by `unit` (` s`,
/// ` MB`): (number, where).
fn numbers_after(text: &str, prefix: &str, unit: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        let Ok(n) = digits.replace(',', "").parse() else {
            continue;
        };
        let after = &rest[digits.len()..];
        let unit_ends = after
            .strip_prefix(unit)
            .is_some_and(|r| !r.starts_with(|c: char| c.is_ascii_alphanumeric()));
        if unit_ends {
            let end = (at + prefix.len() + digits.len() + unit.len() + 10).min(text.len());
            let end = (end..=text.len())
                .find(|e| text.is_char_boundary(*e))
                .unwrap();
            out.push((n, text[at..end].to_owned()));
        }
    }
    out
}

/// The first backticked span of a table's first two cells, per row, sorted.
fn first_spans_sorted(table: &Table) -> Vec<(String, String)> {
    let first = |row: &[String], i: usize| -> String {
        code_spans(&row[i])
            .first()
            .map(|s| (*s).to_owned())
            .unwrap_or_else(|| panic!("table at line {}: no `name` in {row:?}", table.line))
    };
    let mut out: Vec<(String, String)> = table
        .rows
        .iter()
        .map(|row| (first(row, 0), first(row, 1)))
        .collect();
    out.sort();
    out
}

/// `file` says `phrase` (compared with whitespace collapsed).
fn assert_says(file: &str, phrase: &str) {
    assert!(
        prose(&doc(file)).contains(phrase),
        "{file} must say {phrase:?} (built from the code; reworded? update this test)"
    );
}

#[test]
fn function_counts_and_table_follow_the_functions_folder() {
    let packages = function_packages();
    let template = template();
    let folders: BTreeSet<&str> = packages.iter().map(|(f, _)| f.as_str()).collect();
    let deployed: BTreeSet<&str> = template.functions.keys().map(String::as_str).collect();
    assert_eq!(
        folders, deployed,
        "template.yaml deploys other functions than functions/ holds"
    );

    let text = doc(FUNCTIONS);
    let table = table_in(
        &text,
        FUNCTIONS,
        "# selfheal Lambda functions",
        "Function (binary)",
    );
    assert_eq!(
        first_spans_sorted(&table),
        packages,
        "{FUNCTIONS}: the function table vs functions/*/Cargo.toml"
    );

    for file in NUMBERED_DOCS {
        let text = prose(&doc(file));
        for noun in ["functions", "binaries"] {
            for (count, context) in counts_before(&text, noun) {
                assert_eq!(
                    count,
                    packages.len() as u64,
                    "{file}: {context:?}, but functions/ holds {} functions",
                    packages.len()
                );
            }
        }
        for (count, context) in counts_before(&text, "Kubernetes handlers") {
            assert_eq!(
                count,
                template.kube_handlers.len() as u64,
                "{file}: {context:?}, but template.yaml gives the policy to {:?}",
                template.kube_handlers
            );
        }
    }
    assert_says(
        FUNCTIONS,
        &format!("{} functions, one binary each", {
            let n = NUMBER_WORDS[packages.len()];
            let mut c = n.chars();
            c.next().unwrap().to_uppercase().collect::<String>() + c.as_str()
        }),
    );
}

#[test]
fn fail_state_tables_and_counts_follow_the_definitions() {
    let text = doc(STATEMACHINES);
    for (heading, file) in [
        ("## remediate-deployment", DEPLOYMENT_ASL),
        ("## remediate-fleet", FLEET_ASL),
    ] {
        let (_, states) = asl_states(file);
        let mut fails: Vec<(String, String)> = states
            .iter()
            .filter(|(_, s)| s["Type"] == "Fail")
            .map(|(n, s)| {
                // A Fail state names its error, or takes it from the input
                // (`ErrorPath`); the table gives whichever it has.
                let error = s["Error"].as_str().or_else(|| s["ErrorPath"].as_str());
                (n.clone(), error.expect("Error or ErrorPath").to_owned())
            })
            .collect();
        fails.sort();
        let table = table_in(&text, STATEMACHINES, heading, "Fail state");
        assert_eq!(
            first_spans_sorted(&table),
            fails,
            "{STATEMACHINES} {heading:?}: Fail states vs {file}"
        );
        let (body, _) = section(&text, STATEMACHINES, heading);
        let stated = counts_before(&prose(&body), "Fail states");
        assert!(
            !stated.is_empty(),
            "{STATEMACHINES} {heading:?} states no count of Fail states"
        );
        for (count, context) in stated {
            assert_eq!(
                count,
                fails.len() as u64,
                "{STATEMACHINES}: {context:?} ({file})"
            );
        }
    }
}

#[test]
fn stated_timeouts_and_sizes_follow_template_and_definitions() {
    let t = template();
    let kube = t.kube_timeout();
    let memory: BTreeSet<u64> = t.functions.values().map(|(_, m)| *m).collect();
    assert_eq!(
        memory.len(),
        1,
        "functions differ in MemorySize: {memory:?}"
    );
    let memory = memory.into_iter().next().unwrap();
    let approve = t.timeout("approve");
    assert_eq!(
        Some(approve),
        t.functions.values().map(|(s, _)| *s).min(),
        "approve is documented as the smallest timeout"
    );
    assert_eq!(
        t.timeout("notify"),
        t.timeout("ingest"),
        "documented as one number"
    );

    assert_says(
        STATEMACHINES,
        &format!("with the {kube} s function timeout"),
    );
    assert_says(
        STATEMACHINES,
        &format!(
            "no answer within {} s",
            state_timeout(DEPLOYMENT_ASL, "RequestApproval")
        ),
    );
    assert_says(
        DEPLOY,
        &format!(
            "Every function runs with {memory} MB; the Kubernetes handlers (rollback, pause, \
             resume, restart) time out after {kube} s, verify after {} s, notify and ingest \
             after {} s, approve after {approve} s.",
            t.timeout("verify"),
            t.timeout("notify")
        ),
    );
    assert_says(DEPLOY, &format!(": {kube} s for the Kubernetes handlers."));
    assert_says(
        DEPLOY,
        &format!(
            "`TimeoutSeconds` ({} s, Verify {} s, ReportResult/ReportFailure {} s)",
            state_timeout(DEPLOYMENT_ASL, "Rollback"),
            state_timeout(DEPLOYMENT_ASL, "Verify"),
            state_timeout(DEPLOYMENT_ASL, "ReportResult"),
        ),
    );
    assert_says(
        LIMITS,
        &format!("smallest function timeout (approve, {approve} s)"),
    );

    // Anywhere: "<function>'s N s" is that function's timeout, and "N runs
    // of/× N s" (a step's worst case) counts in Kubernetes handler timeouts.
    for file in NUMBERED_DOCS {
        let text = prose(&doc(file));
        for function in t.functions.keys() {
            for (n, context) in numbers_after(&text, &format!("{function}'s "), " s") {
                assert_eq!(n, t.timeout(function), "{file}: {context:?}");
            }
        }
        for prefix in [" runs of ", " runs × "] {
            for (n, context) in numbers_after(&text, prefix, " s") {
                assert_eq!(n, kube, "{file}: {context:?}");
            }
        }
    }
}

/// docs/limits.md: the Lambda table, the state machine table and every row
/// whose "configurable" cell names a template parameter.
#[test]
fn limits_tables_follow_template_and_definitions() {
    let t = template();
    let text = doc(LIMITS);
    let first_number = |cell: &str| -> Option<u64> {
        let digits: String = cell
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        digits.replace(',', "").parse().ok()
    };

    let lambda = table_in(
        &text,
        LIMITS,
        "### Lambda functions (`template.yaml`, mirrored in `cdk/lib/functions.ts`)",
        "function",
    );
    let mut listed = BTreeSet::new();
    for row in &lambda.rows {
        for function in row[0].split(", ").map(str::trim) {
            let (timeout, memory) = t.functions[function];
            assert!(
                listed.insert(function.to_owned()),
                "{LIMITS}: {function} twice"
            );
            assert_eq!(
                first_number(&row[1]),
                Some(timeout),
                "{LIMITS}: Timeout of {function}"
            );
            assert_eq!(
                first_number(&row[2]),
                Some(memory),
                "{LIMITS}: MemorySize of {function}"
            );
        }
    }
    let deployed: BTreeSet<String> = t.functions.keys().cloned().collect();
    assert_eq!(
        listed, deployed,
        "{LIMITS}: the Lambda table lists other functions"
    );

    let machines = table_in(
        &text,
        LIMITS,
        "### State machines (`statemachines/*.asl.json`)",
        "limit",
    );
    let mut timed: BTreeMap<String, u64> = BTreeMap::new();
    for file in [DEPLOYMENT_ASL, FLEET_ASL] {
        for (name, state) in asl_states(file).1 {
            if let Some(s) = state["TimeoutSeconds"].as_u64() {
                timed.insert(name, s);
            }
        }
    }
    let mut checked = 0;
    for row in &machines.rows {
        let words = row[0].split(|c: char| !c.is_ascii_alphanumeric());
        for state in words.filter(|w| timed.contains_key(*w)) {
            assert_eq!(
                first_number(&row[1]),
                Some(timed[state]),
                "{LIMITS}: row {:?} vs {state}'s TimeoutSeconds",
                row[0]
            );
            checked += 1;
        }
        if row[0].starts_with("Execution timeout") {
            for file in [DEPLOYMENT_ASL, FLEET_ASL] {
                let (definition, _) = asl_states(file);
                assert_eq!(
                    first_number(&row[1]),
                    definition["TimeoutSeconds"].as_u64(),
                    "{LIMITS}: execution timeout of {file}"
                );
            }
            checked += 1;
        }
        // "`VerifyMaxAttempts` 66": a parameter and its default.
        for (i, span) in row[1].split('`').enumerate().skip(1).step_by(2) {
            let Some(default) = t.defaults.get(span) else {
                continue;
            };
            let after = row[1].split('`').nth(i + 1).unwrap_or_default();
            if let Some(n) = after.strip_prefix(' ').and_then(first_number_strict) {
                assert_eq!(n.to_string(), *default, "{LIMITS}: {span} in {:?}", row[0]);
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 10,
        "{LIMITS}: only {checked} state machine numbers found"
    );

    // Rows whose "configurable" cell names `parameter X`: the value is X's default.
    let mut parameters = 0;
    for table in tables(&text, 1) {
        let column = |name: &str| table.header.iter().position(|h| h == name);
        let (Some(value), Some(configurable)) = (column("value"), column("configurable")) else {
            continue;
        };
        for row in &table.rows {
            let cell = &row[configurable];
            let Some(rest) = cell.split("parameter `").nth(1) else {
                continue;
            };
            let parameter = rest.split('`').next().unwrap_or_default();
            let default = t
                .defaults
                .get(parameter)
                .unwrap_or_else(|| panic!("{LIMITS}: {parameter} is no template parameter"));
            if let Some(n) = first_number_strict(&row[value]) {
                assert_eq!(
                    n.to_string(),
                    *default,
                    "{LIMITS}: {:?} vs {parameter}",
                    row[0]
                );
                parameters += 1;
            }
        }
    }
    assert!(
        parameters >= 4,
        "{LIMITS}: only {parameters} parameter defaults found"
    );
}

/// The number a cell starts with (`3,600 s` → 3600), if it starts with one.
fn first_number_strict(cell: &str) -> Option<u64> {
    let digits: String = cell
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .collect();
    digits.replace(',', "").parse().ok()
}

/// The `SELFHEAL_*` variables a function's crate (`selfheal-notify`,
/// `selfheal-approval`) declares as `pub const NAME: &str = "SELFHEAL_…";`
/// outside its tests, plus those of the approval crate it reads through
/// `selfheal_approval::NAME`. notify and approve keep their names in such
/// constants (no list like ingest's).
fn declared_variables(folder: &str) -> BTreeMap<String, String> {
    let sources = |folder: &str| -> String {
        let krate = match folder {
            "approve" => "selfheal-approval",
            _ => "selfheal-notify",
        };
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../crates")
            .join(krate)
            .join("src");
        let mut text = String::new();
        for entry in std::fs::read_dir(&dir).expect("src/") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let file = std::fs::read_to_string(&path).expect("read source");
            // Inline test modules come last in this code base.
            text.push_str(file.split("#[cfg(test)]").next().unwrap_or_default());
        }
        text
    };
    let consts = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|line| {
                let rest = line.trim().strip_prefix("pub const ")?;
                let (name, value) = rest.split_once(": &str = \"")?;
                let value = value.strip_suffix("\";")?;
                is_variable(value).then(|| (name.to_owned(), value.to_owned()))
            })
            .collect()
    };
    let own = sources(folder);
    let mut found = consts(&own);
    if folder != "approve" {
        for (name, value) in consts(&sources("approve")) {
            if own.contains(&format!("selfheal_approval::{name}")) {
                found.insert(name, value);
            }
        }
    }
    found
}

#[test]
fn notify_and_approve_tables_list_exactly_their_variables() {
    let text = doc(FUNCTIONS);
    for folder in ["notify", "approve"] {
        let declared = declared_variables(folder);
        assert!(
            !declared.is_empty(),
            "functions/{folder}: no SELFHEAL_* constants found"
        );
        let heading = format!("### {folder}");
        let table = table_in(&text, FUNCTIONS, &heading, "Variable");
        let names: Vec<String> = first_column_names(&table, FUNCTIONS, is_variable)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let code: Vec<&str> = declared.values().map(String::as_str).collect();
        assert_same_names(FUNCTIONS, &heading, &table, &names, &code);
    }
    // The scan itself: notify reads approve's prefix through the approve crate.
    assert!(
        declared_variables("notify")
            .values()
            .any(|v| v == "SELFHEAL_APPROVAL_PARAM_PREFIX")
    );
}

const OPERATING: &str = "docs/operating.md";

/// The stack's outputs, as the runbook and deploy/README.md list them: every
/// output once, no name that is not one.
#[test]
fn runbook_and_deploy_readme_list_the_stack_outputs() {
    let doc_yaml: selfheal_tests::yaml::Value =
        selfheal_tests::yaml::from_str(&doc("template.yaml")).expect("template.yaml is YAML");
    let outputs: BTreeSet<String> = doc_yaml["Outputs"]
        .as_mapping()
        .expect("Outputs")
        .keys()
        .map(|k| k.as_str().expect("name").to_owned())
        .collect();

    let text = doc(OPERATING);
    let table = table_in(&text, OPERATING, "## 0. The names you need", "output");
    let listed: Vec<String> = table
        .rows
        .iter()
        .flat_map(|row| code_spans(&row[0]).into_iter().map(str::to_owned))
        .collect();
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "{OPERATING}: an output listed twice"
    );
    assert_eq!(unique, outputs, "{OPERATING} §0 vs template.yaml Outputs");
    // Every `out NAME` the runbook's commands call is an output.
    for (at, _) in text.match_indices("$(out ") {
        let name: String = text[at + 6..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        assert!(
            outputs.contains(&name),
            "{OPERATING}: $(out {name}) is no output"
        );
    }

    let deploy = prose(&doc(DEPLOY));
    let sentence = deploy
        .split("Outputs: ")
        .nth(1)
        .and_then(|rest| rest.split(". ").next())
        .expect("deploy/README.md: an `Outputs: …` sentence");
    let named: BTreeSet<String> = code_spans(sentence)
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        named, outputs,
        "{DEPLOY}: the Outputs sentence vs template.yaml"
    );
}

/// Numbers the runbook states about the Deployment's annotations.
#[test]
fn runbook_numbers_follow_the_code() {
    assert_says(
        OPERATING,
        &format!(
            "The last {} applied actions",
            selfheal_core::keys::HISTORY_KEEP
        ),
    );
    assert_says(
        OPERATING,
        &format!(
            "(at most {} per container",
            selfheal_core::keys::BAD_IMAGES_KEEP
        ),
    );
}

/// The runbook's "about 10 seconds" is the off switch's cache period.
#[test]
fn runbook_switch_delay_is_the_switch_cache() {
    let seconds = selfheal_aws::switch::DEFAULT_CACHE.as_secs();
    assert_says(OPERATING, &format!("within about {seconds} seconds"));
    assert_says(OPERATING, &format!("({seconds} s by default)"));
}

/// statemachines/README.md names every state of both definitions (in its
/// diagram or in backticks), so a state added to an ASL file is explained.
#[test]
fn statemachines_readme_names_every_state() {
    let text = doc(STATEMACHINES);
    let named = |state: &str| {
        text.contains(&format!("`{state}`"))
            || text.lines().any(|l| {
                l.starts_with("  ")
                    && l.split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| w == state)
            })
    };
    for file in [DEPLOYMENT_ASL, FLEET_ASL] {
        let (_, states) = asl_states(file);
        let missing: Vec<&str> = states
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !named(n))
            .collect();
        assert!(
            missing.is_empty(),
            "{STATEMACHINES} does not name {missing:?} of {file}"
        );
    }
}

/// The runbook gives ingest back the stack's reservation by number.
#[test]
fn runbook_restores_the_stacks_ingest_reservation() {
    let t = template();
    let reserved = &t.defaults["IngestReservedConcurrency"];
    assert_says(
        OPERATING,
        &format!("`IngestReservedConcurrency` ({reserved} by default)"),
    );
    assert_says(
        OPERATING,
        &format!("--reserved-concurrent-executions {reserved}`"),
    );
}

/// README "Metrics and dashboard": one table, one row per metric the code
/// writes (`selfheal_metrics::PUBLISHED`), with its unit, dimension sets
/// (`;` between sets, `none` for the set without dimensions) and writers.
#[test]
fn readme_metrics_table_is_the_published_list() {
    let readme = doc(README);
    let (body, first) = section(&readme, README, "## Metrics and dashboard");
    let found = tables(&body, first);
    assert_eq!(found.len(), 1, "README.md: one metrics table");
    let table = &found[0];
    assert_eq!(
        table.header,
        ["Metric", "Unit", "Dimensions", "Written by", "Meaning"],
        "README.md line {}",
        table.line
    );
    let unquote = |cell: &str| cell.trim().trim_matches('`').to_owned();
    let rows: BTreeMap<String, (String, Vec<Vec<String>>, String)> = table
        .rows
        .iter()
        .map(|row| {
            let sets = row[2]
                .split(';')
                .map(|set| match set.trim() {
                    "none" => Vec::new(),
                    set => set.split(',').map(unquote).collect(),
                })
                .collect();
            (unquote(&row[0]), (row[1].clone(), sets, row[3].clone()))
        })
        .collect();
    assert_eq!(rows.len(), table.rows.len(), "a metric listed twice");
    let published: BTreeMap<String, (String, Vec<Vec<String>>, String)> =
        selfheal_metrics::PUBLISHED
            .iter()
            .map(|p| {
                let sets = p
                    .dimension_sets
                    .iter()
                    .map(|set| set.iter().map(|d| (*d).to_owned()).collect())
                    .collect();
                let row = (
                    p.unit.as_str().to_owned(),
                    sets,
                    p.source.as_str().to_owned(),
                );
                (p.name.to_owned(), row)
            })
            .collect();
    assert_eq!(rows, published, "README.md line {}", table.line);
    assert_says(
        README,
        &format!("The namespace is `{}`", selfheal_metrics::NAMESPACE),
    );
}
