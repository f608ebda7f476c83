//! Shared strings: a [`Text`] is an immutable slice of a reference-counted buffer.
//!
//! An index is inflated once, and the names, versions, dependencies and descriptions of all its
//! entries are slices of that one buffer: loading Alpine's 23,030-entry `main` + `community`
//! costs two buffers instead of ~30 heap strings per entry (apk/README.md, "Speed and memory on
//! the real indexes"). A `Text` made
//! from an owned string (a `.PKGINFO` value, a command-line argument) is the same type with a
//! buffer of its own, so code reading packages never knows where the bytes live.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// An immutable string: `len` bytes at `start` of a shared buffer. Cloning is a reference count.
///
/// Offsets are `u32`: everything apk reads is bounded far below 4 GiB (`crate::limits`).
#[derive(Clone)]
pub struct Text {
    buf: Arc<String>,
    start: u32,
    len: u32,
}

fn offset(n: usize) -> u32 {
    // Every input is bounded by crate::limits (index content 256 MiB, state files 256 MiB).
    u32::try_from(n).expect("apk text over 4 GiB: inputs are bounded by crate::limits")
}

impl Text {
    /// A text that owns its buffer (the whole string).
    pub fn new(s: impl Into<String>) -> Text {
        let s = s.into();
        if s.is_empty() {
            return Text::default();
        }
        let len = offset(s.len());
        Text {
            buf: Arc::new(s),
            start: 0,
            len,
        }
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.buf[self.start as usize..(self.start + self.len) as usize]
    }

    /// `sub`, a slice borrowed from this text, as a `Text` sharing the buffer (no copy). A `sub`
    /// from anywhere else is copied.
    pub fn slice(&self, sub: &str) -> Text {
        let whole = self.as_str();
        let at = (sub.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        if sub.is_empty() {
            return Text::default();
        }
        if at < whole.len() && sub.len() <= whole.len() - at {
            return Text {
                buf: Arc::clone(&self.buf),
                start: self.start + at as u32,
                len: sub.len() as u32,
            };
        }
        Text::new(sub)
    }
}

impl Default for Text {
    fn default() -> Self {
        static EMPTY: OnceLock<Arc<String>> = OnceLock::new();
        Text {
            buf: Arc::clone(EMPTY.get_or_init(|| Arc::new(String::new()))),
            start: 0,
            len: 0,
        }
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<std::path::Path> for Text {
    fn as_ref(&self) -> &std::path::Path {
        self.as_str().as_ref()
    }
}

impl AsRef<std::ffi::OsStr> for Text {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.as_str().as_ref()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

macro_rules! eq_with {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Text {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Text> for $t {
            fn eq(&self, other: &Text) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}
eq_with!(str, &str, String);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::new(s.as_str())
    }
}

impl From<&Text> for Text {
    fn from(s: &Text) -> Text {
        s.clone()
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_string()
    }
}

impl From<&Text> for String {
    fn from(t: &Text) -> String {
        t.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn slices_share_the_buffer() {
        let t = Text::new("P:busybox\nV:1.36.1-r15\n");
        let name = t.slice(&t[2..9]);
        assert_eq!(name, "busybox");
        assert!(Arc::ptr_eq(&name.buf, &t.buf));
        let inner = name.slice(&name[4..]);
        assert_eq!(inner, "box");
        assert!(Arc::ptr_eq(&inner.buf, &t.buf));
        // A string from elsewhere is copied, never read out of bounds.
        let other = String::from("busybox");
        let copy = name.slice(&other);
        assert_eq!(copy, "busybox");
        assert!(!Arc::ptr_eq(&copy.buf, &t.buf));
        let tail = t.slice(&t[t.len()..]);
        assert!(tail.is_empty());
    }

    #[test]
    fn behaves_as_a_str() {
        let a = Text::from("musl");
        let b = Text::new(String::from("xmusly")).slice("musl");
        assert_eq!(a, b);
        assert_eq!(a, "musl");
        assert_eq!("musl", a);
        assert_eq!(a, String::from("musl"));
        assert_eq!(format!("{a}|{a:?}"), "musl|\"musl\"");
        let mut m: HashMap<Text, u8> = HashMap::new();
        m.insert(a.clone(), 1);
        assert_eq!(m.get("musl"), Some(&1));
        assert!(Text::default().is_empty());
        assert_eq!(
            Text::from("a").cmp(&Text::from("b")),
            std::cmp::Ordering::Less
        );
        assert_eq!(String::from(a), "musl");
    }
}
