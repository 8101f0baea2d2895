//! The subset of TensorFlow's protos that the scanner needs, written by hand for prost:
//! `tensorflow/core/protobuf/saved_model.proto`, `meta_graph.proto`, `saver.proto`,
//! `tensorflow/core/framework/graph.proto`, `node_def.proto`, `function.proto`,
//! `op_def.proto` and `attr_value.proto` (<https://github.com/tensorflow/tensorflow>).
//!
//! Field numbers are TensorFlow's. Constant tensors (`AttrValue.tensor`), shapes, signature
//! and object-graph definitions are not declared, so prost skips them without copying:
//! a frozen graph whose weights sit in `Const` nodes costs its node list, not its weights.
//! Next to each struct is the [`Schema`] the wire walker checks first.

use std::collections::BTreeMap;

use crate::onnx::wire::{Kind, Schema};

/// `SavedModel`: the content of `saved_model.pb`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedModel {
    #[prost(int64, tag = "1")]
    pub saved_model_schema_version: i64,
    #[prost(message, repeated, tag = "2")]
    pub meta_graphs: Vec<MetaGraphDef>,
}

pub static SAVED_MODEL: Schema = Schema {
    name: "SavedModel",
    fields: &[(2, Kind::Message(&META_GRAPH))],
};

/// `MetaGraphDef`: one graph with its tags (`serve`, `train` ...) and its saver.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaGraphDef {
    #[prost(message, optional, tag = "1")]
    pub meta_info_def: Option<MetaInfoDef>,
    #[prost(message, optional, tag = "2")]
    pub graph_def: Option<GraphDef>,
    #[prost(message, optional, tag = "3")]
    pub saver_def: Option<SaverDef>,
}

pub static META_GRAPH: Schema = Schema {
    name: "MetaGraphDef",
    fields: &[
        (1, Kind::Message(&META_INFO)),
        (2, Kind::Message(&GRAPH)),
        (3, Kind::Message(&SAVER)),
    ],
};

/// `MetaGraphDef.MetaInfoDef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaInfoDef {
    #[prost(string, tag = "1")]
    pub meta_graph_version: String,
    #[prost(string, repeated, tag = "4")]
    pub tags: Vec<String>,
    #[prost(string, tag = "5")]
    pub tensorflow_version: String,
}

pub static META_INFO: Schema = Schema {
    name: "MetaInfoDef",
    fields: &[(1, Kind::Str), (4, Kind::Str), (5, Kind::Str)],
};

/// `SaverDef`: the tensors and ops that save and restore the variables.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SaverDef {
    #[prost(string, tag = "1")]
    pub filename_tensor_name: String,
    #[prost(string, tag = "2")]
    pub save_tensor_name: String,
    #[prost(string, tag = "3")]
    pub restore_op_name: String,
}

pub static SAVER: Schema = Schema {
    name: "SaverDef",
    fields: &[(1, Kind::Str), (2, Kind::Str), (3, Kind::Str)],
};

/// `GraphDef`: the nodes and the function library. Also the whole content of a frozen
/// graph `.pb`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphDef {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
    #[prost(message, optional, tag = "2")]
    pub library: Option<FunctionDefLibrary>,
}

pub static GRAPH: Schema = Schema {
    name: "GraphDef",
    fields: &[(1, Kind::Message(&NODE)), (2, Kind::Message(&LIBRARY))],
};

/// `FunctionDefLibrary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionDefLibrary {
    #[prost(message, repeated, tag = "1")]
    pub function: Vec<FunctionDef>,
}

pub static LIBRARY: Schema = Schema {
    name: "FunctionDefLibrary",
    fields: &[(1, Kind::Message(&FUNCTION))],
};

/// `FunctionDef`: a function's signature (its name) and body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionDef {
    #[prost(message, optional, tag = "1")]
    pub signature: Option<OpDef>,
    #[prost(message, repeated, tag = "3")]
    pub node_def: Vec<NodeDef>,
}

pub static FUNCTION: Schema = Schema {
    name: "FunctionDef",
    fields: &[(1, Kind::Message(&OP_DEF)), (3, Kind::Message(&NODE))],
};

impl FunctionDef {
    pub fn name(&self) -> &str {
        self.signature.as_ref().map_or("", |s| s.name.as_str())
    }
}

/// `OpDef`, of which only the name is kept (a function's signature).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpDef {
    #[prost(string, tag = "1")]
    pub name: String,
}

pub static OP_DEF: Schema = Schema {
    name: "OpDef",
    fields: &[(1, Kind::Str)],
};

/// `NodeDef`: one op in a graph or function body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeDef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub op: String,
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(string, tag = "4")]
    pub device: String,
    #[prost(btree_map = "string, message", tag = "5")]
    pub attr: BTreeMap<String, AttrValue>,
}

pub static NODE: Schema = Schema {
    name: "NodeDef",
    fields: &[
        (1, Kind::Str),
        (2, Kind::Str),
        (3, Kind::Str),
        (4, Kind::Str),
        (5, Kind::Message(&ATTR_ENTRY)),
    ],
};

/// A `map<string, AttrValue>` entry on the wire.
pub static ATTR_ENTRY: Schema = Schema {
    name: "AttrEntry",
    fields: &[(1, Kind::Str), (2, Kind::Message(&ATTR_VALUE))],
};

/// `AttrValue`, keeping strings, string lists and function references.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttrValue {
    #[prost(oneof = "attr_value::Value", tags = "1, 2, 10")]
    pub value: Option<attr_value::Value>,
}

pub mod attr_value {
    use super::{ListValue, NameAttrList};

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        List(ListValue),
        #[prost(bytes, tag = "2")]
        S(Vec<u8>),
        #[prost(message, tag = "10")]
        Func(NameAttrList),
    }
}

pub static ATTR_VALUE: Schema = Schema {
    name: "AttrValue",
    fields: &[
        (1, Kind::Message(&LIST_VALUE)),
        (2, Kind::Bytes),
        (10, Kind::Message(&NAME_ATTR_LIST)),
    ],
};

/// `AttrValue.ListValue`, keeping strings and function references.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListValue {
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub s: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "9")]
    pub func: Vec<NameAttrList>,
}

pub static LIST_VALUE: Schema = Schema {
    name: "AttrValue.ListValue",
    fields: &[(2, Kind::Bytes), (9, Kind::Message(&NAME_ATTR_LIST))],
};

/// `NameAttrList`: a function name with attributes (the `f` of `PartitionedCall`, the
/// branches of `If` and `While`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NameAttrList {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(btree_map = "string, message", tag = "2")]
    pub attr: BTreeMap<String, AttrValue>,
}

pub static NAME_ATTR_LIST: Schema = Schema {
    name: "NameAttrList",
    fields: &[(1, Kind::Str), (2, Kind::Message(&ATTR_ENTRY))],
};

impl AttrValue {
    /// The string value, if this attribute is a string.
    pub fn string(&self) -> Option<&[u8]> {
        match &self.value {
            Some(attr_value::Value::S(s)) => Some(s),
            _ => None,
        }
    }

    /// Every string in the attribute: the string itself or the strings of a list.
    pub fn strings(&self) -> Vec<&[u8]> {
        match &self.value {
            Some(attr_value::Value::S(s)) => vec![s.as_slice()],
            Some(attr_value::Value::List(l)) => l.s.iter().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        }
    }

    /// Names of the functions this attribute refers to, nested attributes included.
    pub fn functions(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_functions(&mut out);
        out
    }

    fn collect_functions<'a>(&'a self, out: &mut Vec<&'a str>) {
        let list: &[NameAttrList] = match &self.value {
            Some(attr_value::Value::Func(f)) => std::slice::from_ref(f),
            Some(attr_value::Value::List(l)) => &l.func,
            _ => &[],
        };
        for f in list {
            out.push(f.name.as_str());
            for v in f.attr.values() {
                v.collect_functions(out);
            }
        }
    }
}

/// `SavedMetadata` of `keras_metadata.pb` (tf.keras SavedModels): one JSON config per
/// saved Keras object.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedMetadata {
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<SavedObject>,
}

pub static SAVED_METADATA: Schema = Schema {
    name: "SavedMetadata",
    fields: &[(1, Kind::Message(&SAVED_OBJECT))],
};

/// `SavedObject` of `keras/protobuf/saved_metadata.proto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedObject {
    #[prost(int32, tag = "2")]
    pub node_id: i32,
    #[prost(string, tag = "3")]
    pub node_path: String,
    #[prost(string, tag = "4")]
    pub identifier: String,
    /// The object's Keras config as JSON text.
    #[prost(string, tag = "5")]
    pub metadata: String,
}

pub static SAVED_OBJECT: Schema = Schema {
    name: "SavedObject",
    fields: &[(3, Kind::Str), (4, Kind::Str), (5, Kind::Str)],
};
