//! The pickle opcodes, protocols 0 to 5, as listed by CPython's `Lib/pickletools.py`
//! (`opcodes = [...]`) and dispatched by `Lib/pickle.py` (`_Unpickler.dispatch`).

/// One pickle opcode. The discriminant is the byte that encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    // Protocol 0 and 1.
    Mark = b'(',
    Stop = b'.',
    Pop = b'0',
    PopMark = b'1',
    Dup = b'2',
    Float = b'F',
    Int = b'I',
    BinInt = b'J',
    BinInt1 = b'K',
    Long = b'L',
    BinInt2 = b'M',
    None = b'N',
    PersId = b'P',
    BinPersId = b'Q',
    Reduce = b'R',
    String = b'S',
    BinString = b'T',
    ShortBinString = b'U',
    Unicode = b'V',
    BinUnicode = b'X',
    Append = b'a',
    Build = b'b',
    Global = b'c',
    Dict = b'd',
    EmptyDict = b'}',
    Appends = b'e',
    Get = b'g',
    BinGet = b'h',
    Inst = b'i',
    LongBinGet = b'j',
    List = b'l',
    EmptyList = b']',
    Obj = b'o',
    Put = b'p',
    BinPut = b'q',
    LongBinPut = b'r',
    SetItem = b's',
    Tuple = b't',
    EmptyTuple = b')',
    SetItems = b'u',
    BinFloat = b'G',
    // Protocol 2.
    Proto = 0x80,
    NewObj = 0x81,
    Ext1 = 0x82,
    Ext2 = 0x83,
    Ext4 = 0x84,
    Tuple1 = 0x85,
    Tuple2 = 0x86,
    Tuple3 = 0x87,
    NewTrue = 0x88,
    NewFalse = 0x89,
    Long1 = 0x8a,
    Long4 = 0x8b,
    // Protocol 3.
    BinBytes = b'B',
    ShortBinBytes = b'C',
    // Protocol 4.
    ShortBinUnicode = 0x8c,
    BinUnicode8 = 0x8d,
    BinBytes8 = 0x8e,
    EmptySet = 0x8f,
    AddItems = 0x90,
    FrozenSet = 0x91,
    NewObjEx = 0x92,
    StackGlobal = 0x93,
    Memoize = 0x94,
    Frame = 0x95,
    // Protocol 5.
    ByteArray8 = 0x96,
    NextBuffer = 0x97,
    ReadOnlyBuffer = 0x98,
}

/// Every opcode, for lookups and tests.
pub const ALL: [Op; 68] = [
    Op::Mark,
    Op::Stop,
    Op::Pop,
    Op::PopMark,
    Op::Dup,
    Op::Float,
    Op::Int,
    Op::BinInt,
    Op::BinInt1,
    Op::Long,
    Op::BinInt2,
    Op::None,
    Op::PersId,
    Op::BinPersId,
    Op::Reduce,
    Op::String,
    Op::BinString,
    Op::ShortBinString,
    Op::Unicode,
    Op::BinUnicode,
    Op::Append,
    Op::Build,
    Op::Global,
    Op::Dict,
    Op::EmptyDict,
    Op::Appends,
    Op::Get,
    Op::BinGet,
    Op::Inst,
    Op::LongBinGet,
    Op::List,
    Op::EmptyList,
    Op::Obj,
    Op::Put,
    Op::BinPut,
    Op::LongBinPut,
    Op::SetItem,
    Op::Tuple,
    Op::EmptyTuple,
    Op::SetItems,
    Op::BinFloat,
    Op::Proto,
    Op::NewObj,
    Op::Ext1,
    Op::Ext2,
    Op::Ext4,
    Op::Tuple1,
    Op::Tuple2,
    Op::Tuple3,
    Op::NewTrue,
    Op::NewFalse,
    Op::Long1,
    Op::Long4,
    Op::BinBytes,
    Op::ShortBinBytes,
    Op::ShortBinUnicode,
    Op::BinUnicode8,
    Op::BinBytes8,
    Op::EmptySet,
    Op::AddItems,
    Op::FrozenSet,
    Op::NewObjEx,
    Op::StackGlobal,
    Op::Memoize,
    Op::Frame,
    Op::ByteArray8,
    Op::NextBuffer,
    Op::ReadOnlyBuffer,
];

/// Byte → opcode table, built at compile time from [`ALL`] (an index out of range here
/// fails the build, never a run).
#[allow(clippy::indexing_slicing)]
const TABLE: [Option<Op>; 256] = {
    let mut t = [None; 256];
    let mut i = 0;
    while i < ALL.len() {
        let op = ALL[i];
        t[op as u8 as usize] = Some(op);
        i += 1;
    }
    t
};

impl Op {
    /// The opcode a byte encodes, or `None` for a byte no unpickler accepts.
    pub fn from_byte(b: u8) -> Option<Op> {
        TABLE.get(usize::from(b)).copied().flatten()
    }

    /// The name pickletools gives the opcode.
    pub fn name(self) -> &'static str {
        match self {
            Op::Mark => "MARK",
            Op::Stop => "STOP",
            Op::Pop => "POP",
            Op::PopMark => "POP_MARK",
            Op::Dup => "DUP",
            Op::Float => "FLOAT",
            Op::Int => "INT",
            Op::BinInt => "BININT",
            Op::BinInt1 => "BININT1",
            Op::Long => "LONG",
            Op::BinInt2 => "BININT2",
            Op::None => "NONE",
            Op::PersId => "PERSID",
            Op::BinPersId => "BINPERSID",
            Op::Reduce => "REDUCE",
            Op::String => "STRING",
            Op::BinString => "BINSTRING",
            Op::ShortBinString => "SHORT_BINSTRING",
            Op::Unicode => "UNICODE",
            Op::BinUnicode => "BINUNICODE",
            Op::Append => "APPEND",
            Op::Build => "BUILD",
            Op::Global => "GLOBAL",
            Op::Dict => "DICT",
            Op::EmptyDict => "EMPTY_DICT",
            Op::Appends => "APPENDS",
            Op::Get => "GET",
            Op::BinGet => "BINGET",
            Op::Inst => "INST",
            Op::LongBinGet => "LONG_BINGET",
            Op::List => "LIST",
            Op::EmptyList => "EMPTY_LIST",
            Op::Obj => "OBJ",
            Op::Put => "PUT",
            Op::BinPut => "BINPUT",
            Op::LongBinPut => "LONG_BINPUT",
            Op::SetItem => "SETITEM",
            Op::Tuple => "TUPLE",
            Op::EmptyTuple => "EMPTY_TUPLE",
            Op::SetItems => "SETITEMS",
            Op::BinFloat => "BINFLOAT",
            Op::Proto => "PROTO",
            Op::NewObj => "NEWOBJ",
            Op::Ext1 => "EXT1",
            Op::Ext2 => "EXT2",
            Op::Ext4 => "EXT4",
            Op::Tuple1 => "TUPLE1",
            Op::Tuple2 => "TUPLE2",
            Op::Tuple3 => "TUPLE3",
            Op::NewTrue => "NEWTRUE",
            Op::NewFalse => "NEWFALSE",
            Op::Long1 => "LONG1",
            Op::Long4 => "LONG4",
            Op::BinBytes => "BINBYTES",
            Op::ShortBinBytes => "SHORT_BINBYTES",
            Op::ShortBinUnicode => "SHORT_BINUNICODE",
            Op::BinUnicode8 => "BINUNICODE8",
            Op::BinBytes8 => "BINBYTES8",
            Op::EmptySet => "EMPTY_SET",
            Op::AddItems => "ADDITEMS",
            Op::FrozenSet => "FROZENSET",
            Op::NewObjEx => "NEWOBJ_EX",
            Op::StackGlobal => "STACK_GLOBAL",
            Op::Memoize => "MEMOIZE",
            Op::Frame => "FRAME",
            Op::ByteArray8 => "BYTEARRAY8",
            Op::NextBuffer => "NEXT_BUFFER",
            Op::ReadOnlyBuffer => "READONLY_BUFFER",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_and_is_complete() {
        let mut known = 0;
        for b in 0..=255u8 {
            if let Some(op) = Op::from_byte(b) {
                assert_eq!(op as u8, b);
                known += 1;
            }
        }
        assert_eq!(known, ALL.len());
        assert_eq!(Op::from_byte(0x99), None);
        assert_eq!(Op::from_byte(0x00), None);
        assert_eq!(Op::from_byte(b'c').map(Op::name), Some("GLOBAL"));
    }
}
