//! What makes exceptions one cluster: the error's fingerprint (its detail with numbers and
//! quoted values blanked) and the cluster's short id. One definition, used by the engine's
//! clusters and by the store, which groups exceptions by it in SQL.

/// An error detail with its digits and quoted values blanked: what repeats across orders.
pub fn fingerprint(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len());
    let mut chars = detail.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '0'..='9' => {
                while chars.peek().is_some_and(|c| c.is_ascii_digit() || *c == '.') {
                    chars.next();
                }
                out.push('#');
            }
            '"' | '\'' | '`' => {
                let mut quoted = String::new();
                let mut closed = false;
                for q in chars.by_ref() {
                    if q == c {
                        closed = true;
                        break;
                    }
                    quoted.push(q);
                }
                out.push(c);
                if closed {
                    out.push('…');
                    out.push(c);
                } else {
                    out.push_str(&fingerprint(&quoted));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A short stable name for a cluster (`c` and 8 hex digits, FNV-1a of its key's parts in
/// order: pattern, flow, field, channel, mapping, fingerprint), for `exceptions act --cluster`.
pub fn cluster_id<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.unwrap_or("\u{0}").bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("c{:08x}", (h >> 32) as u32 ^ h as u32)
}
