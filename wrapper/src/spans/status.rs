//! The HTTP status of a handler's response, for `http.status_code`: the top-level
//! `statusCode` of an API Gateway, ALB or function URL response (a struct of
//! `aws_lambda_events`, a `serde_json::Value`, or any type that serializes to such an object).
//!
//! A serializer that only looks: other fields are skipped without being serialized, so a
//! large response body costs nothing.

use std::fmt::Display;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The response's status: `Some(code)` from its `statusCode`; [`Status::Unknown`] when it is
/// not an object with one (datadog-lambda then reports 200 for an HTTP trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Code(u16),
    /// A response without a `statusCode`.
    Unknown,
}

/// Reads `statusCode` from `response`.
pub fn status_of<T: Serialize + ?Sized>(response: &T) -> Status {
    match response.serialize(Top) {
        Ok(Some(code)) => Status::Code(code),
        _ => Status::Unknown,
    }
}

const KEY: &str = "statusCode";

/// Not an error to report: the serializer stops where there is nothing to see.
#[derive(Debug)]
pub struct Skip;

impl Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a status")
    }
}

impl std::error::Error for Skip {}

impl ser::Error for Skip {
    fn custom<T: Display>(_msg: T) -> Self {
        Skip
    }
}

/// Methods of a serializer that do not lead to a status.
macro_rules! nothing {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Skip> { Err(Skip) })*
    };
}

/// The compound parts of a serializer that do not lead to a status.
macro_rules! no_compounds {
    () => {
        type SerializeSeq = Impossible<Self::Ok, Skip>;
        type SerializeTuple = Impossible<Self::Ok, Skip>;
        type SerializeTupleStruct = Impossible<Self::Ok, Skip>;
        type SerializeTupleVariant = Impossible<Self::Ok, Skip>;
        type SerializeStructVariant = Impossible<Self::Ok, Skip>;

        nothing!(
            serialize_bool(bool),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_char(char),
            serialize_bytes(&[u8]),
            serialize_none(),
            serialize_unit(),
            serialize_unit_struct(&'static str),
            serialize_unit_variant(&'static str, u32, &'static str),
        );

        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, Skip> {
            Err(Skip)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Skip> {
            Err(Skip)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Skip> {
            Err(Skip)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Skip> {
            Err(Skip)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Skip> {
            Err(Skip)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Skip> {
            Err(Skip)
        }
    };
}

/// `Some` and newtypes: look at what they hold.
macro_rules! see_through {
    () => {
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok, Skip> {
            value.serialize(self)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<Self::Ok, Skip> {
            value.serialize(self)
        }
    };
}

/// Maps and structs, for a serializer that does not look inside them.
macro_rules! no_objects {
    () => {
        type SerializeMap = Impossible<Self::Ok, Skip>;
        type SerializeStruct = Impossible<Self::Ok, Skip>;

        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Skip> {
            Err(Skip)
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Skip> {
            Err(Skip)
        }
    };
}

/// The response itself: an object (struct or map), possibly behind `Some` or a newtype.
struct Top;

/// The fields of the top-level object.
#[derive(Default)]
struct Fields {
    status: Option<u16>,
    /// The last map key was `statusCode`.
    at_key: bool,
}

impl ser::Serializer for Top {
    type Ok = Option<u16>;
    type Error = Skip;
    type SerializeMap = Fields;
    type SerializeStruct = Fields;
    no_compounds!();
    nothing!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_str(&str),
    );

    see_through!();

    fn serialize_map(self, _: Option<usize>) -> Result<Fields, Skip> {
        Ok(Fields::default())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields, Skip> {
        Ok(Fields::default())
    }
}

impl ser::SerializeStruct for Fields {
    type Ok = Option<u16>;
    type Error = Skip;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Skip> {
        if key == KEY {
            self.status = value.serialize(Code).ok().flatten();
        }
        Ok(())
    }
    fn end(self) -> Result<Self::Ok, Skip> {
        Ok(self.status)
    }
}

impl ser::SerializeMap for Fields {
    type Ok = Option<u16>;
    type Error = Skip;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Skip> {
        self.at_key = key.serialize(IsKey).unwrap_or(false);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Skip> {
        if std::mem::take(&mut self.at_key) {
            self.status = value.serialize(Code).ok().flatten();
        }
        Ok(())
    }
    fn end(self) -> Result<Self::Ok, Skip> {
        Ok(self.status)
    }
}

/// Whether a map key is `statusCode`.
struct IsKey;

impl ser::Serializer for IsKey {
    type Ok = bool;
    type Error = Skip;
    no_compounds!();
    no_objects!();
    see_through!();
    nothing!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
    );

    fn serialize_str(self, key: &str) -> Result<bool, Skip> {
        Ok(key == KEY)
    }
}

/// The value of `statusCode`: an integer, or a string holding one (both occur in the wild).
struct Code;

/// Integer methods of [`Code`]: the integer, when it fits a `u16`.
macro_rules! codes {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<Self::Ok, Skip> { Ok(v.try_into().ok()) })*
    };
}

impl ser::Serializer for Code {
    type Ok = Option<u16>;
    type Error = Skip;
    no_compounds!();
    no_objects!();
    see_through!();
    codes!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
    );

    fn serialize_str(self, v: &str) -> Result<Self::Ok, Skip> {
        Ok(v.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::alb::AlbTargetGroupResponse;
    use aws_lambda_events::event::apigw::ApiGatewayProxyResponse;
    use serde_json::json;

    #[test]
    fn status_codes_of_http_responses() {
        let mut api = ApiGatewayProxyResponse::default();
        api.status_code = 503;
        assert_eq!(status_of(&api), Status::Code(503));
        let mut alb = AlbTargetGroupResponse::default();
        alb.status_code = 201;
        assert_eq!(status_of(&alb), Status::Code(201));
        assert_eq!(
            status_of(&json!({"body": "x".repeat(1000), "statusCode": 404})),
            Status::Code(404)
        );
        assert_eq!(status_of(&json!({"statusCode": "502"})), Status::Code(502));
        assert_eq!(
            status_of(&Some(json!({"statusCode": 200}))),
            Status::Code(200)
        );
        assert_eq!(status_of(&json!({"body": "no status"})), Status::Unknown);
        assert_eq!(status_of(&json!({"statusCode": -1})), Status::Unknown);
        assert_eq!(status_of(&"plain text"), Status::Unknown);
        assert_eq!(status_of(&vec![1, 2]), Status::Unknown);
        assert_eq!(status_of(&()), Status::Unknown);
    }
}
