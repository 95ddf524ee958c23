//! YAML with its tags, read by serde-saphyr (the workspace's one YAML
//! library): template.yaml writes CloudFormation's short-form intrinsics
//! (`!Ref X`, `!GetAtt A.B`, `!Sub "…"`) as YAML tags, which a plain
//! `serde_json::Value` would drop. serde-saphyr hands a node's tag to a
//! [`serde_saphyr::Tagged`] target, so [`Value`] asks for one at every node.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Tagged;

/// One YAML node; a node with a local tag (`!Ref`) is [`Value::Tagged`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Sequence(Vec<Value>),
    Mapping(Mapping),
    Tagged(Box<TaggedValue>),
}

/// A tagged node: `tag` as written (`!Ref`), `value` the node under it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedValue {
    pub tag: String,
    pub value: Value,
}

/// A mapping in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping(Vec<(Value, Value)>);

impl Mapping {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<'a> IntoIterator for &'a Mapping {
    type Item = (&'a Value, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Value, Value)>,
        fn(&'a (Value, Value)) -> (&'a Value, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

static NULL: Value = Value::Null;

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Sequence(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_mapping()?.get(key)
    }
}

/// `value == "text"`, as serde_yaml compares a string node.
impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

/// `value["key"]`: [`Value::Null`] when absent, as serde_json and serde_yaml do.
impl std::ops::Index<&str> for Value {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;

    fn index(&self, index: usize) -> &Value {
        self.as_sequence()
            .and_then(|s| s.get(index))
            .unwrap_or(&NULL)
    }
}

/// The node under a [`Tagged`] wrapper, before its own tag is applied.
struct Plain(Value);

impl<'de> Deserialize<'de> for Plain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PlainVisitor;

        impl<'de> Visitor<'de> for PlainVisitor {
            type Value = Plain;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a YAML node")
            }
            fn visit_unit<E>(self) -> Result<Plain, E> {
                Ok(Plain(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Plain, E> {
                Ok(Plain(Value::Null))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Plain, E> {
                Ok(Plain(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Plain, E> {
                Ok(Plain(Value::Number(v.into())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Plain, E> {
                Ok(Plain(Value::Number(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Plain, E> {
                serde_json::Number::from_f64(v)
                    .map(|n| Plain(Value::Number(n)))
                    .ok_or_else(|| E::custom(format!("{v} is no JSON number")))
            }
            fn visit_str<E>(self, v: &str) -> Result<Plain, E> {
                Ok(Plain(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Plain, E> {
                Ok(Plain(Value::String(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Plain, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Plain(Value::Sequence(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Plain, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entries.push((Value::String(key), value));
                }
                Ok(Plain(Value::Mapping(Mapping(entries))))
            }
        }

        deserializer.deserialize_any(PlainVisitor)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Tagged(Plain(value), tag) = Tagged::<Plain>::deserialize(deserializer)?;
        // Local tags only: a core-schema tag (`!!str`) is resolved already.
        Ok(match tag.filter(|t| t.starts_with('!')) {
            Some(tag) => Value::Tagged(Box::new(TaggedValue { tag, value })),
            None => value,
        })
    }
}

/// Parse one YAML document.
pub fn from_str(text: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_intrinsics_keep_their_tags_at_any_depth() {
        let doc = from_str(
            "A:\n  Arn: !GetAtt Foo.Arn\n  List: [!Ref B, c, 3]\n  If: !If [C, !Ref D, '0']\n  T: true\n",
        )
        .unwrap();
        let tagged = |v: &Value| match v {
            Value::Tagged(t) => (t.tag.clone(), t.value.clone()),
            other => panic!("not tagged: {other:?}"),
        };
        assert_eq!(
            tagged(&doc["A"]["Arn"]),
            ("!GetAtt".into(), Value::String("Foo.Arn".into()))
        );
        assert_eq!(tagged(&doc["A"]["List"][0]).0, "!Ref");
        assert_eq!(doc["A"]["List"][1].as_str(), Some("c"));
        assert_eq!(doc["A"]["List"][2].as_u64(), Some(3));
        let (tag, args) = tagged(&doc["A"]["If"]);
        assert_eq!(tag, "!If");
        assert_eq!(args[2].as_str(), Some("0"));
        assert_eq!(doc["A"]["T"], Value::Bool(true));
        assert_eq!(doc["missing"], Value::Null);
        let keys: Vec<_> = doc["A"].as_mapping().unwrap().keys().cloned().collect();
        assert_eq!(keys[0].as_str(), Some("Arn"), "document order");
    }
}
