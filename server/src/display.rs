//! How text that a phone wrote is shown at the office. It is data, never markup or terminal
//! control: a note holding `ESC ]0;TITLE BEL ESC [2J` must not retitle or clear the terminal of
//! an admin who prints it, and a right-to-left override must not reorder what a case manager
//! reads. Core refuses such characters at input; these functions cover whatever a hostile
//! device wrote around that check (raw automerge changes, quarantined uploads) and older data.

/// Bidirectional formatting characters: overrides, embeddings, isolates and marks, which change
/// the order in which the characters around them are displayed.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` is shown as an escape rather than as itself: control characters (but a line
/// break and a tab where `lines` allows them) and bidirectional formatting characters.
fn escaped(c: char, lines: bool) -> bool {
    (c.is_control() && !(lines && (c == '\n' || c == '\t'))) || is_bidi_control(c)
}

/// `text` with every control character (but line breaks and tabs) and every bidirectional
/// formatting character written as a visible escape, `\u{1b}`: for a terminal.
pub fn for_terminal(text: &str) -> String {
    visible(text, true)
}

/// [`for_terminal`] for a one-line field: line breaks and tabs are escaped too.
pub fn for_terminal_line(text: &str) -> String {
    visible(text, false)
}

fn visible(text: &str, lines: bool) -> String {
    replace_escaped(text, lines, |c| format!("\\u{{{:x}}}", u32::from(c)))
}

/// `text` for a web page: HTML escaping is the page's, so only the characters that would act
/// rather than show (control and bidirectional formatting characters) are made visible, as
/// `[U+202E]`; line breaks and tabs are kept.
pub fn for_page(text: &str) -> String {
    replace_escaped(text, true, |c| format!("[U+{:04X}]", u32::from(c)))
}

/// `text` with every character that [`escaped`] names written as `shown` writes it.
fn replace_escaped(text: &str, lines: bool, shown: impl Fn(char) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if escaped(c, lines) {
            out.push_str(&shown(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_is_printed_as_text() {
        let hostile = "court \u{1b}]0;TITLE\u{7}\u{1b}[2J at 10";
        let shown = for_terminal(hostile);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(shown, "court \\u{1b}]0;TITLE\\u{7}\\u{1b}[2J at 10");
        assert_eq!(for_terminal("a\nb\tc\rd"), "a\nb\tc\\u{d}d");
        assert_eq!(for_terminal_line("a\nb"), "a\\u{a}b");
        assert_eq!(for_terminal("Čačak 日本"), "Čačak 日本");
    }

    #[test]
    fn bidirectional_overrides_are_shown_not_obeyed() {
        let spoofed = "K-0142 \u{202E}fdp.exe";
        assert_eq!(for_page(spoofed), "K-0142 [U+202E]fdp.exe");
        assert_eq!(for_terminal(spoofed), "K-0142 \\u{202e}fdp.exe");
        assert_eq!(for_page("line\nnext\u{0}"), "line\nnext[U+0000]");
    }
}
