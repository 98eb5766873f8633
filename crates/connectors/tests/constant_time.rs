//! A lint, as a test: signature values are compared in constant time only (`Mac::verify_slice`,
//! `subtle::ConstantTimeEq`), never with `==` or `!=`, whose early exit tells an attacker how
//! many leading bytes of a forged signature were right. It reads the sources that verify
//! signatures (the connectors and the simulated vendors) and refuses any line that compares
//! something named like a signature, MAC or digest with `==`, `!=` or `.eq(`.

use std::path::{Path, PathBuf};

const SIGNATURE_WORDS: &[&str] = &["signature", "hmac", "digest", "mac", "sig"];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The identifiers of a line of code, string literals and comments left out.
fn identifiers(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    let mut out = Vec::new();
    let (mut word, mut in_string) = (String::new(), false);
    for c in code.chars() {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c.to_ascii_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    out.extend((!word.is_empty()).then_some(word));
    out
}

fn names_a_signature(identifier: &str) -> bool {
    identifier.split('_').any(|part| SIGNATURE_WORDS.contains(&part))
}

/// Whether a line compares two values with `==`, `!=` or `.eq(`. A comparison with a string
/// literal or a SCREAMING_CASE constant compares a header or parameter *name*
/// (`k == "oauth_signature"`, `name == HANDOFF_SIGNATURE`), never a signature's value.
fn compares(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    let names_a_name = |operand: &str| {
        let operand = operand.trim();
        let word: String = operand.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        operand.starts_with('"') || (word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    };
    let last_operand = |before: &str| -> String {
        let before = before.trim_end();
        if before.ends_with('"') {
            return "\"".into();
        }
        let word: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        word
    };
    ["==", "!=", ".eq("].iter().any(|op| {
        code.match_indices(op).any(|(at, _)| {
            let (before, after) = (&code[..at], &code[at + op.len()..]);
            !names_a_name(after) && (*op == ".eq(" || !names_a_name(&last_operand(before)))
        })
    })
}

#[test]
fn no_signature_is_compared_with_eq() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    sources(&crates.join("connectors/src"), &mut files);
    sources(&crates.join("sim/src"), &mut files);
    assert!(files.len() > 20, "the sources were not found: {}", crates.display());
    let mut offences = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if compares(line) && identifiers(line).iter().any(|i| names_a_signature(i)) {
                offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offences.is_empty(), "signatures compared with == (use verify_slice or ct_eq):\n{}", offences.join("\n"));
}

#[test]
fn the_lint_sees_a_comparison() {
    assert!(
        compares("if signature == expected {")
            && identifiers("if signature == expected {").contains(&"signature".into())
    );
    assert!(names_a_signature("want_signature") && names_a_signature("hmac") && !names_a_signature("machine"));
    assert!(!identifiers("let x = \"signature\"; // signature").contains(&"signature".into()));
    assert!(compares("(Some(sig), Some(want)) if sig.as_bytes() != want.as_bytes() => Ok(())"));
    assert!(!compares("find(|(k, _)| k == \"oauth_signature\")") && !compares("(name == HANDOFF_SIGNATURE)"));
}
