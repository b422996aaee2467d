//! A scanner for Rego source text: the identifiers outside comments and strings, with where they
//! stand. Enough to find rule heads and references without a parser (`policy test` finds test
//! rules with it; load-time preparation checks that a module does not read `input`).

/// An identifier in Rego source, outside comments, strings and raw strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<'a> {
    pub text: &'a str,
    /// Byte offset just after the identifier.
    pub end: usize,
    /// 1-based line it is on.
    pub line: usize,
    /// It begins its line, possibly after `default`: where rule heads stand.
    pub line_start: bool,
    /// It follows a `.`: part of a reference such as `data.x.y`, not a name of its own.
    pub after_dot: bool,
}

/// The identifiers of `text`, in order.
pub fn words(text: &str) -> Words<'_> {
    Words {
        text,
        i: 0,
        line: 1,
        line_start: true,
        after_dot: false,
    }
}

pub struct Words<'a> {
    text: &'a str,
    i: usize,
    line: usize,
    line_start: bool,
    after_dot: bool,
}

impl<'a> Iterator for Words<'a> {
    type Item = Word<'a>;

    fn next(&mut self) -> Option<Word<'a>> {
        let bytes = self.text.as_bytes();
        while self.i < bytes.len() {
            match bytes[self.i] {
                b'\n' => {
                    self.line += 1;
                    self.line_start = true;
                    self.after_dot = false;
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'#' => {
                    while self.i < bytes.len() && bytes[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                b'"' => {
                    self.i += 1;
                    while self.i < bytes.len() && bytes[self.i] != b'"' && bytes[self.i] != b'\n' {
                        self.i += if bytes[self.i] == b'\\' { 2 } else { 1 };
                    }
                    self.i += 1;
                    self.line_start = false;
                    self.after_dot = false;
                }
                b'`' => {
                    self.i += 1;
                    while self.i < bytes.len() && bytes[self.i] != b'`' {
                        self.line += usize::from(bytes[self.i] == b'\n');
                        self.i += 1;
                    }
                    self.i += 1;
                    self.line_start = false;
                    self.after_dot = false;
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    let start = self.i;
                    while self.i < bytes.len()
                        && (bytes[self.i].is_ascii_alphanumeric() || bytes[self.i] == b'_')
                    {
                        self.i += 1;
                    }
                    // Only ASCII bytes were consumed, so these are character boundaries.
                    let word = Word {
                        text: &self.text[start..self.i],
                        end: self.i,
                        line: self.line,
                        line_start: self.line_start,
                        after_dot: self.after_dot,
                    };
                    self.line_start = self.line_start && word.text == "default";
                    self.after_dot = false;
                    return Some(word);
                }
                b'.' => {
                    self.after_dot = true;
                    self.line_start = false;
                    self.i += 1;
                }
                _ => {
                    self.line_start = false;
                    self.after_dot = false;
                    self.i += 1;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_comments_and_strings_and_know_where_they_stand() {
        let text = "default allow := false # allow\nx := data.y.z\ns := \"q r\"\nt := `a\nb` + w\n";
        let found: Vec<(&str, usize, bool, bool)> = words(text)
            .map(|w| (w.text, w.line, w.line_start, w.after_dot))
            .collect();
        assert_eq!(
            found,
            [
                ("default", 1, true, false),
                ("allow", 1, true, false),
                ("false", 1, false, false),
                ("x", 2, true, false),
                ("data", 2, false, false),
                ("y", 2, false, true),
                ("z", 2, false, true),
                ("s", 3, true, false),
                ("t", 4, true, false),
                ("w", 5, false, false),
            ]
        );
    }
}
