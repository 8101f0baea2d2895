//! A JSON request read in place, for the checks of the OpenAI-compatible endpoints: strings
//! borrow from the body unless they hold escapes, and objects are their members in order,
//! found by a scan rather than a hash (request objects hold a handful of keys).
//!
//! A key given twice in one object is refused. RFC 8259 leaves such objects to each reader:
//! some take the first value, most the last, and the gateway and the model server must not
//! read one request two ways (a `model` checked here and another one served there).
//! Depth is bounded by serde_json's parser (128 levels).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON value borrowing from the text it was read from.
#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members, in the order given; no key twice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Cow<'a, str>, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<'s, 'a> IntoIterator for &'s Object<'a> {
    type Item = (&'s Cow<'a, str>, &'s Json<'a>);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'s, (Cow<'a, str>, Json<'a>)>,
        fn(&'s (Cow<'a, str>, Json<'a>)) -> (&'s Cow<'a, str>, &'s Json<'a>),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<'a> Json<'a> {
    /// A non-negative integer (not a float, even a whole one), as serde_json reads it.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn is_u64(&self) -> bool {
        self.as_u64().is_some()
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Json::String(_))
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    pub fn as_array(&self) -> Option<&Vec<Json<'a>>> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Most members an object may hold before duplicates are found by sorting its keys rather
/// than by comparing each pair.
const SCAN_KEYS: usize = 16;

/// The first key given twice, if any.
fn repeated<'k>(members: &'k [(Cow<'_, str>, Json<'_>)]) -> Option<&'k str> {
    if members.len() <= SCAN_KEYS {
        return members
            .iter()
            .enumerate()
            .find(|(i, (k, _))| members[..*i].iter().any(|(seen, _)| seen == k))
            .map(|(_, (k, _))| k.as_ref());
    }
    let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
    keys.sort_unstable();
    keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // serde_json reads no NaN or infinity; were one to come, it reads as null, as
        // serde_json's own values do.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        // Room for a request's usual handful of keys without regrowing.
        let mut members = Vec::with_capacity(8);
        while let Some(Key(k)) = map.next_key()? {
            members.push((k, map.next_value()?));
        }
        if let Some(k) = repeated(&members) {
            let shown: String = k.chars().take(64).collect();
            return Err(de::Error::custom(format!(
                "the key {shown:?} is given twice in one object"
            )));
        }
        Ok(Json::Object(Object(members)))
    }
}

/// An object key, borrowed when it holds no escape.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }

            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn read(text: &str) -> Result<Json<'_>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The same document as serde_json's own values, member for member.
    fn same(j: &Json<'_>, v: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (j, v) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(a), Value::Bool(b)) => a == b,
            (Json::Number(a), Value::Number(b)) => a == b,
            (Json::String(a), Value::String(b)) => a == b,
            (Json::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Json::Object(a), Value::Object(b)) => {
                a.0.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
            }
            _ => false,
        }
    }

    #[test]
    fn reads_what_serde_json_reads_borrowing_plain_strings() {
        let text = r#"{"model":"m","n":-3,"t":0.5,"big":18446744073709551615,"ok":true,
            "none":null,"esc":"a\"b\u00e9","list":[1,[2,{"k":"v"}],"x"],"e":{}}"#;
        let j = read(text).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(same(&j, &v), "{j:?}");
        let Json::Object(o) = &j else { panic!() };
        assert!(matches!(
            o.get("model"),
            Some(Json::String(Cow::Borrowed("m")))
        ));
        assert!(matches!(o.get("esc"), Some(Json::String(Cow::Owned(s))) if s == "a\"bé"));
        assert_eq!(o.get("big").and_then(Json::as_u64), Some(u64::MAX));
        assert_eq!(o.get("n").and_then(Json::as_u64), None);
        assert_eq!(o.get("t").and_then(Json::as_u64), None);
        assert!(o.get("missing").is_none());
        assert!(o.contains_key("none"));
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth_and_size() {
        for text in [
            r#"{"model":"a","model":"b"}"#,
            r#"{"messages":[{"role":"user","content":"x","role":"system"}]}"#,
            r#"{"a\u0062":1,"ab":2}"#,
        ] {
            let e = read(text).unwrap_err().to_string();
            assert!(e.contains("given twice"), "{text}: {e}");
        }
        // Past the pairwise scan: found by sorting.
        let mut members: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        assert!(read(&format!("{{{}}}", members.join(","))).is_ok());
        members.push("\"k7\":0".into());
        let e = read(&format!("{{{}}}", members.join(","))).unwrap_err();
        assert!(e.to_string().contains("\"k7\" is given twice"), "{e}");
        // The same key in different objects is fine.
        assert!(read(r#"{"a":{"x":1},"b":{"x":2}}"#).is_ok());
    }

    #[test]
    fn depth_is_bounded_by_the_parser() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(read(&deep).is_err());
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(read(&fine).is_ok());
    }
}
