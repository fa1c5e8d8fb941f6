//! The one JSON body parser of the sandbox: a struct is read only from a JSON object.
//!
//! serde's derived `Deserialize` for a struct also takes a sequence of its fields in declaration
//! order, so `[{"allPsd2": "allAccounts"}, true, "2026-12-31", 4, false]` would pass as a
//! Berlin Group consent request and `[[["ReadAccountsBasic"], null, null, null], {}]` as a UK
//! one. Every object of both specs is a JSON object, so [`from_slice`] wraps the deserializer
//! and refuses a sequence wherever a struct is expected, at any depth. It also refuses trailing
//! content after the value and names the failing field by its path.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

/// Why a body could not be read: the path of the field (`.` for the whole body) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for BodyError {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "{} (at {})", self.message, self.path)
    }
}

/// Parses a JSON request body into `T`, refusing arrays where `T` (or a part of it) is a struct.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(Strict(&mut json)).map_err(|error| BodyError {
        path: error.path().to_string(),
        message: error.inner().to_string(),
    })?;
    json.end().map_err(|error| BodyError {
        path: ".".into(),
        message: error.to_string(),
    })?;
    Ok(value)
}

/// A deserializer that hands every visitor on wrapped, so nested values stay strict too.
struct Strict<D>(D);

/// A visitor passed through: compound values reach it through strict accessors. With
/// `object_only`, it stands for a struct and refuses sequences.
struct Pass<V> {
    inner: V,
    object_only: bool,
}

fn pass<V>(inner: V) -> Pass<V> {
    Pass {
        inner,
        object_only: false,
    }
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(pass(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, pass(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, pass(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, pass(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, pass(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = Pass {
            inner: visitor,
            object_only: true,
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, pass(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Pass<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        // Error messages then speak of the wire format, not of the sandbox's Rust types.
        if self.object_only {
            formatter.write_str("a JSON object")
        } else {
            self.inner.expecting(formatter)
        }
    }

    forward_visit!(
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Strict(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Strict(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.object_only {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        self.inner.visit_seq(Strict(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Strict(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Strict(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Strict<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(deserializer))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Strict(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Strict(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Strict(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Strict<A> {
    type Error = A::Error;
    type Variant = Strict<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Strict(seed))?;
        Ok((value, Strict(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Strict(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, pass(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = Pass {
            inner: visitor,
            object_only: true,
        };
        self.0.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::Value;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        iban: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        account: Inner,
        #[serde(default)]
        others: Vec<Inner>,
        maybe: Option<Inner>,
        free: Option<Value>,
        map: Option<BTreeMap<String, u32>>,
        kind: Option<Kind>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    enum Kind {
        Plain,
        Named { name: String },
    }

    fn parse(text: &str) -> Result<Outer, BodyError> {
        from_slice(text.as_bytes())
    }

    #[test]
    fn objects_are_read_as_usual() {
        let outer = parse(
            r#"{"account":{"iban":"A"},"others":[{"iban":"B"}],"maybe":{"iban":"C"},
               "free":[1,[2]],"map":{"x":1},"kind":{"named":{"name":"n"}}}"#,
        )
        .unwrap();
        assert_eq!(outer.others, vec![Inner { iban: "B".into() }]);
        assert_eq!(outer.maybe, Some(Inner { iban: "C".into() }));
        assert_eq!(outer.free, Some(serde_json::json!([1, [2]])));
        assert_eq!(outer.kind, Some(Kind::Named { name: "n".into() }));
        assert_eq!(
            parse(r#"{"account":{"iban":"A"},"kind":"plain"}"#)
                .unwrap()
                .kind,
            Some(Kind::Plain)
        );
    }

    #[test]
    fn arrays_in_place_of_objects_are_refused_at_every_depth() {
        let cases = [
            (r#"[["A"], [], null, null, null, null]"#, "."),
            (r#"{"account":["A"]}"#, "account"),
            (r#"{"account":{"iban":"A"},"others":[["B"]]}"#, "others[0]"),
            (r#"{"account":{"iban":"A"},"maybe":["C"]}"#, "maybe"),
            (r#"{"account":{"iban":"A"},"map":[["x",1]]}"#, "map"),
            (
                r#"{"account":{"iban":"A"},"kind":{"named":["n"]}}"#,
                "kind.named",
            ),
        ];
        for (body, path) in cases {
            let error = parse(body).unwrap_err();
            assert_eq!(error.path, path, "{body}: {error:?}");
            assert!(
                error.message.contains("expected a JSON object")
                    || error.message.contains("expected a map"),
                "{body}: {error:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_wire_format_and_trailing_content_is_refused() {
        let error = parse(r#"{"account":"A"}"#).unwrap_err();
        assert_eq!(error.path, "account");
        assert!(
            error.message.contains("expected a JSON object"),
            "{error:?}"
        );
        assert!(!error.message.contains("Inner"), "{error:?}");
        assert!(parse(r#"{"account":{"iban":"A"}} {}"#).is_err());
        assert!(parse("").is_err());
    }
}
