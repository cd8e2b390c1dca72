//! Borrowed views of JSON text, for turning records into rows without building trees of values:
//! a string read in place ([`Text`]), an object's members in their order with their values left
//! as text ([`Members`]), and a value's compact text ([`compact`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON string, borrowed from the text unless it holds escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_string())))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The members of a JSON object in their order, each value left as its text.
#[derive(Debug, Default)]
pub struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Text(key), value)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// What kind of JSON value a text holds, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Kind {
    /// Returns the kind of a value's text (as serde_json hands out raw values: no leading space).
    pub fn of(value: &RawValue) -> Kind {
        match value.get().as_bytes().first() {
            Some(b'n') => Kind::Null,
            Some(b't' | b'f') => Kind::Boolean,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            _ => Kind::Number,
        }
    }

    /// Returns the kind's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "boolean",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

/// Returns a value's text without the whitespace between its tokens; strings (and their escapes)
/// stay as written. Borrowed when the text is compact already, as trail files are.
pub fn compact(value: &RawValue) -> Cow<'_, str> {
    let text = value.get();
    let bytes = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut position = 0;
    while position < bytes.len() {
        let byte = bytes[position];
        if byte == b'"' {
            let end = string_end(bytes, position);
            if let Some(out) = out.as_mut() {
                out.extend_from_slice(&bytes[position..end]);
            }
            position = end;
            continue;
        }
        if byte.is_ascii_whitespace() {
            out.get_or_insert_with(|| {
                let mut out = Vec::with_capacity(bytes.len());
                out.extend_from_slice(&bytes[..position]);
                out
            });
        } else if let Some(out) = out.as_mut() {
            out.push(byte);
        }
        position += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        // Only ASCII whitespace outside strings was left out, so the bytes are still UTF-8.
        Some(out) => Cow::Owned(String::from_utf8(out).expect("JSON text without its whitespace is UTF-8")),
    }
}

/// Returns the position just past the string that starts at `start` (a `"`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut position = start + 1;
    while let Some(offset) = memchr::memchr2(b'"', b'\\', &bytes[position..]) {
        position += offset;
        if bytes[position] == b'"' {
            return position + 1;
        }
        position += 2;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn compact_leaves_strings_alone() {
        let value = raw(r#"{"a": [1, 2], "b": "x y\" z", "c" : {"d":null}}"#);
        assert_eq!(compact(&value), r#"{"a":[1,2],"b":"x y\" z","c":{"d":null}}"#);
        let tight = raw(r#"{"a":"b c","d":"\\"}"#);
        assert!(matches!(compact(&tight), Cow::Borrowed(_)));
        assert_eq!(compact(&raw("12.50")), "12.50");
    }

    #[test]
    fn members_keep_their_order_and_text() {
        let value = raw(r#"{"b": 1, "a\u0041": {"x": [1]}, "c": "s"}"#);
        let Members(members) = serde_json::from_str(value.get()).unwrap();
        let keys: Vec<_> = members.iter().map(|(key, _)| key.as_ref()).collect();
        assert_eq!(keys, ["b", "aA", "c"]);
        assert_eq!(members[1].1.get(), r#"{"x": [1]}"#);
        assert_eq!(Kind::of(members[2].1), Kind::String);
        let Text(text) = serde_json::from_str(members[2].1.get()).unwrap();
        assert!(matches!(text, Cow::Borrowed("s")));
    }
}
