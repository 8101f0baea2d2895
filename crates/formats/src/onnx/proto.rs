//! The subset of `onnx.proto` (<https://github.com/onnx/onnx/blob/main/onnx/onnx.proto>)
//! that the scanner needs, written by hand for prost (no protoc, no build script).
//!
//! Field numbers are the ones of `onnx.proto`. Fields that are left out are skipped by
//! prost without being copied; that is how tensor payloads (`raw_data`, `float_data`,
//! `int64_data` ...) and doc strings cost nothing. Next to each struct is the [`Schema`]
//! the wire walker checks first: it must list every repeated or string field the struct
//! declares, and every nested message.

use super::wire::{Kind, Schema};

/// `ModelProto`: the top-level message of a `.onnx` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "4")]
    pub domain: String,
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
    #[prost(message, repeated, tag = "20")]
    pub training_info: Vec<TrainingInfoProto>,
    #[prost(message, repeated, tag = "25")]
    pub functions: Vec<FunctionProto>,
}

pub static MODEL: Schema = Schema {
    name: "ModelProto",
    fields: &[
        (8, Kind::Message(&OPSET)),
        (2, Kind::Str),
        (3, Kind::Str),
        (4, Kind::Str),
        (7, Kind::Message(&GRAPH)),
        (14, Kind::Message(&STRING_STRING)),
        (20, Kind::Message(&TRAINING_INFO)),
        (25, Kind::Message(&FUNCTION)),
    ],
};

/// `OperatorSetIdProto`: an opset the model imports.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

pub static OPSET: Schema = Schema {
    name: "OperatorSetIdProto",
    fields: &[(1, Kind::Str)],
};

/// `StringStringEntryProto`: metadata and external-data key/value pairs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

pub static STRING_STRING: Schema = Schema {
    name: "StringStringEntryProto",
    fields: &[(1, Kind::Str), (2, Kind::Str)],
};

/// `TrainingInfoProto`: graphs run by training runtimes (they hold nodes too).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrainingInfoProto {
    #[prost(message, optional, tag = "1")]
    pub initialization: Option<GraphProto>,
    #[prost(message, optional, tag = "2")]
    pub algorithm: Option<GraphProto>,
}

pub static TRAINING_INFO: Schema = Schema {
    name: "TrainingInfoProto",
    fields: &[(1, Kind::Message(&GRAPH)), (2, Kind::Message(&GRAPH))],
};

/// `GraphProto`: nodes, initializers and declared inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "15")]
    pub sparse_initializer: Vec<SparseTensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

pub static GRAPH: Schema = Schema {
    name: "GraphProto",
    fields: &[
        (1, Kind::Message(&NODE)),
        (2, Kind::Str),
        (5, Kind::Message(&TENSOR)),
        (15, Kind::Message(&SPARSE_TENSOR)),
        (11, Kind::Message(&VALUE_INFO)),
        (12, Kind::Message(&VALUE_INFO)),
        (13, Kind::Message(&VALUE_INFO)),
    ],
};

/// `NodeProto`: one operator call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(string, tag = "7")]
    pub domain: String,
    #[prost(string, tag = "8")]
    pub overload: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

pub static NODE: Schema = Schema {
    name: "NodeProto",
    fields: &[
        (1, Kind::Str),
        (2, Kind::Str),
        (3, Kind::Str),
        (4, Kind::Str),
        (7, Kind::Str),
        (8, Kind::Str),
        (5, Kind::Message(&ATTRIBUTE)),
    ],
};

/// `AttributeProto`: a node attribute. Subgraphs of `If`, `Loop` and `Scan` sit in `g` and
/// `graphs`. Float, int and string lists are not declared.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "21")]
    pub ref_attr_name: String,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// A string attribute (UTF-8 by convention, not enforced by protobuf).
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(message, optional, tag = "6")]
    pub g: Option<GraphProto>,
    #[prost(message, optional, tag = "22")]
    pub sparse_tensor: Option<SparseTensorProto>,
    #[prost(message, repeated, tag = "10")]
    pub tensors: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub graphs: Vec<GraphProto>,
    #[prost(message, repeated, tag = "23")]
    pub sparse_tensors: Vec<SparseTensorProto>,
}

pub static ATTRIBUTE: Schema = Schema {
    name: "AttributeProto",
    fields: &[
        (1, Kind::Str),
        (21, Kind::Str),
        (4, Kind::Bytes),
        (5, Kind::Message(&TENSOR)),
        (6, Kind::Message(&GRAPH)),
        (22, Kind::Message(&SPARSE_TENSOR)),
        (10, Kind::Message(&TENSOR)),
        (11, Kind::Message(&GRAPH)),
        (23, Kind::Message(&SPARSE_TENSOR)),
    ],
};

/// `TensorProto.DataLocation.EXTERNAL`: the data lives in another file.
pub const DATA_LOCATION_EXTERNAL: i32 = 1;

/// `TensorProto`: shape, type, name and where the data is. The data fields themselves
/// (`raw_data` = 9, `float_data` = 4 ...) are deliberately not declared.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

pub static TENSOR: Schema = Schema {
    name: "TensorProto",
    fields: &[
        (1, Kind::RepeatedInt),
        (8, Kind::Str),
        (13, Kind::Message(&STRING_STRING)),
    ],
};

/// `SparseTensorProto`: values and indices are tensors (either may be external).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SparseTensorProto {
    #[prost(message, optional, tag = "1")]
    pub values: Option<TensorProto>,
    #[prost(message, optional, tag = "2")]
    pub indices: Option<TensorProto>,
    #[prost(int64, repeated, tag = "3")]
    pub dims: Vec<i64>,
}

pub static SPARSE_TENSOR: Schema = Schema {
    name: "SparseTensorProto",
    fields: &[
        (1, Kind::Message(&TENSOR)),
        (2, Kind::Message(&TENSOR)),
        (3, Kind::RepeatedInt),
    ],
};

/// `ValueInfoProto`: a declared graph input, output or intermediate value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

pub static VALUE_INFO: Schema = Schema {
    name: "ValueInfoProto",
    fields: &[(1, Kind::Str), (2, Kind::Message(&TYPE))],
};

/// `TypeProto`: a tensor type with its shape, or a sequence, map or optional of types.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(oneof = "type_proto::Value", tags = "1, 4, 5, 8, 9")]
    pub value: Option<type_proto::Value>,
}

pub static TYPE: Schema = Schema {
    name: "TypeProto",
    fields: &[
        (1, Kind::Message(&TYPE_TENSOR)),
        (4, Kind::Message(&TYPE_ELEM)),
        (5, Kind::Message(&TYPE_MAP)),
        (8, Kind::Message(&TYPE_TENSOR)),
        (9, Kind::Message(&TYPE_ELEM)),
    ],
};

pub mod type_proto {
    use super::{TensorShapeProto, TypeProto};

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        TensorType(Tensor),
        #[prost(message, tag = "4")]
        SequenceType(Elem),
        #[prost(message, tag = "5")]
        MapType(Map),
        #[prost(message, tag = "8")]
        SparseTensorType(Tensor),
        #[prost(message, tag = "9")]
        OptionalType(Elem),
    }

    /// `TypeProto.Tensor` and `TypeProto.SparseTensor` (same fields).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    /// `TypeProto.Sequence` and `TypeProto.Optional` (same fields).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Elem {
        #[prost(message, optional, boxed, tag = "1")]
        pub elem_type: Option<Box<TypeProto>>,
    }

    /// `TypeProto.Map`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Map {
        #[prost(int32, tag = "1")]
        pub key_type: i32,
        #[prost(message, optional, boxed, tag = "2")]
        pub value_type: Option<Box<TypeProto>>,
    }
}

pub static TYPE_TENSOR: Schema = Schema {
    name: "TypeProto.Tensor",
    fields: &[(2, Kind::Message(&SHAPE))],
};

pub static TYPE_ELEM: Schema = Schema {
    name: "TypeProto.Sequence",
    fields: &[(1, Kind::Message(&TYPE))],
};

pub static TYPE_MAP: Schema = Schema {
    name: "TypeProto.Map",
    fields: &[(2, Kind::Message(&TYPE))],
};

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

pub static SHAPE: Schema = Schema {
    name: "TensorShapeProto",
    fields: &[(1, Kind::Message(&DIMENSION))],
};

/// `TensorShapeProto.Dimension`: a number or a symbolic name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    #[prost(oneof = "dimension::Value", tags = "1, 2")]
    pub value: Option<dimension::Value>,
}

pub mod dimension {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(int64, tag = "1")]
        DimValue(i64),
        #[prost(string, tag = "2")]
        DimParam(String),
    }
}

pub static DIMENSION: Schema = Schema {
    name: "TensorShapeProto.Dimension",
    fields: &[(2, Kind::Str)],
};

/// `FunctionProto`: a model-local function, called by nodes whose (domain, op_type) match.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, repeated, tag = "4")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    pub output: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub attribute: Vec<String>,
    #[prost(message, repeated, tag = "11")]
    pub attribute_proto: Vec<AttributeProto>,
    #[prost(message, repeated, tag = "7")]
    pub node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "9")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "10")]
    pub domain: String,
    #[prost(string, tag = "13")]
    pub overload: String,
    #[prost(message, repeated, tag = "12")]
    pub value_info: Vec<ValueInfoProto>,
}

pub static FUNCTION: Schema = Schema {
    name: "FunctionProto",
    fields: &[
        (1, Kind::Str),
        (4, Kind::Str),
        (5, Kind::Str),
        (6, Kind::Str),
        (11, Kind::Message(&ATTRIBUTE)),
        (7, Kind::Message(&NODE)),
        (9, Kind::Message(&OPSET)),
        (10, Kind::Str),
        (13, Kind::Str),
        (12, Kind::Message(&VALUE_INFO)),
    ],
};

impl TensorProto {
    /// The `external_data` value for `key` (the last one, as protobuf readers keep).
    pub fn external(&self, key: &str) -> Option<&str> {
        self.external_data
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }
}

/// `SequenceProto` of `onnx/onnx-data.proto`, checked on the wire only.
pub static SEQUENCE: Schema = Schema {
    name: "SequenceProto",
    fields: &[
        (1, Kind::Str),
        (3, Kind::Message(&TENSOR)),
        (4, Kind::Message(&SPARSE_TENSOR)),
        (5, Kind::Message(&SEQUENCE)),
        (6, Kind::Message(&MAP)),
        (7, Kind::Message(&OPTIONAL)),
    ],
};

/// `MapProto` of `onnx/onnx-data.proto`, checked on the wire only.
pub static MAP: Schema = Schema {
    name: "MapProto",
    fields: &[
        (1, Kind::Str),
        (3, Kind::RepeatedInt),
        (4, Kind::Bytes),
        (5, Kind::Message(&SEQUENCE)),
    ],
};

/// `OptionalProto` of `onnx/onnx-data.proto`, checked on the wire only.
pub static OPTIONAL: Schema = Schema {
    name: "OptionalProto",
    fields: &[
        (1, Kind::Str),
        (3, Kind::Message(&TENSOR)),
        (4, Kind::Message(&SPARSE_TENSOR)),
        (5, Kind::Message(&SEQUENCE)),
        (6, Kind::Message(&MAP)),
        (7, Kind::Message(&OPTIONAL)),
    ],
};
