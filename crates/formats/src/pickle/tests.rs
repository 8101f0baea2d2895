//! Emulator tests over hand-built streams: good, hostile, truncated, oversized.

use super::*;
use crate::error::ParseErrorKind;

/// A tiny pickle assembler.
#[derive(Default)]
struct P(Vec<u8>);

impl P {
    fn new() -> Self {
        Self::default()
    }
    fn proto(mut self, p: u8) -> Self {
        self.0.extend([0x80, p]);
        self
    }
    fn op(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn global(self, m: &str, n: &str) -> Self {
        self.raw(format!("c{m}\n{n}\n").as_bytes())
    }
    fn s(mut self, s: &str) -> Self {
        self.0.push(0x8c);
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn binunicode(mut self, s: &[u8]) -> Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s);
        self
    }
    fn int(mut self, i: u8) -> Self {
        self.0.extend([b'K', i]);
        self
    }
    fn stack_global(self, m: &str, n: &str) -> Self {
        self.s(m).s(n).op(0x93)
    }
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn trace(data: &[u8]) -> Trace<'_> {
    parse(data, &Limits::default())
}

fn calls(t: &Trace<'_>) -> Vec<String> {
    t.calls.iter().map(|c| t.render_call(c)).collect()
}

#[test]
fn protocol0_os_system() {
    let p = P::new().raw(b"cposix\nsystem\n(S'id'\ntR.");
    let t = trace(p.bytes());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.globals.len(), 1);
    assert_eq!(t.globals[0].path(), "posix.system");
    assert!(t.globals[0].uses.called);
    assert_eq!(calls(&t), ["posix.system('id')"]);
    assert_eq!(t.end, p.bytes().len() as u64);
}

#[test]
fn fix_imports_applies_below_protocol_3_only() {
    let t = trace(b"c__builtin__\neval\n(S'1+1'\ntR.");
    assert_eq!(t.globals[0].path(), "builtins.eval");
    assert_eq!(
        t.globals[0].written,
        Some(("__builtin__".to_string(), "eval".to_string()))
    );
    let p = P::new()
        .proto(2)
        .global("copy_reg", "_reconstructor")
        .op(b'.');
    assert_eq!(trace(p.bytes()).globals[0].path(), "copyreg._reconstructor");
    let p = P::new().proto(3).global("__builtin__", "eval").op(b'.');
    assert_eq!(trace(p.bytes()).globals[0].path(), "__builtin__.eval");
}

#[test]
fn stack_global_names_from_the_memo() {
    // Module and name memoized, then fetched back with BINGET for STACK_GLOBAL.
    let p = P::new()
        .proto(4)
        .s("os")
        .op(0x94)
        .s("system")
        .op(0x94)
        .op(b'0')
        .op(b'0')
        .raw(b"h\x00h\x01")
        .op(0x93)
        .s("id")
        .op(0x85)
        .op(b'R')
        .op(b'.');
    let t = trace(p.bytes());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(calls(&t), ["os.system('id')"]);
    assert_eq!(t.globals[0].opcode, "STACK_GLOBAL");
}

#[test]
fn getattr_import_chain_renders_nested_results() {
    let p = P::new()
        .proto(4)
        .stack_global("builtins", "getattr")
        .stack_global("builtins", "__import__")
        .s("os")
        .op(0x85)
        .op(b'R')
        .s("system")
        .op(0x86)
        .op(b'R')
        .s("id")
        .op(0x85)
        .op(b'R')
        .op(b'.');
    let t = trace(p.bytes());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(
        calls(&t),
        [
            "builtins.__import__('os')",
            "builtins.getattr(<result of builtins.__import__(...)>, 'system')",
            "<result of builtins.getattr(...)>('id')",
        ]
    );
    // A global passed as an argument renders as <module.name>.
    let p = P::new()
        .proto(4)
        .stack_global("builtins", "getattr")
        .stack_global("builtins", "__import__")
        .s("system")
        .op(0x86)
        .op(b'R')
        .op(b'.');
    assert_eq!(
        calls(&trace(p.bytes())),
        ["builtins.getattr(<builtins.__import__>, 'system')"]
    );
}

#[test]
fn a_stream_broken_after_reduce_keeps_the_call() {
    let full = b"cposix\nsystem\n(S'id'\ntR.";
    let cut = &full[..full.len() - 1];
    let t = trace(cut);
    assert_eq!(calls(&t), ["posix.system('id')"]);
    let err = t.error.unwrap();
    assert!(matches!(err.kind, ParseErrorKind::Truncated { .. }));
    assert_eq!(err.offset, cut.len() as u64);

    let mut bad = full[..full.len() - 1].to_vec();
    bad.push(0xff);
    let t = trace(&bad);
    assert_eq!(calls(&t), ["posix.system('id')"]);
    let err = t.error.unwrap();
    assert_eq!(err.offset, bad.len() as u64 - 1);
    assert!(err.to_string().contains("unknown opcode 0xff"), "{err}");
}

#[test]
fn stack_discipline_follows_python() {
    // POP below a MARK pops the mark.
    let t = trace(b"N(0.");
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.result, Some(Value::None));
    // The fence: REDUCE cannot reach below the MARK.
    let t = trace(b"cos\nsystem\n(R.");
    assert!(t.error.unwrap().to_string().contains("underflow"));
    assert!(t.calls.is_empty());
    // POP_MARK discards everything above the mark.
    let t = trace(b"N(I1\nI2\n1.");
    assert_eq!(t.result, Some(Value::None));
    assert!(trace(b"1").error.is_some());
    assert!(trace(b".").error.unwrap().to_string().contains("underflow"));
    assert!(trace(b"t.").error.unwrap().to_string().contains("MARK"));
    assert!(trace(b"\x80\x02\x85.").error.is_some());
}

#[test]
fn memo_misses_and_bad_puts_stop() {
    assert!(trace(b"\x80\x02h\x05.")
        .error
        .unwrap()
        .to_string()
        .contains("memo"));
    assert!(trace(b"Np-1\n.")
        .error
        .unwrap()
        .to_string()
        .contains("negative"));
    let t = trace(b"Np7\n0g7\n.");
    assert!(t.error.is_none());
    assert_eq!(t.result, Some(Value::None));
}

#[test]
fn inst_obj_newobj_and_newobj_ex() {
    let t = trace(b"(S'ls'\nisubprocess\ncheck_output\n.");
    assert_eq!(calls(&t), ["subprocess.check_output('ls')"]);
    assert_eq!(t.globals[0].opcode, "INST");
    assert!(t.globals[0].uses.called);

    let t = trace(b"(cos\nsystem\nS'id'\no.");
    assert_eq!(calls(&t), ["os.system('id')"]);
    assert_eq!(t.calls[0].kind, CallKind::Obj);

    let p = P::new()
        .proto(2)
        .global("sklearn.linear_model._logistic", "LogisticRegression")
        .op(b')')
        .op(0x81)
        .op(b'}')
        .op(b'b')
        .op(b'.');
    let t = trace(p.bytes());
    assert!(t.error.is_none());
    assert!(t.globals[0].uses.instantiated && !t.globals[0].uses.called);
    assert_eq!(t.calls[0].kind, CallKind::NewObj);
    assert_eq!(t.calls[0].state.map(|s| t.render(s)), Some("{}".into()));

    let p = P::new()
        .proto(4)
        .stack_global("subprocess", "Popen")
        .s("id")
        .op(0x85)
        .op(b'}')
        .op(0x92)
        .op(b'.');
    let t = trace(p.bytes());
    assert_eq!(
        calls(&t),
        ["subprocess.Popen.__new__(subprocess.Popen, 'id', **{})"]
    );
    assert_eq!(t.calls[0].kind, CallKind::NewObjEx);
}

#[test]
fn build_on_a_global_and_container_methods() {
    // BUILD straight onto an imported object (sets attributes on it).
    let t = trace(b"cbuiltins\nprint\n}b.");
    assert!(t.globals[0].uses.built);
    // SETITEM on an imported object: os.environ['X'] = 'y'.
    let t = trace(b"cos\nenviron\nS'X'\nS'y'\ns.");
    assert!(t.globals[0].uses.mutated);
    assert_eq!(calls(&t), ["<os.environ>.__setitem__('X', 'y')"]);
    // APPEND on a plain list is not a call.
    let t = trace(b"]N.");
    assert!(t.calls.is_empty());
    let t = trace(b"\x80\x02]K\x01a.");
    assert!(t.calls.is_empty());
    assert_eq!(t.render(t.result.unwrap()), "[1]");
}

#[test]
fn memo_shares_objects_like_python() {
    // l = []; memo[0] = l; l.append(1); get memo[0] -> [1]
    let t = trace(b"\x80\x02]q\x00K\x01a0h\x00.");
    assert_eq!(t.render(t.result.unwrap()), "[1]");
    // A list appended into itself: a cycle, rendered boundedly.
    let t = trace(b"\x80\x02]q\x00h\x00a.");
    let r = t.render(t.result.unwrap());
    assert!(r.starts_with("[[[[") && r.len() < 300, "{r}");
}

#[test]
fn persistent_ids_and_extensions() {
    let p = P::new()
        .proto(2)
        .op(b'(')
        .s("storage")
        .global("torch", "FloatStorage")
        .s("0")
        .s("cpu")
        .int(6)
        .op(b't')
        .op(b'Q')
        .op(b'.');
    let t = trace(p.bytes());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.persistent_ids.len(), 1);
    assert_eq!(
        t.render(t.persistent_ids[0].pid),
        "('storage', <torch.FloatStorage>, '0', 'cpu', 6)"
    );
    let t = trace(b"Pfoo\n.");
    assert_eq!(t.render(t.persistent_ids[0].pid), "'foo'");
    let t = trace(b"\x80\x02\x82\x01\x83\x02\x01\x84\xff\xff\xff\x7f\x86\x86.");
    assert!(t.error.is_none());
    let codes: Vec<i64> = t.extensions.iter().map(|e| e.code).collect();
    assert_eq!(codes, [1, 0x102, 0x7fff_ffff]);
}

#[test]
fn every_value_form_decodes() {
    let p = P::new()
        .proto(5)
        .op(b'(')
        .raw(b"I42\nI00\nL123L\nF1.5\nS'a\\nb'\nVcaf\\u00e9\n")
        .raw(b"J\xff\xff\xff\xffM\x01\x01\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01")
        .raw(b"\x8b\x01\x00\x00\x00\x05G?\xf8\x00\x00\x00\x00\x00\x00")
        .raw(b"T\x01\x00\x00\x00xU\x01yC\x01zB\x01\x00\x00\x00w")
        .raw(b"\x8d\x01\x00\x00\x00\x00\x00\x00\x00u\x8e\x01\x00\x00\x00\x00\x00\x00\x00v")
        .raw(b"\x96\x01\x00\x00\x00\x00\x00\x00\x00q\x98\x88\x89N")
        .raw(b"\x8f(K\x01\x90(K\x02\x91")
        .op(b'l')
        .op(b'.');
    let t = trace(p.bytes());
    assert!(t.error.is_none(), "{:?}", t.error);
    let items: Vec<String> = t
        .items(t.result.unwrap())
        .unwrap()
        .iter()
        .map(|v| t.render(*v))
        .collect();
    assert_eq!(
        items,
        [
            "42",
            "False",
            "123",
            "1.5",
            "'a\\nb'",
            "'café'",
            "-1",
            "257",
            "18446744073709551616",
            "5",
            "1.5",
            "'x'",
            "'y'",
            "b'z'",
            "b'w'",
            "'u'",
            "b'v'",
            "bytearray(b'q')",
            "True",
            "False",
            "None",
            "{1}",
            "frozenset({2})"
        ]
    );
    let big = P::new().binunicode(b"\xed\xa0\x80").op(b'.');
    assert_eq!(trace(big.bytes()).result, Some(Value::Str(b"\xed\xa0\x80")));
}

#[test]
fn hostile_lengths_do_not_allocate() {
    // BINBYTES8 claiming 2^63 bytes: a truncation error, not an allocation.
    let t = trace(b"\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x80");
    assert!(matches!(
        t.error.unwrap().kind,
        ParseErrorKind::Truncated { .. }
    ));
    let t = trace(b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xffab");
    assert!(t.error.is_some());
    assert!(trace(b"\x80\x02\x8b\xff\xff\xff\xff").error.is_some());
    assert!(trace(b"T\xff\xff\xff\xff")
        .error
        .unwrap()
        .to_string()
        .contains("negative"));
    // FRAME claiming more than is there: noted, and reading goes on.
    let t = trace(b"\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00N.");
    assert!(t.error.is_none());
    assert_eq!(t.anomalies.len(), 1);
}

#[test]
fn limits_are_errors() {
    let limits = Limits {
        max_pickle_depth: 10,
        ..Limits::default()
    };
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 5000));
    deep.extend(std::iter::repeat_n(b'a', 4999));
    deep.push(b'.');
    let t = parse(&deep, &limits);
    assert!(t.error.unwrap().is_limit());

    let mut tuples = b"\x80\x02N".to_vec();
    tuples.extend(std::iter::repeat_n(0x85, 100));
    tuples.push(b'.');
    let t = parse(&tuples, &limits);
    assert!(t.error.unwrap().is_limit());

    let limits = Limits {
        max_pickle_values: 1000,
        ..Limits::default()
    };
    let mut dups = b"\x80\x02N".to_vec();
    dups.extend(std::iter::repeat_n(b'2', 2000));
    dups.push(b'.');
    let t = parse(&dups, &limits);
    assert!(t.error.unwrap().is_limit());

    // Memo keys with gaps count the gap.
    let mut gaps = b"\x80\x02N".to_vec();
    for i in 0..10u32 {
        gaps.push(b'r');
        gaps.extend((i * 4000).to_le_bytes());
    }
    gaps.push(b'.');
    let t = parse(&gaps, &limits);
    assert!(t.error.unwrap().is_limit());

    let limits = Limits {
        max_pickle_ops: 100,
        ..Limits::default()
    };
    let t = parse(&dups, &limits);
    let err = t.error.unwrap();
    assert!(
        err.is_limit() && err.to_string().contains("opcodes"),
        "{err}"
    );
}

#[test]
fn copies_of_memoized_values_are_charged() {
    // One 1000-element tuple passed to 2000 calls: 2M argument copies.
    let limits = Limits {
        max_pickle_values: 100_000,
        ..Limits::default()
    };
    let mut data = b"\x80\x02(".to_vec();
    data.extend(std::iter::repeat_n(b'N', 1000));
    data.extend_from_slice(b"tq\x00");
    for _ in 0..2000 {
        data.extend_from_slice(b"cm\nf\nh\x00R0");
    }
    data.extend_from_slice(b"N.");
    let t = parse(&data, &limits);
    assert!(t.error.unwrap().is_limit());
    // A giant memoized name is kept as a bounded, visibly malformed prefix.
    let big = "x".repeat(100_000);
    let mut data = b"\x80\x04X".to_vec();
    data.extend((big.len() as u32).to_le_bytes());
    data.extend_from_slice(big.as_bytes());
    data.extend_from_slice(b"q\x00");
    for _ in 0..100 {
        data.extend_from_slice(b"h\x00h\x00\x930");
    }
    data.extend_from_slice(b"N.");
    let t = parse(&data, &Limits::default());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.globals.len(), 100);
    assert!(t
        .globals
        .iter()
        .all(|g| g.module.len() <= 4100 && g.module.ends_with('…')));
    assert!(!identifier_path(&t.globals[0].module));
}

#[test]
fn long_text_lines_are_bounded() {
    let limits = Limits {
        max_string_bytes: 64,
        ..Limits::default()
    };
    let mut line = b"c".to_vec();
    line.extend(std::iter::repeat_n(b'a', 1000));
    let t = parse(&line, &limits);
    assert!(t.error.unwrap().is_limit());
}

#[test]
fn dynamic_stack_global_names() {
    // STACK_GLOBAL over strings a call returned: the import is decided at load time.
    let p = P::new()
        .proto(4)
        .stack_global("builtins", "str")
        .raw(b"C\x02os")
        .s("ascii")
        .op(0x86)
        .op(b'R')
        .stack_global("builtins", "str")
        .raw(b"C\x06system")
        .s("ascii")
        .op(0x86)
        .op(b'R')
        .op(0x93)
        .op(b'.');
    let t = trace(p.bytes());
    assert!(t.error.is_none(), "{:?}", t.error);
    let g = t.globals.last().unwrap();
    assert!(g.dynamic);
    assert!(g.module.contains("builtins.str"), "{}", g.module);
    // Non-strings are refused, as Python does.
    let t = trace(b"\x80\x04K\x01K\x02\x93.");
    assert!(t.error.unwrap().to_string().contains("STACK_GLOBAL"));
}

#[test]
fn consecutive_pickles_and_trailing_bytes() {
    let mut data = b"\x80\x02}q\x00.".to_vec();
    data.extend_from_slice(b"cposix\nsystem\n(S'id'\ntR.");
    data.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
    let s = parse_stream(&data, &Limits::default());
    assert_eq!(s.pickles.len(), 2);
    assert_eq!(s.pickles[1].start, 6);
    assert_eq!(calls(&s.pickles[1]), ["posix.system('id')"]);
    assert_eq!(
        s.trailing,
        Some(Trailing {
            offset: data.len() as u64 - 11,
            len: 11
        })
    );
    // Raw bytes that happen to start like PROTO 1 are not a pickle.
    let mut data = b"\x80\x02N.".to_vec();
    data.extend_from_slice(&[0x80, 0x01, 0, 0, 0, 0, 0, 0, 0x11]);
    let s = parse_stream(&data, &Limits::default());
    assert_eq!(s.pickles.len(), 1);
    assert_eq!(s.trailing.map(|t| t.len), Some(9));
}

/// `joblib.dump({'a': np.arange(3, dtype='<i4'), 'o': np.array(['x', 1], dtype=object)})`
/// with joblib 1.5.1 / numpy 2.2.
const JOBLIB_SAMPLE: &[u8] = b"\x80\x04\x95\xd8\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper\x94\x93\x94)\x81\x94}\x94(\x8c\x08subclass\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94\x8c\x05shape\x94K\x03\x85\x94\x8c\x05order\x94\x8c\x01C\x94\x8c\x05dtype\x94h\x08\x8c\x05dtype\x94\x93\x94\x8c\x02i4\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x8c\nallow_mmap\x94\x88\x8c\x1bnumpy_array_alignment_bytes\x94K\x10ub\x0c\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x95K\x00\x00\x00\x00\x00\x00\x00\x8c\x01o\x94h\x04)\x81\x94}\x94(h\x07h\nh\x0bK\x02\x85\x94h\rh\x0eh\x0fh\x11\x8c\x02O8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94bh\x17\x89h\x18K\x10ub\x80\x05\x95\x90\x00\x00\x00\x00\x00\x00\x00\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02\x85\x94h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94(\x8c\x01x\x94K\x01et\x94b.u.";

#[test]
fn joblib_arrays_are_skipped_and_object_arrays_nested() {
    let s = parse_stream(JOBLIB_SAMPLE, &Limits::default());
    assert_eq!(s.pickles.len(), 1);
    assert!(s.trailing.is_none());
    let t = &s.pickles[0];
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.end, JOBLIB_SAMPLE.len() as u64);
    assert_eq!(t.joblib_arrays.len(), 2);
    let a = &t.joblib_arrays[0];
    assert_eq!(
        (a.dtype.as_str(), a.shape.as_slice(), a.data_len, a.object),
        ("i4", &[3u64][..], 12, false)
    );
    assert!(t.joblib_arrays[1].object);
    assert_eq!(t.nested.len(), 1);
    let nested = &t.nested[0];
    assert!(nested.error.is_none());
    assert_eq!(
        nested.globals[0].path(),
        "numpy._core.multiarray._reconstruct"
    );
    assert!(t.anomalies.is_empty(), "{:?}", t.anomalies);
    // pickle.load would read the raw bytes as opcodes; that reading is kept aside.
    assert!(t.pickle_load_view.is_some());
    assert!(t
        .render(t.result.unwrap())
        .contains("<joblib array i4 [3]>"));
}

#[test]
fn joblib_object_array_payload_is_traced() {
    // Swap the nested pickle's 'x' element for a call to os.system.
    let nested_at = JOBLIB_SAMPLE
        .windows(4)
        .rposition(|w| w == b"\x80\x05\x95\x90")
        .unwrap();
    let mut data = JOBLIB_SAMPLE[..nested_at].to_vec();
    data.extend_from_slice(b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.u.");
    let t = parse(&data, &Limits::default());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(calls(&t.nested[0]), ["posix.system('id')"]);
}

#[test]
fn joblib_build_inside_a_frame_reads_like_python() {
    // joblib's unpickler buffers frames: when a wrapper's BUILD sits mid-frame, the
    // array bytes come from after the frame and the rest of the frame runs as opcodes.
    let wrapper = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(X\x05\x00\x00\x00shapeK\x01\x85X\x05\x00\x00\x00dtypecnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbub";
    let hidden = b"0cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";
    let mut frame = wrapper.to_vec();
    frame.extend_from_slice(hidden);
    let mut data = b"\x80\x04\x95".to_vec();
    data.extend((frame.len() as u64).to_le_bytes());
    data.extend_from_slice(&frame);
    data.push(0x2a); // the one array byte, read from after the frame
    let t = parse(&data, &Limits::default());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.joblib_arrays[0].data_offset, data.len() as u64 - 1);
    assert!(
        calls(&t).contains(&"posix.system('id')".to_string()),
        "{:?}",
        calls(&t)
    );
}

#[test]
fn joblib_hidden_opcodes_in_array_bytes_show_in_the_pickle_load_view() {
    // A file that joblib.load reads as one array, but pickle.load reads as a call.
    let wrapper = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(X\x05\x00\x00\x00shapeK\x19\x85X\x05\x00\x00\x00dtypecnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbub";
    let array = b"0cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";
    assert_eq!(array.len(), 0x19);
    let mut data = wrapper.to_vec();
    data.extend_from_slice(array);
    data.push(b'.');
    let t = parse(&data, &Limits::default());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert!(calls(&t).iter().all(|c| !c.contains("system")));
    let view = t.pickle_load_view.as_ref().unwrap();
    assert!(calls(view).contains(&"posix.system('id')".to_string()));
}

#[test]
fn truncation_at_every_offset_never_panics() {
    let samples: [&[u8]; 3] = [
        JOBLIB_SAMPLE,
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.",
        b"(dp0\nS'a'\np1\n(lp2\nI1\naF2.5\naccopy_reg\n_reconstructor\np3\n(c__main__\nA\nc__builtin__\nobject\nNtRp4\ns.",
    ];
    for sample in samples {
        for cut in 0..sample.len() {
            let s = parse_stream(&sample[..cut], &Limits::default());
            assert!(s.first_error().is_some() || cut == 0, "cut {cut}");
        }
        assert!(parse_stream(sample, &Limits::default())
            .first_error()
            .is_none());
    }
}

#[test]
fn mutated_inputs_never_panic() {
    let seeds: [&[u8]; 3] = [
        JOBLIB_SAMPLE,
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
        b"(dp0\nS'a'\np1\n(lp2\nI1\naF2.5\naccopy_reg\n_reconstructor\np3\n(c__main__\nA\nc__builtin__\nobject\nNtRp4\ns.",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let limits = Limits {
        max_pickle_ops: 100_000,
        ..Limits::default()
    };
    for round in 0..20_000 {
        let seed = seeds[round % seeds.len()];
        let mut data = seed.to_vec();
        for _ in 0..(1 + next() % 4) {
            let i = (next() % data.len() as u64) as usize;
            match next() % 3 {
                0 => data[i] = next() as u8,
                1 => data.insert(i, next() as u8),
                _ => {
                    data.remove(i);
                }
            }
            if data.is_empty() {
                data.push(b'.');
            }
        }
        let s = parse_stream(&data, &limits);
        for t in s.traces() {
            for c in &t.calls {
                let _ = t.render_call(c);
            }
        }
        let _ = looks_like(&data);
    }
}

#[test]
fn big_payloads_are_slices() {
    // 64 MiB BINBYTES8 and BINUNICODE8: parsed without copying.
    let n = 64usize << 20;
    let mut data = b"\x80\x04\x8e".to_vec();
    data.extend((n as u64).to_le_bytes());
    data.resize(data.len() + n, 0x41);
    data.push(0x8d);
    data.extend((n as u64).to_le_bytes());
    data.resize(data.len() + n, 0x42);
    data.extend_from_slice(b"\x86.");
    let start = std::time::Instant::now();
    let t = trace(&data);
    assert!(t.error.is_none());
    assert!(start.elapsed().as_millis() < 500, "{:?}", start.elapsed());
    let r = t.render(t.result.unwrap());
    assert!(r.len() < 400, "{r}");
}

/// `joblib.dump({'a': np.arange(3.0)}, f, protocol=0)`: the wrapper is built by
/// `copy_reg._reconstructor`, and the array bytes follow its BUILD.
#[test]
fn joblib_protocol0_wrappers_via_reconstructor() {
    let mut data = b"(dp0\nVa\np1\nccopy_reg\n_reconstructor\np2\n(cjoblib.numpy_pickle\nNumpyArrayWrapper\np3\nc__builtin__\nobject\np4\nNtp5\nRp6\n(dp7\nVshape\np10\n(I3\ntp11\nsVdtype\np14\ncnumpy\ndtype\np15\n(Vf8\np16\nI00\nI01\ntp17\nRp18\n(I3\nV<\np19\nNNNI-1\nI-1\nI0\ntp20\nbsb".to_vec();
    data.extend_from_slice(&[0x40; 24]);
    data.extend_from_slice(b"s.");
    let t = parse(&data, &Limits::default());
    assert!(t.error.is_none(), "{:?}", t.error);
    assert_eq!(t.joblib_arrays.len(), 1);
    assert_eq!(t.joblib_arrays[0].data_len, 24);
}
