//! `handoff contract docs`: the contract as a document the ops, ERP and storefront teams can all
//! read. The contract becomes a [`Document`] of sections; callers may add their own sections
//! (mapping tables) before it is rendered as Markdown or as one self-contained HTML file.

use askama::Template;
use handoff_model::{EventKind, Pattern};

use crate::{Contract, Flow, Stage, words};

/// The written contract, independent of its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub title: String,
    pub intro: String,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The HTML anchor, also used by the table of contents.
    pub id: String,
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Paragraph(String),
    /// A sub-heading inside a section, e.g. one flow.
    Heading(String),
    /// Label and value pairs, e.g. a flow's proof of receipt and deadline.
    Facts(Vec<(String, String)>),
    Table(Table),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

/// The contract's own sections: systems, flows, ownership by stage, the detection deadlines.
pub fn document(contract: &Contract, title: &str) -> Document {
    let intro = format!(
        "The written contract between {} systems and the {} flows between them: for each flow, what counts \
         as proof of receipt, how long the target has to acknowledge, how it is retried and when it is \
         dead-lettered; and which system owns the order record at each stage. Generated from the contract \
         by `handoff contract docs`; `handoff contract check` checks it.",
        contract.systems.len(),
        contract.flows.len()
    );
    Document {
        title: title.to_owned(),
        intro,
        sections: vec![systems(contract), flows(contract), ownership(contract), deadlines(contract)],
    }
}

/// Renders the document in the format asked for.
pub fn render(document: &Document, format: Format) -> Result<String, askama::Error> {
    match format {
        Format::Markdown => Ok(markdown(document)),
        Format::Html => html(document),
    }
}

fn strings<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

fn systems(contract: &Contract) -> Section {
    let rows = contract
        .systems
        .iter()
        .map(|(name, s)| {
            vec![
                name.clone(),
                s.role.as_str().to_owned(),
                s.connector.as_str().to_owned(),
                s.base_url.clone().unwrap_or_else(|| "none: receives no commands".to_owned()),
                format!("{}; timeout {}", words::idempotency(s), words::duration(s.timeout)),
                format!(
                    "an unanswered request may land up to {} later; read back only after that",
                    words::duration(s.settle)
                ),
                words::intake(s),
            ]
        })
        .collect();
    Section {
        id: "systems".into(),
        title: "Systems".into(),
        blocks: vec![Block::Table(Table {
            header: strings([
                "System",
                "Role",
                "Connector",
                "Endpoint",
                "Idempotency",
                "Settle time",
                "Changes heard by",
            ]),
            rows,
        })],
    }
}

fn event_list(flow: &Flow) -> String {
    flow.events.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

fn flows(contract: &Contract) -> Section {
    let mut blocks = vec![Block::Table(Table {
        header: strings(["Flow", "From → to", "Events", "Proof", "Deadline", "Attempts", "Dead letter"]),
        rows: contract
            .flows
            .iter()
            .map(|(name, f)| {
                vec![
                    name.clone(),
                    format!("{} → {}", f.from, f.to),
                    event_list(f),
                    f.proof.as_str().to_owned(),
                    words::duration(f.deadline),
                    format!("{} within {}", f.retry.attempts, words::duration(f.retry.deadline)),
                    f.dead_letter.as_str().to_owned(),
                ]
            })
            .collect(),
    })];
    for (name, f) in &contract.flows {
        blocks.push(Block::Heading(format!("{name}: {} → {}", f.from, f.to)));
        blocks.push(Block::Facts(vec![
            ("Events".into(), event_list(f)),
            ("Proof of receipt".into(), words::proof(f)),
            ("Deadline".into(), format!("{} acknowledges within {}", f.to, words::duration(f.deadline))),
            ("Retry budget".into(), words::retry(&f.retry)),
            ("Waits".into(), contract.systems.get(&f.to).map_or_else(String::new, |s| words::waits(&f.to, s))),
            ("Dead letter".into(), words::dead_letter(f.dead_letter).to_owned()),
        ]));
    }
    Section { id: "flows".into(), title: "Flows".into(), blocks }
}

fn ownership(contract: &Contract) -> Section {
    let rows = Stage::ALL
        .iter()
        .map(|stage| {
            let owner = match contract.ownership.get(stage) {
                Some(owner) => owner.to_string(),
                None => "not declared".to_owned(),
            };
            vec![stage.as_str().to_owned(), owner]
        })
        .collect();
    Section {
        id: "ownership".into(),
        title: "Ownership by stage".into(),
        blocks: vec![
            Block::Paragraph(
                "The owner's record is the one that counts at that stage: its events travel to the other \
                 systems, which follow it. \"Each order's channel\" means every order is owned by the channel \
                 that took it."
                    .into(),
            ),
            Block::Table(Table { header: strings(["Stage", "Owner"]), rows }),
        ],
    }
}

/// The failure patterns each flow is watched for, with when each fires (T = the flow's deadline).
fn deadlines(contract: &Contract) -> Section {
    let payments: Vec<&str> =
        contract.systems.iter().filter(|(_, s)| s.role == crate::Role::Payment).map(|(n, _)| n.as_str()).collect();
    let mut rows = Vec::new();
    for (name, f) in &contract.flows {
        let t = words::duration(f.deadline);
        let mut row = |pattern: Pattern, rule: String| rows.push(vec![name.clone(), pattern.name().into(), rule]);
        if f.events.contains(&EventKind::OrderCreated) {
            row(Pattern::MissingOrder, format!("an order created in {} has no {} order after {t}", f.from, f.to));
            if !payments.is_empty() {
                row(
                    Pattern::OrphanedPayment,
                    format!("a payment captured in {} has no {} order after {t}", payments.join(", "), f.to),
                );
            }
            row(
                Pattern::DuplicateDraft,
                format!("{} holds more than one record for one {} order: at once", f.to, f.from),
            );
        }
        if f.events.contains(&EventKind::FulfillmentCreated) {
            row(Pattern::StatusVoid, format!("fulfilled in {}, not in {} after {t}", f.from, f.to));
        }
        let rollback: Vec<&str> = f
            .events
            .iter()
            .filter_map(|k| match k {
                EventKind::OrderCancelled => Some("cancelled"),
                EventKind::RefundCreated => Some("refunded"),
                _ => None,
            })
            .collect();
        if !rollback.is_empty() {
            row(
                Pattern::RollbackGap,
                format!(
                    "{} in {}, still open, allocated or fulfilled in {} after {t}",
                    rollback.join(" or "),
                    f.from,
                    f.to
                ),
            );
        }
        row(
            Pattern::TransformMismatch,
            format!("held at mapping, or {}'s record differs from {}'s beyond tolerance: at once", f.to, f.from),
        );
        row(
            Pattern::DeadDelivery,
            format!(
                "a command dead-lettered: after {} attempts or {}, a permanent error {}",
                f.retry.attempts,
                words::duration(f.retry.deadline),
                match f.dead_letter {
                    crate::DeadLetterRule::PermanentAtOnce => "at once",
                    crate::DeadLetterRule::AfterBudget => "only after the budget too",
                }
            ),
        );
    }
    Section {
        id: "deadlines".into(),
        title: "Failure patterns and their deadlines".into(),
        blocks: vec![
            Block::Paragraph(
                "What each flow is watched for, and when a divergence becomes an exception. The time is the \
                 flow's deadline."
                    .into(),
            ),
            Block::Table(Table { header: strings(["Flow", "Pattern", "Fires when"]), rows }),
        ],
    }
}

/// A table cell or inline text that Markdown must not read as markup.
fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '*' | '_' | '<' | '>' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

pub fn markdown(document: &Document) -> String {
    let mut out = format!("# {}\n\n{}\n\n", md_escape(&document.title), md_escape(&document.intro));
    for section in &document.sections {
        out.push_str(&format!("- [{}](#{})\n", md_escape(&section.title), section.id));
    }
    for section in &document.sections {
        out.push_str(&format!("\n## {}\n", md_escape(&section.title)));
        for block in &section.blocks {
            out.push('\n');
            match block {
                Block::Paragraph(text) => out.push_str(&format!("{}\n", md_escape(text))),
                Block::Heading(text) => out.push_str(&format!("### {}\n", md_escape(text))),
                Block::Facts(facts) => {
                    for (label, value) in facts {
                        out.push_str(&format!("- **{}**: {}\n", md_escape(label), md_escape(value)));
                    }
                }
                Block::Table(table) => {
                    let row = |cells: &[String]| {
                        format!("| {} |\n", cells.iter().map(|c| md_escape(c)).collect::<Vec<_>>().join(" | "))
                    };
                    out.push_str(&row(&table.header));
                    out.push_str(&format!("|{}\n", "---|".repeat(table.header.len())));
                    for cells in &table.rows {
                        out.push_str(&row(cells));
                    }
                }
            }
        }
    }
    out
}

#[derive(Template)]
#[template(path = "contract.html")]
struct HtmlDocument<'a> {
    document: &'a Document,
}

/// One self-contained HTML file (inline CSS, no external assets); every value is escaped.
pub fn html(document: &Document) -> Result<String, askama::Error> {
    HtmlDocument { document }.render()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn example(name: &str) -> Contract {
        let text = std::fs::read_to_string(format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        Contract::parse(&text, Path::new(name)).unwrap()
    }

    fn both() -> Vec<(Contract, Document)> {
        ["handoff.toml", "vendors.toml"]
            .into_iter()
            .map(|name| {
                let c = example(name);
                let d = document(&c, name);
                (c, d)
            })
            .collect()
    }

    #[test]
    fn both_examples_render_every_system_flow_and_deadline() {
        for (contract, doc) in both() {
            for text in [markdown(&doc), html(&doc).unwrap()] {
                for name in contract.systems.keys().chain(contract.flows.keys()) {
                    assert!(text.contains(name.as_str()), "{name} missing");
                }
                for flow in contract.flows.values() {
                    assert!(text.contains(&format!("acknowledges within {}", words::duration(flow.deadline))));
                    assert!(
                        text.contains(&format!("no retry is scheduled after {}", words::duration(flow.retry.deadline)))
                    );
                }
                for stage in Stage::ALL {
                    assert!(text.contains(stage.as_str()));
                }
                assert!(text.contains("Missing Order") && text.contains("Dead Delivery"));
            }
        }
    }

    #[test]
    fn the_worst_case_schedule_is_spelled_out() {
        let doc = document(&example("handoff.toml"), "handoff.toml");
        let md = markdown(&doc);
        assert!(
            md.contains("12 attempts, 500ms doubling to 5m (full jitter: each wait at most that); at the longest waits the last attempt is sent 13m 31s after the first; no retry is scheduled after 24h"),
            "{md}"
        );
        assert!(md.contains("| created | shop |"), "{md}");
        // The waits the one schedule adds: each target's own settle time, Retry-After, limits.
        assert!(md.contains("erp is read back before any resend, no sooner than its settle time, 1m"), "{md}");
        assert!(md.contains("a 429 or a Retry-After waits as long as erp asks (its backoff when it does not say) and spends no attempt"), "{md}");
        assert!(md.contains("at most 64 requests in flight and 1000 a second to erp"), "{md}");
        assert!(
            md.contains("| fulfillments-to-shop | Status Void | fulfilled in erp, not in shop after 30m |"),
            "{md}"
        );
    }

    #[test]
    fn html_is_one_self_contained_page_with_escaped_values() {
        let mut doc = document(&example("vendors.toml"), "vendors <&> \"contract\"");
        doc.sections.push(Section {
            id: "mappings".into(),
            title: "Mappings".into(),
            blocks: vec![Block::Paragraph("<script>alert(1)</script>".into())],
        });
        let html = html(&doc).unwrap();
        assert_eq!(html.matches("<html").count(), 1);
        assert_eq!(html.matches("</html>").count(), 1);
        assert_eq!(html.matches("<body").count(), 1);
        assert!(html.contains("<style>"));
        assert!(!html.contains("<script>") && html.contains("&#60;script&#62;"), "{html}");
        assert!(html.contains("<h1>vendors &#60;&#38;&#62; &#34;contract&#34;</h1>"), "{html}");
        assert!(!html.contains("http-equiv") && !html.contains("<link") && !html.contains("src="));
        assert!(html.contains("each order&#39;s channel (shop, amazon)"), "{html}");
        assert!(html.contains("id=\"mappings\""));
        assert_eq!(html.matches("<table").count(), html.matches("</table>").count());
    }

    #[test]
    fn markdown_escapes_table_cells() {
        let doc = Document {
            title: "t".into(),
            intro: "i".into(),
            sections: vec![Section {
                id: "s".into(),
                title: "S".into(),
                blocks: vec![Block::Table(Table { header: strings(["a"]), rows: vec![vec!["x | y".into()]] })],
            }],
        };
        assert!(markdown(&doc).contains("| x \\| y |"));
    }
}
