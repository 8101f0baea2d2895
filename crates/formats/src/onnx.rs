//! (onnx reader: see the module owner's work)
