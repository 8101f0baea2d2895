"""The peer of bench/runtime.sh: the demo model served the usual Python way.

A FastAPI app that loads examples/models/iris/model.onnx with onnxruntime (CPU execution
provider) and answers the KServe v2 / Open Inference Protocol JSON API for it:

    POST /v2/models/iris/infer
      {"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}
    -> {"model_name":"iris","outputs":[{"name":"probabilities","shape":[1,3],
        "datatype":"FP32","data":[0.98165...,0.01834...,1.4395e-08]}]}
    GET  /v2/health/ready, /v2/health/live -> 200

The request body is validated with pydantic models (FastAPI's own way): exactly one input
tensor named "input", datatype FP32, shape [N, 4] with N >= 1, and N * 4 numbers. An
invalid body gets 400 with {"error": "..."} as the protocol asks (FastAPI's default 422
is remapped).

Run it as its documentation recommends for production (bench/runtime.sh does this):

    bench/.venv-runtime-peer/bin/uvicorn server:app --app-dir bench/runtime-peer \
        --host 127.0.0.1 --port 8001 --workers 2 --loop uvloop --http httptools \
        --no-access-log --log-level warning

one worker process per core, no reload, no access log. Each worker runs onnxruntime with
one intra-op thread so that the two workers do not fight over the two cores.

What it does not do, and Warden does on every request: TLS 1.3, API-key authentication
(the peer ignores the Authorization header) and a ledger record. All of that is work the
peer is spared, so the comparison favours the peer.

IRIS_MODEL overrides the model path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

MODEL_NAME = "iris"
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
FEATURES = 4

_default_model = Path(__file__).resolve().parents[2] / "examples/models/iris/model.onnx"
MODEL_PATH = Path(os.environ.get("IRIS_MODEL", _default_model))


def _load_model() -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(MODEL_PATH), sess_options=opts, providers=["CPUExecutionProvider"])


model = _load_model()


class InferInput(BaseModel):
    name: Literal["input"]
    shape: tuple[Annotated[int, Field(ge=1)], Literal[4]]
    datatype: Literal["FP32"]
    data: list[float]
    parameters: dict[str, Any] | None = None

    @model_validator(mode="after")
    def data_fills_shape(self) -> InferInput:
        rows, cols = self.shape
        if len(self.data) != rows * cols:
            raise ValueError(f"shape {list(self.shape)} needs {rows * cols} values, data has {len(self.data)}")
        return self


class InferRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: Annotated[list[InferInput], Field(min_length=1, max_length=1)]


class InferOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Literal["FP32"]
    data: list[float]


class InferResponse(BaseModel):
    model_name: str
    id: str | None = None
    outputs: list[InferOutput]


app = FastAPI(title="iris (onnxruntime)", docs_url=None, redoc_url=None, openapi_url=None)


@app.exception_handler(RequestValidationError)
async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    msgs = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
    )
    return JSONResponse(status_code=400, content={"error": msgs})


@app.get("/v2/health/ready")
@app.get("/v2/health/live")
async def health() -> dict[str, bool]:
    return {"ready": True}


# `async def` with the model run inline: one inference of this model takes microseconds,
# less than handing it to FastAPI's thread pool (what a plain `def` endpoint does) would.
@app.post(f"/v2/models/{MODEL_NAME}/infer", response_model_exclude_none=True)
async def infer(req: InferRequest) -> InferResponse:
    tensor = req.inputs[0]
    x = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
    (probs,) = model.run([OUTPUT_NAME], {INPUT_NAME: x})
    return InferResponse(
        model_name=MODEL_NAME,
        id=req.id,
        outputs=[
            InferOutput(
                name=OUTPUT_NAME,
                shape=list(probs.shape),
                datatype="FP32",
                data=probs.ravel().tolist(),
            )
        ],
    )
