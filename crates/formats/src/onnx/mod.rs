//! ONNX models: a protobuf `ModelProto`.
//! Spec: <https://github.com/onnx/onnx/blob/main/docs/IR.md> and `onnx/onnx.proto`.
//!
//! [`read`] first walks the bytes with the bounded [`wire`] walker against the schema of the
//! hand-written prost structs in [`proto`], then decodes them with prost. Tensor payloads
//! are not declared in those structs, so prost steps over them without copying: a 2 GB
//! model with embedded weights costs its graph, not its weights. External data files are
//! named, never opened here.

pub mod ops;
pub mod proto;
pub mod wire;

/// prost's `Message` trait, so that callers can encode the structs (test vectors) without
/// depending on prost themselves.
pub use prost::Message;

use crate::error::{ParseError, Result};
use crate::limits::Limits;

pub use proto::ModelProto;
use wire::TopLevel;

/// `ModelProto` fields and their wire types: 1 `ir_version`, 2-4 producer and domain,
/// 5 `model_version`, 6 `doc_string`, 7 `graph`, 8 `opset_import`, 14 `metadata_props`,
/// 20 `training_info`, 25 `functions`, 26 `configuration`.
const MODEL_FIELDS: &[(u32, u8)] = &[
    (1, 0),
    (2, 2),
    (3, 2),
    (4, 2),
    (5, 0),
    (6, 2),
    (7, 2),
    (8, 2),
    (14, 2),
    (20, 2),
    (25, 2),
    (26, 2),
];

/// True when the top level of a protobuf message has the shape of a `ModelProto`: an
/// `ir_version`, a graph, opset imports or functions, and no field `ModelProto` lacks.
pub fn looks_like(top: &TopLevel) -> bool {
    top.has(1, 0) && (top.has(7, 2) || top.has(8, 2) || top.has(25, 2)) && top.only(MODEL_FIELDS)
}

/// `TensorProto` fields and wire types (`dims` unpacked as onnx writes them, or packed).
const TENSOR_FIELDS: &[(u32, u8)] = &[
    (1, 0),
    (1, 2),
    (2, 0),
    (3, 2),
    (4, 2),
    (5, 2),
    (6, 2),
    (7, 2),
    (8, 2),
    (9, 2),
    (10, 2),
    (11, 2),
    (12, 2),
    (13, 2),
    (14, 0),
    (16, 2),
];

/// True when the top level has the shape of a lone `TensorProto` (the `input_0.pb` and
/// `output_0.pb` files of ONNX test data): a data type and only tensor fields. Check
/// [`is_onnx_data`] first: a sequence's name looks like packed dims.
pub fn looks_like_tensor(top: &TopLevel) -> bool {
    top.has(2, 0) && top.only(TENSOR_FIELDS)
}

/// Reads a lone ONNX `TensorProto`.
pub fn read_tensor(data: &[u8], limits: &Limits) -> Result<proto::TensorProto> {
    wire::check(data, &proto::TENSOR, limits)?;
    proto::TensorProto::decode(data)
        .map_err(|e| ParseError::malformed(0, format!("ONNX TensorProto does not decode: {e}")))
}

/// `SequenceProto`, `MapProto` and `OptionalProto` (`onnx/onnx-data.proto`): 1 `name`,
/// 2 element or key type, then values.
const DATA_FIELDS: &[(u32, u8)] = &[
    (1, 2),
    (2, 0),
    (3, 0),
    (3, 2),
    (4, 2),
    (5, 2),
    (6, 2),
    (7, 2),
];

/// True when `data` is an ONNX `SequenceProto`, `MapProto` or `OptionalProto` (test data
/// of sequence, map and optional inputs): the top level fits and the whole message walks
/// cleanly as one of them.
pub fn is_onnx_data(data: &[u8], top: &TopLevel, limits: &Limits) -> bool {
    top.complete
        && top.has(2, 0)
        && top.only(DATA_FIELDS)
        && [&proto::SEQUENCE, &proto::MAP, &proto::OPTIONAL]
            .into_iter()
            .any(|schema| wire::check(data, schema, limits).is_ok())
}

/// Reads an ONNX `ModelProto`.
pub fn read(data: &[u8], limits: &Limits) -> Result<ModelProto> {
    wire::check(data, &proto::MODEL, limits)?;
    ModelProto::decode(data)
        .map_err(|e| ParseError::malformed(0, format!("ONNX ModelProto does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::proto::*;
    use super::*;

    pub(crate) fn tensor(name: &str, dims: &[i64]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: 1,
            name: name.into(),
            ..Default::default()
        }
    }

    fn model() -> ModelProto {
        let body = GraphProto {
            name: "then".into(),
            node: vec![NodeProto {
                op_type: "Identity".into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        ModelProto {
            ir_version: 9,
            producer_name: "test".into(),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 21,
            }],
            graph: Some(GraphProto {
                name: "main".into(),
                node: vec![NodeProto {
                    op_type: "If".into(),
                    attribute: vec![AttributeProto {
                        name: "then_branch".into(),
                        g: Some(body),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                initializer: vec![TensorProto {
                    data_location: proto::DATA_LOCATION_EXTERNAL,
                    external_data: vec![StringStringEntryProto {
                        key: "location".into(),
                        value: "w.bin".into(),
                    }],
                    ..tensor("w", &[2, 3])
                }],
                input: vec![ValueInfoProto {
                    name: "x".into(),
                    r#type: Some(TypeProto {
                        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                            elem_type: 1,
                            shape: Some(TensorShapeProto {
                                dim: vec![
                                    Dimension {
                                        value: Some(dimension::Value::DimParam("N".into())),
                                    },
                                    Dimension {
                                        value: Some(dimension::Value::DimValue(4)),
                                    },
                                ],
                            }),
                        })),
                    }),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_through_prost() {
        let m = model();
        let bytes = m.encode_to_vec();
        assert!(looks_like(&TopLevel::scan(&bytes)));
        let back = read(&bytes, &Limits::default()).unwrap();
        assert_eq!(back, m);
        let g = back.graph.unwrap();
        assert_eq!(g.initializer[0].external("location"), Some("w.bin"));
        assert_eq!(
            g.node[0].attribute[0].g.as_ref().unwrap().node[0].op_type,
            "Identity"
        );
    }

    #[test]
    fn raw_data_is_skipped_not_copied() {
        // A tensor with a 1 MiB raw_data field (9) and float_data (4): neither is declared.
        let mut t = tensor("big", &[262_144]).encode_to_vec();
        t.extend([0x4a, 0x80, 0x80, 0x40]); // field 9, length 1 MiB
        t.extend(std::iter::repeat_n(0u8, 1 << 20));
        let graph = [vec![0x2a], varint(t.len() as u64), t].concat(); // field 5
        let model = [vec![0x08, 0x09, 0x3a], varint(graph.len() as u64), graph].concat();
        let tally = wire::check(&model, &MODEL, &Limits::default()).unwrap();
        assert_eq!(tally.messages, 2);
        let m = read(&model, &Limits::default()).unwrap();
        assert_eq!(m.graph.unwrap().initializer[0].dims, vec![262_144]);
    }

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(v, &mut out);
        out
    }

    #[test]
    fn truncation_at_every_offset_is_an_error_not_a_panic() {
        let bytes = model().encode_to_vec();
        for cut in 0..bytes.len() {
            // A cut on a field boundary is a valid (smaller) message; anything else errs.
            let _ = read(&bytes[..cut], &Limits::default());
        }
        assert!(read(&bytes[..bytes.len() - 1], &Limits::default()).is_err());
    }

    #[test]
    fn many_empty_nodes_hit_the_limit_before_prost_allocates() {
        // 100 000 empty NodeProto (two bytes each) inside one graph.
        let nodes: Vec<u8> = std::iter::repeat_n([0x0a, 0x00], 100_000)
            .flatten()
            .collect();
        let model = [vec![0x08, 0x09, 0x3a], varint(nodes.len() as u64), nodes].concat();
        let limits = Limits {
            max_entries: 50_000,
            ..Limits::default()
        };
        let err = read(&model, &limits).unwrap_err();
        assert!(err.is_limit(), "{err}");
        assert_eq!(
            err.to_string(),
            "at byte 100004: protobuf messages is 50001, over the limit of 50000"
        );
    }

    #[test]
    fn deeply_nested_subgraphs_are_refused() {
        let mut g = GraphProto::default();
        for _ in 0..40 {
            g = GraphProto {
                node: vec![NodeProto {
                    op_type: "If".into(),
                    attribute: vec![AttributeProto {
                        g: Some(g),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
        }
        let m = ModelProto {
            ir_version: 9,
            graph: Some(g),
            ..Default::default()
        };
        let err = read(&m.encode_to_vec(), &Limits::default()).unwrap_err();
        assert!(err.is_limit(), "{err}");
    }

    #[test]
    fn lone_tensors_and_data_files() {
        // onnx writes dims unpacked: encode field by field like it does.
        let mut t = vec![0x08, 0x02, 0x08, 0x03, 0x10, 0x01, 0x42, 0x01, b'x'];
        t.extend([0x4a, 0x04, 0, 0, 0, 0]);
        let top = TopLevel::scan(&t);
        assert!(looks_like_tensor(&top));
        assert!(!looks_like(&top));
        assert!(!is_onnx_data(&t, &top, &Limits::default()));
        let back = read_tensor(&t, &Limits::default()).unwrap();
        assert_eq!(back.dims, vec![2, 3]);
        // SequenceProto {name "s", elem_type 1, tensor_values [tensor]}.
        let mut seq = vec![0x0a, 0x01, b's', 0x10, 0x01, 0x1a, t.len() as u8];
        seq.extend(&t);
        let top = TopLevel::scan(&seq);
        assert!(is_onnx_data(&seq, &top, &Limits::default()));
        // MapProto {name "m", key_type 7, keys [1, 2], values: SequenceProto {}}.
        let map = [
            0x0a, 0x01, b'm', 0x10, 0x07, 0x18, 0x01, 0x18, 0x02, 0x2a, 0x00,
        ];
        assert!(is_onnx_data(
            &map,
            &TopLevel::scan(&map),
            &Limits::default()
        ));
        // A model is neither.
        let m = model().encode_to_vec();
        let top = TopLevel::scan(&m);
        assert!(!looks_like_tensor(&top) && !is_onnx_data(&m, &top, &Limits::default()));
    }

    #[test]
    fn mutated_models_never_panic() {
        let base = model().encode_to_vec();
        for data in crate::mutate::mutations(&base, 0x2545_f491_4f6c_dd1d, 20_000) {
            let _ = read(&data, &Limits::default());
            let _ = read_tensor(&data, &Limits::default());
            let _ = is_onnx_data(&data, &TopLevel::scan(&data), &Limits::default());
        }
    }
}
