//! How strong a passphrase must be before it may wrap the data key.
//!
//! Two rules, both needed: at least [`MIN_PASSPHRASE_CHARS`] characters, and an estimated
//! [`MIN_PASSPHRASE_SCORE`] or better from zxcvbn, which estimates guesses the way an attacker
//! makes them (common passwords, dictionary words, names, keyboard patterns, dates, repeats,
//! l33t substitutions), so `Password123!` and `qwertyuiop` are refused however long they are.
//! Score 3 means more than 10^8 guesses; each guess costs an scrypt of at least
//! [`super::MIN_SCRYPT_WORK_FACTOR`], and on a phone the passphrase is also bound to the
//! keystore key (see `docs/adr/0006-passphrase-and-keystore.md`).

use crate::error::{CoreError, Result};

/// Fewest characters (Unicode scalar values) a passphrase may have.
pub const MIN_PASSPHRASE_CHARS: usize = 10;
/// Lowest zxcvbn score (0 to 4) a passphrase may have.
pub const MIN_PASSPHRASE_SCORE: u8 = 3;

/// Refuses a passphrase that is too short or too easy to guess with
/// [`CoreError::WeakPassphrase`], whose detail says why (never repeating the passphrase).
/// `context` holds words an attacker would try first for this person (her user name, the
/// app's name); a passphrase built on them scores lower.
pub fn check_passphrase_strength(passphrase: &str, context: &[&str]) -> Result<()> {
    let chars = passphrase.chars().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(CoreError::WeakPassphrase {
            detail: format!(
                "a passphrase needs at least {MIN_PASSPHRASE_CHARS} characters ({chars} given)"
            ),
        });
    }
    let mut words = vec!["fieldcase"];
    words.extend_from_slice(context);
    let estimate = zxcvbn::zxcvbn(passphrase, &words);
    let score = estimate.score() as u8;
    if score < MIN_PASSPHRASE_SCORE {
        let why = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        let hint = estimate
            .feedback()
            .and_then(|f| f.suggestions().first())
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        return Err(CoreError::WeakPassphrase {
            detail: format!(
                "the passphrase is too easy to guess (strength {score} of 4, at least \
                 {MIN_PASSPHRASE_SCORE} needed){why}.{hint}"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak(p: &str) -> bool {
        matches!(
            check_passphrase_strength(p, &["ana"]),
            Err(CoreError::WeakPassphrase { .. })
        )
    }

    #[test]
    fn short_common_and_patterned_passphrases_are_refused() {
        for p in [
            "",
            "123456",
            "password",
            "Password123!",
            "qwertyuiop",
            "1111111111111",
            "fieldcase2026",
            "ana19900101",
            "abcdefghijk",
        ] {
            assert!(weak(p), "{p:?} was accepted");
        }
    }

    #[test]
    fn long_unusual_passphrases_are_accepted() {
        for p in [
            "plum kettle orbit sparrow",
            "Vrabac-na-žici-pjeva-7",
            "tram 9 stops at the old mill",
        ] {
            assert!(!weak(p), "{p:?} was refused");
        }
    }

    #[test]
    fn the_refusal_never_repeats_the_passphrase() {
        let said = check_passphrase_strength("password12", &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(said.contains("too easy"), "{said}");
        assert!(!said.contains("password12"), "{said}");
    }
}
