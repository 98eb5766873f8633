//! Strings one after the other in one buffer: no allocation per string.

/// The index of no string.
pub const NO: u32 = u32::MAX;

#[derive(Default)]
pub struct Arena {
    bytes: String,
    ends: Vec<u64>,
}

impl Arena {
    /// Appends `s`; the empty string is [`NO`], and takes no room.
    pub fn push(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return NO;
        }
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len() as u64);
        (self.ends.len() - 1) as u32
    }

    pub fn get(&self, i: u32) -> &str {
        if i == NO {
            return "";
        }
        let end = self.ends[i as usize] as usize;
        let start = if i == 0 { 0 } else { self.ends[i as usize - 1] as usize };
        &self.bytes[start..end]
    }

    pub fn opt(&self, i: u32) -> Option<&str> {
        (i != NO).then(|| self.get(i))
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }
}
