//! `*` (any run, also empty) and `?` (one character) wildcards.

#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    chars: Vec<char>,
    /// The pattern's UTF-8 bytes, for matching ASCII input.
    bytes: Vec<u8>,
    /// No wildcard: compare directly.
    literal: bool,
    /// The pattern in ASCII lower case, when that differs: for names compared case-insensitively.
    folded: Option<Box<Pattern>>,
}

impl Pattern {
    pub(crate) fn new(p: &str) -> Self {
        let lower = p.to_ascii_lowercase();
        let folded = (lower != p).then(|| Box::new(Pattern::new(&lower)));
        Pattern { chars: p.chars().collect(), bytes: p.as_bytes().to_vec(), literal: !p.contains(['*', '?']), folded }
    }

    /// Matches ignoring ASCII case (RAM names are case-insensitive).
    pub(crate) fn matches_ignore_ascii_case(&self, s: &str) -> bool {
        let s = s.to_ascii_lowercase();
        self.folded.as_deref().unwrap_or(self).matches(&s)
    }

    /// Iterative matching with one backtrack point (the last `*`): O(len(p) × len(s)) at worst,
    /// linear for ordinary patterns; no recursion, so no pattern can blow the stack. ASCII input
    /// (nearly every ARN and action) is matched on bytes without allocating.
    pub(crate) fn matches(&self, s: &str) -> bool {
        if self.literal {
            return s.chars().eq(self.chars.iter().copied());
        }
        if s.is_ascii() {
            // A non-ASCII pattern character can never equal an ASCII byte, and `?` then consumes
            // exactly one character: the byte algorithm is exact here.
            return wildcard(&self.bytes, s.as_bytes(), b'*', b'?');
        }
        let s: Vec<char> = s.chars().collect();
        wildcard(&self.chars, &s, '*', '?')
    }
}

fn wildcard<T: PartialEq + Copy>(p: &[T], s: &[T], star_sym: T, one: T) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == one || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == star_sym {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == star_sym)
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn wildcards() {
        let m = |p: &str, s: &str| Pattern::new(p).matches(s);
        assert!(m("ecs:describe*", "ecs:describeinstances"));
        assert!(m("*", ""));
        assert!(m("ecs:*instance?", "ecs:startinstances"));
        assert!(!m("ecs:*instance?", "ecs:startinstance"));
        assert!(m("acs:ecs:*:*:instance/*", "acs:ecs:local-1:123:instance/i-1"));
        assert!(!m("acs:ecs:*:*:instance/*", "acs:ecs:local-1:123:disk/d-1"));
        assert!(m("a*b*c", "axxbyyc") && !m("a*b*c", "axxbyy"));
        assert!(m("exact", "exact") && !m("exact", "exactly"));
        assert!(m("caf?", "café") && m("é*", "étoile") && !m("?", "éé"), "non-ASCII input matches by character");
        assert!(Pattern::new("acs:ram:*:*:user/Admin").matches_ignore_ascii_case("acs:ram::1:user/admin"));
        assert!(Pattern::new("acs:ram:*:*:user/admin").matches_ignore_ascii_case("acs:ram::1:user/ADMIN"));
        assert!(!Pattern::new("acs:ram:*:*:user/admin").matches("acs:ram::1:user/Admin"));
        // Pathological pattern stays fast.
        let p = "*a".repeat(30) + "b";
        assert!(!Pattern::new(&p).matches(&"a".repeat(2000)));
    }
}
