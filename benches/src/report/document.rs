//! One model of the report's text, rendered two ways: Markdown (`summary.md`) and HTML
//! (the tables of `report.html`). Cells hold typed text, not Markdown, so a `|`, `<` or `&`
//! in a problem string or a flag is escaped for each format instead of breaking it.

use std::fmt::Write;

use super::format::esc;

/// A run of text with its style.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inline {
    Plain(String),
    Bold(String),
    Code(String),
    /// Text and the address it links to (relative to the report's folder).
    Link(String, String),
}

/// Styled text: plain, **bold** and `code` runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(Vec<Inline>);

impl Text {
    pub fn plain(s: impl Into<String>) -> Self {
        Self(vec![Inline::Plain(s.into())])
    }

    pub fn bold(s: impl Into<String>) -> Self {
        Self(vec![Inline::Bold(s.into())])
    }

    pub fn code(s: impl Into<String>) -> Self {
        Self(vec![Inline::Code(s.into())])
    }

    /// `text` linking to `href` (a path relative to the report's folder).
    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Self {
        Self(vec![Inline::Link(text.into(), href.into())])
    }

    /// This text followed by `more`.
    pub fn then(mut self, more: impl Into<Text>) -> Self {
        self.0.extend(more.into().0);
        self
    }

    fn markdown(&self, in_table: bool) -> String {
        let mut o = String::new();
        for i in &self.0 {
            let (mark, s) = match i {
                Inline::Plain(s) => ("", s),
                Inline::Bold(s) => ("**", s),
                Inline::Code(s) => ("`", s),
                Inline::Link(text, href) => {
                    let _ = write!(
                        o,
                        "[{}]({})",
                        text.replace(['[', ']'], ""),
                        href.replace(' ', "%20")
                    );
                    continue;
                }
            };
            let s = if in_table {
                s.replace('|', "\\|")
            } else {
                s.clone()
            };
            let _ = write!(o, "{mark}{}{mark}", s.replace('\n', " "));
        }
        o
    }

    fn html(&self) -> String {
        let mut o = String::new();
        for i in &self.0 {
            match i {
                Inline::Plain(s) => o.push_str(&esc(s)),
                Inline::Bold(s) => {
                    let _ = write!(o, "<b>{}</b>", esc(s));
                }
                Inline::Code(s) => {
                    let _ = write!(o, "<code>{}</code>", esc(s));
                }
                Inline::Link(text, href) => {
                    let _ = write!(o, "<a href=\"{}\">{}</a>", esc(href), esc(text));
                }
            }
        }
        o
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self::plain(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self::plain(s)
    }
}

/// A table: a header row and body rows of cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub head: Vec<Text>,
    pub rows: Vec<Vec<Text>>,
}

impl Table {
    pub fn new<T: Into<Text>>(head: impl IntoIterator<Item = T>) -> Self {
        Self {
            head: head.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<T: Into<Text>>(&mut self, cells: impl IntoIterator<Item = T>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Heading(Text),
    Para(Text),
    List(Vec<Text>),
    Table(Table),
}

/// The report's text: a title and blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub blocks: Vec<Block>,
}

impl Document {
    pub fn heading(&mut self, t: impl Into<Text>) {
        self.blocks.push(Block::Heading(t.into()));
    }

    pub fn para(&mut self, t: impl Into<Text>) {
        self.blocks.push(Block::Para(t.into()));
    }

    pub fn list(&mut self, items: Vec<Text>) {
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }

    pub fn table(&mut self, t: Table) {
        self.blocks.push(Block::Table(t));
    }

    /// Markdown, headings at level 2 (the caller writes the title).
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        for b in &self.blocks {
            match b {
                Block::Heading(t) => {
                    let _ = writeln!(o, "## {}\n", t.markdown(false));
                }
                Block::Para(t) => {
                    let _ = writeln!(o, "{}\n", t.markdown(false));
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(o, "- {}", i.markdown(false));
                    }
                    o.push('\n');
                }
                Block::Table(t) => {
                    let row = |cells: &[Text]| {
                        let mut r = String::from("|");
                        for c in cells {
                            let _ = write!(r, " {} |", c.markdown(true));
                        }
                        r
                    };
                    let _ = writeln!(o, "{}", row(&t.head));
                    let _ = writeln!(o, "|{}", "---|".repeat(t.head.len()));
                    for r in &t.rows {
                        let _ = writeln!(o, "{}", row(r));
                    }
                    o.push('\n');
                }
            }
        }
        o
    }

    /// HTML, headings at level 3 (under the page's own sections).
    pub fn html(&self) -> String {
        let mut o = String::new();
        for b in &self.blocks {
            match b {
                Block::Heading(t) => {
                    let _ = write!(o, "<h3>{}</h3>", t.html());
                }
                Block::Para(t) => {
                    let _ = write!(o, "<p>{}</p>", t.html());
                }
                Block::List(items) => {
                    o.push_str("<ul>");
                    for i in items {
                        let _ = write!(o, "<li>{}</li>", i.html());
                    }
                    o.push_str("</ul>");
                }
                Block::Table(t) => {
                    o.push_str("<table><thead><tr>");
                    for c in &t.head {
                        let _ = write!(o, "<th>{}</th>", c.html());
                    }
                    o.push_str("</tr></thead><tbody>");
                    for r in &t.rows {
                        o.push_str("<tr>");
                        for c in r {
                            let _ = write!(o, "<td>{}</td>", c.html());
                        }
                        o.push_str("</tr>");
                    }
                    o.push_str("</tbody></table>");
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn awkward() -> Document {
        let mut d = Document::default();
        d.heading("Problems & <fixes>");
        let mut t = Table::new(["workload", "problem"]);
        t.row([
            Text::code("a|b"),
            Text::plain("answered 3 | landed <2> & ").then(Text::bold("FAILED")),
        ]);
        d.table(t);
        d.list(vec![Text::plain("x < y & z | w")]);
        d
    }

    #[test]
    fn awkward_text_keeps_the_markdown_table_whole() {
        let md = awkward().markdown();
        let row = md
            .lines()
            .find(|l| l.contains("a\\|b"))
            .expect("the row is there");
        // Two cells: exactly three unescaped pipes.
        let unescaped = row
            .match_indices('|')
            .filter(|(i, _)| *i == 0 || row.as_bytes()[i - 1] != b'\\');
        assert_eq!(unescaped.count(), 3, "{row}");
        assert!(row.contains("landed <2> & **FAILED**"), "{row}");
        assert!(md.contains("- x < y & z | w"), "{md}");
    }

    #[test]
    fn awkward_text_is_escaped_in_html() {
        let html = awkward().html();
        assert!(
            html.contains("<h3>Problems &amp; &lt;fixes&gt;</h3>"),
            "{html}"
        );
        assert!(html.contains("<td><code>a|b</code></td>"), "{html}");
        assert!(
            html.contains("<td>answered 3 | landed &lt;2&gt; &amp; <b>FAILED</b></td>"),
            "{html}"
        );
        assert_eq!(html.matches("<td>").count(), 2, "{html}");
        assert!(html.contains("<li>x &lt; y &amp; z | w</li>"));
    }
}
