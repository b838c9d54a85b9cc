//! Input rules shared by the domains: pure functions that return `VALIDATION` errors naming
//! the field in the API's spelling.

use crate::error::{AppError, AppResult};
use regex::Regex;
use std::sync::LazyLock;

/// A change to an optional field: keep it, clear it, or set it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    /// Applies the patch to the current value.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        }
    }

    pub fn try_map<U>(self, f: impl FnOnce(T) -> AppResult<U>) -> AppResult<Patch<U>> {
        Ok(match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(f(v)?),
        })
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
        .expect("static regex")
});
static E164: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\+[1-9][0-9]{6,14}$").expect("static regex"));
static LOCALE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$").expect("static regex"));
static COLOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^#[0-9A-Fa-f]{6}$").expect("static regex"));

/// Trims, refuses empty and over-long text and control characters.
pub fn text(field: &str, value: &str, max_chars: usize) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::validation(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if v.chars().count() > max_chars {
        return Err(AppError::validation(
            field,
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(v.to_string())
}

/// An email address, lower-cased so that uniqueness ignores case.
pub fn email(field: &str, value: &str) -> AppResult<String> {
    let v = value.trim().to_lowercase();
    if v.len() > 254 || !EMAIL.is_match(&v) {
        return Err(AppError::validation(
            field,
            format!("{field} is not a valid email address: {value:?}"),
        ));
    }
    Ok(v)
}

/// A phone number in E.164 (`+` then 7 to 15 digits); spaces, dashes and dots are removed.
pub fn phone(field: &str, value: &str) -> AppResult<String> {
    let v: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if !E164.is_match(&v) {
        return Err(AppError::validation(
            field,
            format!("{field} must be in E.164 form, for example +31612345678; got {value:?}"),
        ));
    }
    Ok(v)
}

/// A BCP 47 language tag such as `en`, `nl-NL` or `zh-Hant-TW`.
pub fn locale(field: &str, value: &str) -> AppResult<String> {
    let v = value.trim();
    if !LOCALE.is_match(v) {
        return Err(AppError::validation(
            field,
            format!("{field} must be a language tag such as en or nl-NL; got {value:?}"),
        ));
    }
    Ok(v.to_string())
}

/// `#RRGGBB`.
pub fn color(field: &str, value: &str) -> AppResult<String> {
    let v = value.trim();
    if !COLOR.is_match(v) {
        return Err(AppError::validation(
            field,
            format!("{field} must be a colour as #RRGGBB; got {value:?}"),
        ));
    }
    Ok(v.to_lowercase())
}

/// An absolute http(s) URL of at most 2048 characters.
pub fn url(field: &str, value: &str) -> AppResult<String> {
    let v = value.trim();
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && v.len() <= 2048
        && v.len() > "https://".len()
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(AppError::validation(
            field,
            format!("{field} must be an absolute http(s) URL of at most 2048 characters"),
        ));
    }
    Ok(v.to_string())
}

/// An IANA time zone name such as `Europe/Amsterdam`.
pub fn timezone(field: &str, value: &str) -> AppResult<chrono_tz::Tz> {
    value.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        AppError::validation(
            field,
            format!(
                "{field} must be an IANA time zone name such as Europe/Amsterdam; got {value:?}"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(r: AppResult<T>) -> &'static str {
        match r {
            Ok(_) => "OK",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Ann@Example.COM ").ok().as_deref(),
            Some("ann@example.com")
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "ann@x",
            "a b@x.com",
            "ann@-x.com",
        ] {
            assert_eq!(code(email("email", bad)), "VALIDATION", "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(
            phone("phone", "+31 6 1234-5678").ok().as_deref(),
            Some("+31612345678")
        );
        for bad in [
            "0612345678",
            "+0612345678",
            "+1",
            "+123456789012345678",
            "+31abc",
        ] {
            assert_eq!(code(phone("phone", bad)), "VALIDATION", "{bad}");
        }
    }

    #[test]
    fn text_locale_color_url_timezone() {
        assert_eq!(code(text("name", "  ", 10)), "VALIDATION");
        assert_eq!(code(text("name", "abcdefghijk", 10)), "VALIDATION");
        assert_eq!(code(text("name", "a\u{0}b", 10)), "VALIDATION");
        assert_eq!(text("name", " Ann ", 10).ok().as_deref(), Some("Ann"));
        assert_eq!(code(locale("locale", "nl-NL")), "OK");
        assert_eq!(code(locale("locale", "english please")), "VALIDATION");
        assert_eq!(color("c", "#A0B1C2").ok().as_deref(), Some("#a0b1c2"));
        assert_eq!(code(color("c", "red")), "VALIDATION");
        assert_eq!(code(url("u", "https://cdn.example.com/logo.png")), "OK");
        assert_eq!(code(url("u", "javascript:alert(1)")), "VALIDATION");
        assert_eq!(code(timezone("tz", "Europe/Amsterdam")), "OK");
        assert_eq!(code(timezone("tz", "Mars/Olympus")), "VALIDATION");
    }

    #[test]
    fn patches_apply() {
        assert_eq!(Patch::Keep.apply(Some(1)), Some(1));
        assert_eq!(Patch::<i32>::Clear.apply(Some(1)), None);
        assert_eq!(Patch::Set(2).apply(Some(1)), Some(2));
    }
}
