//! The ATerm subset that Nix writes `.drv` files in: strings, lists
//! `[…]`, tuples `(…)` and constructor applications `Name(…)`. Written by
//! hand: the format is Nix's own and tiny, and no crate reads it.

use std::fmt;

use crate::bounds::ATERM_DEPTH;

/// One term of a `.drv` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    Str(String),
    List(Vec<Term>),
    Tuple(Vec<Term>),
    /// `Derive(…)`, `DrvWithVersion(…)`.
    App(String, Vec<Term>),
}

impl Term {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Term::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a list.
    pub fn as_list(&self) -> Option<&[Term]> {
        match self {
            Term::List(items) => Some(items),
            _ => None,
        }
    }

    /// The fields of a tuple.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(fields) => Some(fields),
            _ => None,
        }
    }
}

/// Where the text stopped making sense, and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset into the text.
    pub offset: usize,
    pub expected: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.offset)
    }
}

/// Parse a whole text as one term (trailing white space allowed, as a
/// hand-edited file may end with a newline).
pub fn parse(text: &str) -> Result<Term, SyntaxError> {
    let mut reader = Reader {
        text,
        at: 0,
        depth: 0,
    };
    let term = reader.term()?;
    let rest = &text[reader.at..];
    reader.at += rest.len() - rest.trim_start().len();
    if reader.at < text.len() {
        return Err(reader.expected("the end of the text"));
    }
    Ok(term)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
    /// Lists and tuples open around `at`: bounded, as each is a level of
    /// recursion and a hostile file must not overflow the stack.
    depth: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn expected(&self, what: &str) -> SyntaxError {
        SyntaxError {
            offset: self.at,
            expected: what.to_string(),
        }
    }

    fn term(&mut self) -> Result<Term, SyntaxError> {
        match self.peek() {
            Some(b'"') => self.string().map(Term::Str),
            Some(b'[') => self.items(b']').map(Term::List),
            Some(b'(') => self.items(b')').map(Term::Tuple),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.at += 1;
                }
                let name = self.text[start..self.at].to_string();
                if self.peek() != Some(b'(') {
                    return Err(self.expected(&format!("'(' after '{name}'")));
                }
                Ok(Term::App(name, self.items(b')')?))
            }
            _ => Err(self.expected("a string, '[', '(' or a constructor")),
        }
    }

    /// `open item,item,… close`, with `self.at` on the opening bracket.
    fn items(&mut self, close: u8) -> Result<Vec<Term>, SyntaxError> {
        if self.depth >= ATERM_DEPTH.limit {
            return Err(self.expected(&format!("no more nesting ({})", ATERM_DEPTH.exceeded())));
        }
        self.depth += 1;
        let items = self.items_inside(close);
        self.depth -= 1;
        items
    }

    fn items_inside(&mut self, close: u8) -> Result<Vec<Term>, SyntaxError> {
        self.at += 1;
        let mut items = Vec::new();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(self.term()?);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => {
                    self.at += 1;
                    return Ok(items);
                }
                _ => return Err(self.expected(&format!("',' or '{}'", close as char))),
            }
        }
    }

    /// A quoted string with Nix's escapes: `\n`, `\r`, `\t`, and `\` before
    /// any other character standing for that character.
    fn string(&mut self) -> Result<String, SyntaxError> {
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.text[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, other)) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        self.at = self.text.len();
        Err(self.expected("the closing '\"' of a string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Term {
        Term::Str(text.to_string())
    }

    #[test]
    fn reads_nested_terms() {
        let term = parse(r#"Derive([("out","/p")],[],"sys")"#).unwrap();
        assert_eq!(
            term,
            Term::App(
                "Derive".into(),
                vec![
                    Term::List(vec![Term::Tuple(vec![s("out"), s("/p")])]),
                    Term::List(vec![]),
                    s("sys"),
                ]
            )
        );
    }

    #[test]
    fn unescapes_strings_as_nix_does() {
        // What Nix writes for the value: a "q" \ b<newline><tab>c<CR>d
        let term = parse(r#"["a \"q\" \\ b\n\tc\rd","\$"]"#).unwrap();
        assert_eq!(term, Term::List(vec![s("a \"q\" \\ b\n\tc\rd"), s("$")]));
    }

    #[test]
    fn keeps_multibyte_text() {
        assert_eq!(parse(r#""é→\"x""#).unwrap(), s("é→\"x"));
    }

    #[test]
    fn says_where_it_stopped() {
        let error = parse(r#"Derive([("out","/p"],[])"#).unwrap_err();
        assert_eq!(error.offset, 19);
        assert_eq!(error.expected, "',' or ')'");
        assert_eq!(error.to_string(), "expected ',' or ')' at byte 19");
        assert_eq!(
            parse(r#"["open"#).unwrap_err().expected,
            "the closing '\"' of a string"
        );
        assert_eq!(parse("Derive").unwrap_err().expected, "'(' after 'Derive'");
        assert_eq!(parse("[] x").unwrap_err().offset, 3);
        assert!(parse("").is_err());
        assert!(parse("[] \n").is_ok(), "a trailing newline is fine");
    }

    #[test]
    fn deep_nesting_stops_at_the_bound_instead_of_overflowing_the_stack() {
        // 20,000 brackets overflowed the stack (exit 134, terminal left raw).
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        let error = parse(&deep).unwrap_err();
        assert_eq!(error.offset, ATERM_DEPTH.limit);
        assert!(error.expected.contains("bound of 256 levels"), "{error}");
        let ok = ATERM_DEPTH.limit;
        let at_bound = format!("{}{}", "(".repeat(ok), ")".repeat(ok));
        assert!(parse(&at_bound).is_ok());
    }
}
