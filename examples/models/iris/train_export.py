#!/usr/bin/env python3
"""Train the demo model and export it to ONNX, with golden outputs for fixed inputs.

The model is a multinomial logistic regression on the Iris data set that scikit-learn
bundles (no download). The ONNX graph is built by hand with onnx.helper from the fitted
coefficients, using only core operators every engine supports:

    probabilities = Softmax(MatMul(input, W) + b, axis=1)

    input          float32 [N, 4]   sepal length, sepal width, petal length, petal width (cm)
    probabilities  float32 [N, 3]   setosa, versicolor, virginica

Everything is deterministic: the same library versions (tests/requirements.txt) give
byte-identical files. Run from the repository root:

    .venv/bin/python examples/models/iris/train_export.py
"""

import json
import pathlib

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

HERE = pathlib.Path(__file__).resolve().parent
OPSET = 13


def train():
    data = load_iris()
    x = data.data.astype(np.float64)
    y = data.target
    clf = LogisticRegression(max_iter=1000, C=1.0)
    clf.fit(x, y)
    accuracy = float(clf.score(x, y))
    return data, clf, accuracy


def build_graph(clf, class_names):
    weights = clf.coef_.T.astype(np.float32)  # [4, 3]
    bias = clf.intercept_.astype(np.float32)  # [3]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])
    nodes = [
        helper.make_node("MatMul", ["input", "W"], ["logits_nobias"], name="matmul"),
        helper.make_node("Add", ["logits_nobias", "b"], ["logits"], name="add_bias"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "iris_logistic_regression",
        [x],
        [y],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(
        graph,
        producer_name="warden-examples",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = 8
    model.doc_string = (
        "Multinomial logistic regression on the Iris data set (scikit-learn "
        + sklearn.__version__
        + "). Input float32 [N,4] in cm; output class probabilities float32 [N,3] for "
        + ", ".join(class_names)
        + "."
    )
    onnx.helper.set_model_props(model, {"classes": ",".join(class_names)})
    onnx.checker.check_model(model, full_check=True)
    return model, weights, bias


def reference(inputs, weights, bias):
    """The graph's computation in float32 numpy: what any correct engine must output."""
    logits = inputs.astype(np.float32) @ weights + bias
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def main():
    data, clf, accuracy = train()
    class_names = [str(n) for n in data.target_names]
    model, weights, bias = build_graph(clf, class_names)
    (HERE / "model.onnx").write_bytes(model.SerializeToString())

    # Fixed inputs: the first sample of each class, two in between, and one out of range.
    inputs = np.array(
        [
            data.data[0],
            data.data[50],
            data.data[100],
            data.data[70],
            data.data[133],
            [0.0, 0.0, 0.0, 0.0],
            [10.0, 1.0, 12.0, 5.0],
        ],
        dtype=np.float32,
    )
    outputs = reference(inputs, weights, bias)
    # The hand-built graph must agree with scikit-learn's own probabilities.
    sk = clf.predict_proba(inputs.astype(np.float64))
    if not np.allclose(sk, outputs, atol=1e-5):
        raise SystemExit("the ONNX graph disagrees with scikit-learn")

    golden = {
        "model": "model.onnx",
        "tolerance": 1e-5,
        "classes": class_names,
        "inputs": {"name": "input", "shape": list(inputs.shape), "data": [float(v) for v in inputs.ravel()]},
        "outputs": {
            "name": "probabilities",
            "shape": list(outputs.shape),
            "data": [float(v) for v in outputs.ravel()],
        },
        "training_accuracy": accuracy,
        "produced_with": {
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "onnx": onnx.__version__,
        },
    }
    (HERE / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    print(f"model.onnx: {len(model.SerializeToString())} bytes, training accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
