#!/usr/bin/env python3
"""Generate single-op (and few-op) ONNX test cases for Veil's operator tests.

Usage (from the repository root):

    python3 scripts/gen_op_cases.py

For every case this writes

    tests/data/ops/<case>/model.onnx   opset 18, ir_version 10, float32,
                                       static shapes, batch 1
    tests/data/ops/<case>/io.json      inputs and the outputs onnxruntime
                                       computes for them

and additionally ``tests/data/ops/VERSIONS.txt`` (tool versions) and
``tests/data/ops/README.md``.

io.json format (one line, no spaces):

    {"inputs":[{"name":"x","shape":[1,3,8,8],"data":[...]}],
     "outputs":[{"name":"y","shape":[...],"data":[...]}]}

``data`` is the flat row-major tensor; each value is a float32 written as
the shortest repr of the equivalent Python float (``float(np.float32(v))``).

Weights are initializers (constants); only the dynamic data are graph
inputs.  Every case draws from its own ``numpy.random.default_rng`` seeded
with a fixed per-case seed, so the output is byte-identical between runs
(given the same onnx / onnxruntime / numpy versions; model files are
serialized by onnx with no timestamps).

Expected outputs come from onnxruntime on the CPUExecutionProvider with all
graph optimizations disabled and one intra-op thread.

PyTorch: ``pytorch_export`` is produced only if ``import torch`` works and
``torch.onnx.export`` succeeds on CPU; otherwise the case is skipped with a
message (the hand-built ``pytorch_style`` case is always produced).  When the
committed data were generated torch did NOT work: the PyPI wheel
(torch 2.15.0, installed with ``--no-deps``) fails at import with
``ValueError: libcublasLt.so.*[0-9] not found`` because it preloads the
nvidia CUDA packages, and the CPU-only wheel index (download.pytorch.org) is
not reachable from the build machine.  torch was uninstalled again, so there
is no ``pytorch_export`` case; tests/data/ops/VERSIONS.txt records this.

The ``unknown_op`` case uses ``Erf``, an op Veil does not implement; Rust is
expected to reject the model.  onnxruntime can run it, so its outputs are
still stored.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "data" / "ops"
OPSET = 18
IR_VERSION = 10
FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def f32(rng: np.random.Generator, shape, lo=-2.0, hi=2.0) -> np.ndarray:
    """Uniform float32 tensor in [lo, hi)."""
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def distinct(rng: np.random.Generator, shape, lo=-2.0, hi=2.0) -> np.ndarray:
    """Float32 tensor whose values are all distinct and well separated.

    Used for pooling inputs so that no window has a (near) tie: the values
    are an evenly spaced grid over [lo, hi] in random order, plus a small
    jitter below half the grid spacing.
    """
    n = int(np.prod(shape))
    step = (hi - lo) / n
    grid = lo + step * (np.arange(n) + 0.5)
    jitter = rng.uniform(-0.25 * step, 0.25 * step, size=n)
    return (rng.permutation(grid) + jitter).astype(np.float32).reshape(shape)


def away_from_zero(rng: np.random.Generator, shape, lo=0.5, hi=2.0) -> np.ndarray:
    """Float32 values with magnitude in [lo, hi) and random sign."""
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32)


def init(name: str, arr: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(arr), name=name)


def vinfo(name: str, arr_or_shape, elem=FLOAT):
    shape = arr_or_shape.shape if isinstance(arr_or_shape, np.ndarray) else arr_or_shape
    return helper.make_tensor_value_info(name, elem, list(shape))


def build_model(case: str, nodes, inputs: dict, initializers: dict, outputs: list[str]):
    """Build an opset-18/ir-10 model.

    inputs: ordered {name: np.ndarray} of dynamic graph inputs (shape source).
    initializers: ordered {name: np.ndarray} of constants.
    outputs: graph output names; their shapes are inferred by onnx.
    """
    graph = helper.make_graph(
        nodes,
        case,
        [vinfo(n, a) for n, a in inputs.items()],
        # Output value infos are filled in after shape inference below.
        [helper.make_tensor_value_info(o, FLOAT, None) for o in outputs],
        initializer=[init(n, a) for n, a in initializers.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="veil-gen_op_cases",
    )
    model.ir_version = IR_VERSION
    # Give the outputs static shapes from shape inference.
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in model.graph.output:
        src = known[out.name]
        dims = src.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), f"{case}: output {out.name} not static"
        out.CopyFrom(vinfo(out.name, [d.dim_value for d in dims]))
    onnx.checker.check_model(model, full_check=True)
    return model


def run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def tensor_json(name: str, arr: np.ndarray) -> dict:
    arr = np.asarray(arr, dtype=np.float32)
    assert np.all(np.isfinite(arr)), name
    return {
        "name": name,
        "shape": [int(d) for d in arr.shape],
        "data": [float(np.float32(v)) for v in arr.reshape(-1)],
    }


def write_case(case: str, model: onnx.ModelProto, inputs: dict, store_outputs: bool = True):
    """Run the model in onnxruntime and write model.onnx + io.json."""
    for name, arr in inputs.items():
        assert arr.dtype == np.float32, (case, name)
        assert arr.size < 5000, (case, name, arr.size)
    outs = run_ort(model, inputs)
    out_names = [o.name for o in model.graph.output]
    for name, arr in zip(out_names, outs):
        assert arr.size < 5000, (case, name, arr.size)
    io = {
        "inputs": [tensor_json(n, a) for n, a in inputs.items()],
        "outputs": [tensor_json(n, a) for n, a in zip(out_names, outs)] if store_outputs else [],
    }
    d = OUT_DIR / case
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.onnx").write_bytes(model.SerializeToString())
    with open(d / "io.json", "w", encoding="utf-8", newline="\n") as fh:
        json.dump(io, fh, sort_keys=False, indent=None, separators=(",", ":"))
        fh.write("\n")
    shapes = ", ".join(f"{n}{list(a.shape)}" for n, a in zip(out_names, outs))
    print(f"  {case:24s} -> {shapes}")


def simple(case: str, op: str, inputs: dict, initializers: dict | None = None,
           node_inputs: list[str] | None = None, **attrs):
    """One-node model `y = op(node_inputs...)`."""
    initializers = initializers or {}
    if node_inputs is None:
        node_inputs = list(inputs) + list(initializers)
    node = helper.make_node(op, node_inputs, ["y"], name=f"{op.lower()}_0", **attrs)
    model = build_model(case, [node], inputs, initializers, ["y"])
    write_case(case, model, inputs)


# --------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def rng_for(name: str) -> np.random.Generator:
    # Stable per-case seed: index of the case in a fixed list would shift if
    # cases were added, so derive it from the name instead (sum of code
    # points times position; deterministic across Python runs, unlike hash()).
    seed = 20240 + sum((i + 1) * ord(c) for i, c in enumerate(name))
    return np.random.default_rng(seed)


# ---- convolution ----------------------------------------------------------

@case
def conv_basic():
    r = rng_for("conv_basic")
    x = f32(r, (1, 3, 8, 8))
    w, b = f32(r, (4, 3, 3, 3), -1, 1), f32(r, (4,), -1, 1)
    simple("conv_basic", "Conv", {"x": x}, {"w": w, "b": b},
           kernel_shape=[3, 3], pads=[1, 1, 1, 1])


@case
def conv_strided_asym_pads():
    r = rng_for("conv_strided_asym_pads")
    x = f32(r, (1, 3, 9, 8))
    w, b = f32(r, (4, 3, 3, 3), -1, 1), f32(r, (4,), -1, 1)
    simple("conv_strided_asym_pads", "Conv", {"x": x}, {"w": w, "b": b},
           kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 2])


@case
def conv_dilated():
    r = rng_for("conv_dilated")
    x = f32(r, (1, 3, 9, 9))
    w, b = f32(r, (4, 3, 3, 3), -1, 1), f32(r, (4,), -1, 1)
    simple("conv_dilated", "Conv", {"x": x}, {"w": w, "b": b},
           kernel_shape=[3, 3], dilations=[2, 2], pads=[1, 1, 1, 1])


@case
def conv_grouped():
    r = rng_for("conv_grouped")
    x = f32(r, (1, 4, 6, 6))
    w, b = f32(r, (6, 2, 3, 3), -1, 1), f32(r, (6,), -1, 1)
    simple("conv_grouped", "Conv", {"x": x}, {"w": w, "b": b},
           kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2)


@case
def conv_depthwise():
    r = rng_for("conv_depthwise")
    x = f32(r, (1, 4, 6, 6))
    w = f32(r, (4, 1, 3, 3), -1, 1)
    simple("conv_depthwise", "Conv", {"x": x}, {"w": w},
           kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4)


# ---- gemm / matmul --------------------------------------------------------

@case
def gemm():
    r = rng_for("gemm")
    a = f32(r, (1, 6))
    b = f32(r, (4, 6), -1, 1)          # [N, K], used transposed
    c = f32(r, (4,), -1, 1)            # bias [N]
    simple("gemm", "Gemm", {"a": a}, {"b": b, "c": c},
           transB=1, alpha=0.5, beta=2.0)


@case
def gemm_transa():
    r = rng_for("gemm_transa")
    a = f32(r, (6, 3))                 # [K, M], used transposed -> M = 3
    b = f32(r, (6, 4), -1, 1)          # [K, N]
    c = f32(r, (1, 4), -1, 1)
    simple("gemm_transa", "Gemm", {"a": a}, {"b": b, "c": c}, transA=1)


@case
def matmul_const():
    r = rng_for("matmul_const")
    x = f32(r, (1, 6))
    w = f32(r, (6, 4), -1, 1)
    simple("matmul_const", "MatMul", {"x": x}, {"w": w})


@case
def matmul_dynamic():
    r = rng_for("matmul_dynamic")
    a, b = f32(r, (2, 3)), f32(r, (3, 4))
    simple("matmul_dynamic", "MatMul", {"a": a, "b": b})


@case
def matmul_linear3d():
    r = rng_for("matmul_linear3d")
    x = f32(r, (1, 5, 6))
    w = f32(r, (6, 4), -1, 1)
    b = f32(r, (4,), -1, 1)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="matmul_0"),
        helper.make_node("Add", ["xw", "b"], ["y"], name="add_0"),
    ]
    model = build_model("matmul_linear3d", nodes, {"x": x}, {"w": w, "b": b}, ["y"])
    write_case("matmul_linear3d", model, {"x": x})


# ---- elementwise ----------------------------------------------------------

@case
def add_broadcast():
    r = rng_for("add_broadcast")
    a, b = f32(r, (1, 4, 3, 3)), f32(r, (1, 4, 1, 1))
    simple("add_broadcast", "Add", {"a": a, "b": b})


@case
def add_const():
    r = rng_for("add_const")
    x, c = f32(r, (1, 4, 3, 3)), f32(r, (1, 4, 1, 1))
    simple("add_const", "Add", {"x": x}, {"c": c})


@case
def sub():
    r = rng_for("sub")
    a, b = f32(r, (1, 4, 3, 3)), f32(r, (1, 4, 3, 3))
    simple("sub", "Sub", {"a": a, "b": b})


@case
def sub_const_left():
    r = rng_for("sub_const_left")
    x, c = f32(r, (1, 4, 3, 3)), f32(r, (1, 4, 1, 1))
    simple("sub_const_left", "Sub", {"x": x}, {"c": c}, node_inputs=["c", "x"])


@case
def mul():
    r = rng_for("mul")
    a, b = f32(r, (1, 4, 3, 3)), f32(r, (1, 4, 3, 3))
    simple("mul", "Mul", {"a": a, "b": b})


@case
def mul_const():
    r = rng_for("mul_const")
    x, c = f32(r, (1, 4, 3, 3)), f32(r, (1,))
    simple("mul_const", "Mul", {"x": x}, {"c": c})


@case
def div_const():
    r = rng_for("div_const")
    x, c = f32(r, (1, 4, 3, 3)), away_from_zero(r, (1, 4, 1, 1))
    simple("div_const", "Div", {"x": x}, {"c": c})


# ---- batch norm -----------------------------------------------------------

def bn_params(r, c):
    gamma = f32(r, (c,), 0.5, 1.5)
    beta = f32(r, (c,), -1, 1)
    mean = f32(r, (c,), -1, 1)
    var = f32(r, (c,), 0.25, 2.0)
    return {"gamma": gamma, "beta": beta, "mean": mean, "var": var}


@case
def batchnorm():
    r = rng_for("batchnorm")
    x = f32(r, (1, 4, 3, 3))
    simple("batchnorm", "BatchNormalization", {"x": x}, bn_params(r, 4), epsilon=1e-5)


@case
def conv_batchnorm():
    r = rng_for("conv_batchnorm")
    x = f32(r, (1, 3, 6, 6))
    inits = {"w": f32(r, (4, 3, 3, 3), -1, 1), "b": f32(r, (4,), -1, 1)}
    inits.update(bn_params(r, 4))
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv_out"], name="conv_0",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv_out", "gamma", "beta", "mean", "var"],
                         ["y"], name="bn_0", epsilon=1e-5),
    ]
    model = build_model("conv_batchnorm", nodes, {"x": x}, inits, ["y"])
    write_case("conv_batchnorm", model, {"x": x})


# ---- activations ----------------------------------------------------------

@case
def relu():
    simple("relu", "Relu", {"x": f32(rng_for("relu"), (1, 4, 3, 3))})


@case
def leaky_relu():
    simple("leaky_relu", "LeakyRelu", {"x": f32(rng_for("leaky_relu"), (1, 4, 3, 3))}, alpha=0.1)


@case
def clip():
    x = f32(rng_for("clip"), (1, 4, 3, 3))
    simple("clip", "Clip", {"x": x},
           {"min": np.array(-0.5, dtype=np.float32), "max": np.array(0.75, dtype=np.float32)})


@case
def sigmoid():
    simple("sigmoid", "Sigmoid", {"x": f32(rng_for("sigmoid"), (1, 4, 3, 3), -4, 4)})


@case
def tanh():
    simple("tanh", "Tanh", {"x": f32(rng_for("tanh"), (1, 4, 3, 3), -3, 3)})


@case
def softmax():
    simple("softmax", "Softmax", {"x": f32(rng_for("softmax"), (1, 10), -3, 3)}, axis=-1)


@case
def softmax_axis1():
    simple("softmax_axis1", "Softmax", {"x": f32(rng_for("softmax_axis1"), (1, 4, 3), -3, 3)}, axis=1)


# ---- pad ------------------------------------------------------------------

@case
def pad_constant():
    x = f32(rng_for("pad_constant"), (1, 2, 4, 4))
    # pads = [x1_begin, x2_begin, x3_begin, x4_begin, x1_end, ...]:
    # H: 1 before, 2 after; W: 2 before, 0 after.
    simple("pad_constant", "Pad", {"x": x},
           {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 0], dtype=np.int64),
            "constant_value": np.array(0.5, dtype=np.float32)},
           mode="constant")


@case
def pad_channels():
    x = f32(rng_for("pad_channels"), (1, 2, 3, 3))
    # Channel axis only, 2 zero channels appended at the end, like the
    # residual shortcut pads in models/age-v1.onnx ([0,0,0,0, 0,64,0,0]).
    # constant_value is omitted (defaults to 0).
    simple("pad_channels", "Pad", {"x": x},
           {"pads": np.array([0, 0, 0, 0, 0, 2, 0, 0], dtype=np.int64)},
           mode="constant")


# ---- pooling --------------------------------------------------------------

@case
def maxpool():
    x = distinct(rng_for("maxpool"), (1, 2, 9, 9))
    simple("maxpool", "MaxPool", {"x": x},
           kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


@case
def maxpool_basic():
    x = distinct(rng_for("maxpool_basic"), (1, 2, 6, 6))
    simple("maxpool_basic", "MaxPool", {"x": x}, kernel_shape=[2, 2], strides=[2, 2])


@case
def avgpool():
    x = distinct(rng_for("avgpool"), (1, 2, 6, 6))
    simple("avgpool", "AveragePool", {"x": x}, kernel_shape=[2, 2], strides=[2, 2])


@case
def avgpool_pads_exclude():
    x = distinct(rng_for("avgpool_pads_exclude"), (1, 2, 7, 7))
    simple("avgpool_pads_exclude", "AveragePool", {"x": x},
           kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)


@case
def avgpool_pads_include():
    x = distinct(rng_for("avgpool_pads_include"), (1, 2, 7, 7))
    simple("avgpool_pads_include", "AveragePool", {"x": x},
           kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)


@case
def global_avgpool():
    x = f32(rng_for("global_avgpool"), (1, 3, 4, 5))
    simple("global_avgpool", "GlobalAveragePool", {"x": x})


# ---- shape / data movement -----------------------------------------------

@case
def flatten():
    simple("flatten", "Flatten", {"x": f32(rng_for("flatten"), (1, 2, 3, 4))}, axis=1)


@case
def reshape():
    x = f32(rng_for("reshape"), (1, 2, 3, 4))
    # 0 copies dim 0 (=1), -1 is inferred (=6): output [1, 6, 4].
    simple("reshape", "Reshape", {"x": x}, {"shape": np.array([0, -1, 4], dtype=np.int64)})


@case
def transpose():
    x = f32(rng_for("transpose"), (1, 2, 3, 4))
    simple("transpose", "Transpose", {"x": x}, perm=[0, 2, 3, 1])


@case
def concat():
    r = rng_for("concat")
    a, b = f32(r, (1, 2, 3, 3)), f32(r, (1, 3, 3, 3))
    simple("concat", "Concat", {"a": a, "b": b}, axis=1)


@case
def identity():
    simple("identity", "Identity", {"x": f32(rng_for("identity"), (1, 4, 3, 3))})


@case
def dropout():
    x = f32(rng_for("dropout"), (1, 4, 3, 3))
    # Opset 18 Dropout: ratio is an (optional) input; training_mode absent
    # means inference, so the output equals the input.  Only the first
    # output (no mask) is produced.
    simple("dropout", "Dropout", {"x": x}, {"ratio": np.array(0.5, dtype=np.float32)})


@case
def constant():
    r = rng_for("constant")
    x = f32(r, (1, 4, 3, 3))
    c = f32(r, (1, 4, 1, 1))
    nodes = [
        helper.make_node("Constant", [], ["c"], name="constant_0", value=init("c_value", c)),
        helper.make_node("Add", ["x", "c"], ["y"], name="add_0"),
    ]
    model = build_model("constant", nodes, {"x": x}, {}, ["y"])
    write_case("constant", model, {"x": x})


# ---- a PyTorch-exporter-shaped graph, built by hand -----------------------

@case
def pytorch_style():
    """Conv -> Relu -> x.view(x.size(0), -1) -> Linear, the way
    torch.onnx.export (TorchScript exporter) spells the view: Shape ->
    Gather(0) -> Unsqueeze -> Concat([-1]) -> Reshape.  The Gather index and
    Unsqueeze axes come from Constant nodes (as the exporter emits them),
    the Linear weight passes through an Identity (as the exporter emits for
    shared/tied parameters)."""
    r = rng_for("pytorch_style")
    x = f32(r, (1, 2, 4, 4))
    inits = {
        "conv.weight": f32(r, (3, 2, 3, 3), -1, 1),
        "conv.bias": f32(r, (3,), -1, 1),
        "fc.weight.orig": f32(r, (5, 48), -0.5, 0.5),
        "fc.bias": f32(r, (5,), -1, 1),
        "/Constant_2_output_0": np.array([-1], dtype=np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["/conv/Conv_output_0"],
                         name="/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["/conv/Conv_output_0"], ["/relu/Relu_output_0"], name="/relu/Relu"),
        helper.make_node("Shape", ["/relu/Relu_output_0"], ["/Shape_output_0"], name="/Shape"),
        helper.make_node("Constant", [], ["/Constant_output_0"], name="/Constant",
                         value=init("c0", np.array(0, dtype=np.int64))),
        helper.make_node("Gather", ["/Shape_output_0", "/Constant_output_0"], ["/Gather_output_0"],
                         name="/Gather", axis=0),
        helper.make_node("Constant", [], ["/Constant_1_output_0"], name="/Constant_1",
                         value=init("c1", np.array([0], dtype=np.int64))),
        helper.make_node("Unsqueeze", ["/Gather_output_0", "/Constant_1_output_0"],
                         ["/Unsqueeze_output_0"], name="/Unsqueeze"),
        helper.make_node("Concat", ["/Unsqueeze_output_0", "/Constant_2_output_0"],
                         ["/Concat_output_0"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["/relu/Relu_output_0", "/Concat_output_0"],
                         ["/Reshape_output_0"], name="/Reshape"),
        helper.make_node("Identity", ["fc.weight.orig"], ["fc.weight"], name="/Identity"),
        helper.make_node("Gemm", ["/Reshape_output_0", "fc.weight", "fc.bias"], ["y"],
                         name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1),
    ]
    model = build_model("pytorch_style", nodes, {"x": x}, inits, ["y"])
    write_case("pytorch_style", model, {"x": x})


# ---- an op Veil does not support -----------------------------------------

@case
def unknown_op():
    x = f32(rng_for("unknown_op"), (1, 4, 3, 3))
    simple("unknown_op", "Erf", {"x": x})


# ---- real PyTorch export (optional) --------------------------------------

TORCH_STATUS = "not attempted"


def pytorch_export():
    """Export a small real nn.Module with torch.onnx.export (TorchScript
    exporter, dynamo=False, opset 18) and store it as exported, except that
    ir_version is capped at 10 and producer_version is cleared."""
    global TORCH_STATUS
    try:
        import io as _io
        import torch
        from torch import nn
    except Exception as e:  # pragma: no cover - depends on environment
        TORCH_STATUS = f"unavailable ({type(e).__name__}: {e})"
        print(f"  pytorch_export           -> skipped: torch {TORCH_STATUS}")
        return

    torch.manual_seed(1234)
    torch.use_deterministic_algorithms(True)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2d(2, 2)
            self.fc = nn.Linear(4 * 4 * 4, 5)

        def forward(self, x):
            x = self.pool(self.relu(self.bn(self.conv(x))))
            x = x.view(x.size(0), -1)
            return self.fc(x)

    net = Net()
    # Give BatchNorm non-trivial running statistics, from the seeded rng.
    r = rng_for("pytorch_export")
    with torch.no_grad():
        net.bn.weight.copy_(torch.from_numpy(f32(r, (4,), 0.5, 1.5)))
        net.bn.bias.copy_(torch.from_numpy(f32(r, (4,), -1, 1)))
        net.bn.running_mean.copy_(torch.from_numpy(f32(r, (4,), -1, 1)))
        net.bn.running_var.copy_(torch.from_numpy(f32(r, (4,), 0.25, 2.0)))
    net.eval()
    x = f32(r, (1, 3, 8, 8))
    buf = _io.BytesIO()
    try:
        torch.onnx.export(net, (torch.from_numpy(x),), buf, opset_version=OPSET,
                          input_names=["x"], output_names=["y"], dynamo=False,
                          do_constant_folding=False)
    except Exception as e:  # pragma: no cover
        TORCH_STATUS = f"torch {torch.__version__} imported but export failed ({type(e).__name__}: {e})"
        print(f"  pytorch_export           -> skipped: {TORCH_STATUS}")
        return
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = min(model.ir_version, IR_VERSION)
    model.producer_version = ""  # keep bytes independent of the torch build string
    onnx.checker.check_model(model, full_check=True)
    write_case("pytorch_export", model, {"x": x})
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    ort_out = run_ort(model, {"x": x})[0]
    assert np.allclose(ref, ort_out, atol=1e-4), (ref, ort_out)
    TORCH_STATUS = f"used: torch {torch.__version__}"


# --------------------------------------------------------------------------

README = """\
# Operator test cases

Generated by `python3 scripts/gen_op_cases.py` (seeded, deterministic; do not
edit by hand). Each `<case>/` holds `model.onnx` (opset 18, ir_version 10,
float32, static shapes) and `io.json`:
`{{"inputs":[{{"name","shape","data"}}...],"outputs":[...]}}` with `data` the
flat row-major float32 values; outputs are onnxruntime's (CPU provider, graph
optimizations off). `unknown_op` uses `Erf`, which Veil is expected to reject.
Tool versions: see `VERSIONS.txt` ({versions}).
"""


def versions_text() -> str:
    return (
        f"python {sys.version.split()[0]}\n"
        f"numpy {np.__version__}\n"
        f"onnx {onnx.__version__}\n"
        f"onnxruntime {ort.__version__}\n"
        f"torch {TORCH_STATUS}\n"
    )


def main():
    if OUT_DIR.exists():
        # Remove stale case directories so renamed/removed cases disappear.
        for child in OUT_DIR.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"writing cases to {OUT_DIR.relative_to(ROOT)}")
    for fn in CASES:
        fn()
    if os.environ.get("VEIL_SKIP_TORCH") == "1":
        global TORCH_STATUS
        TORCH_STATUS = "skipped (VEIL_SKIP_TORCH=1)"
    else:
        pytorch_export()
    vt = versions_text()
    (OUT_DIR / "VERSIONS.txt").write_text(vt, encoding="utf-8")
    short = ", ".join(line for line in vt.strip().splitlines() if not line.startswith("torch"))
    (OUT_DIR / "README.md").write_text(README.format(versions=short), encoding="utf-8")
    print(vt, end="")


if __name__ == "__main__":
    main()
