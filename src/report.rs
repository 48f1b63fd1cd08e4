//! Errors as people read them: each layer's message says what failed there and no more, and
//! [`Report`] prints the whole chain once, `outer: cause: root cause`. A cause whose text the
//! message before it already ends with (some libraries repeat their source) is said once.

use std::fmt;

/// Displays an error with its causes; use it wherever an error reaches a person: the command
/// line, an API answer, a log field.
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !text.is_empty() && !said.ends_with(&text) {
                said.push_str(": ");
                said.push_str(&text);
            }
            cause = error.source();
        }
        f.write_str(&said)
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Repeats(String, #[source] Leaf);

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Leaf(&'static str);

    #[derive(Debug, thiserror::Error)]
    #[error("ALIPAY_APP_PRIVATE_KEY_FILE: cannot read /k.pem")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        assert_eq!(
            Report(&Outer(io)).to_string(),
            "ALIPAY_APP_PRIVATE_KEY_FILE: cannot read /k.pem: No such file or directory"
        );
        let repeated = Repeats(
            "database \"x\" does not exist".into(),
            Leaf("database \"x\" does not exist"),
        );
        assert_eq!(
            Report(&repeated).to_string(),
            "database \"x\" does not exist"
        );
        let distinct = Repeats("cannot connect".into(), Leaf("Connection refused"));
        assert_eq!(
            Report(&distinct).to_string(),
            "cannot connect: Connection refused"
        );
    }
}
