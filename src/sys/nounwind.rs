//! Inert stand-ins for the libunwind entry points std refers to (feature `no-libunwind`, set by
//! `make release`/`size-check` for x86_64 only; issue 10, binary size).
//!
//! The release binary is `panic = "abort"`, its std is built with panic_abort and without unwind
//! tables (`-Cforce-unwind-tables=no`), and it is stripped: nothing ever unwinds, and a stack
//! walk would find no tables to walk. Still, std's personality routine and its `RUST_BACKTRACE`
//! printer name these functions, which makes the linker pull all of LLVM's libunwind and, through
//! it, musl's printf (~55 KB). Defined here, the archive is never opened. Effects: a backtrace
//! requested with `RUST_BACKTRACE` lists no frames (it listed none usable before); panic
//! messages, with their location, are unchanged. The personality routine is never called (no
//! frame unwinds); if it were, the stubs report "no handler", and `_Unwind_RaiseException`
//! reports a fatal error, after which std aborts, exactly what panic=abort does.
//!
//! Only for a std built with panic_abort (`-Zbuild-std=std,panic_abort`): a std with
//! panic_unwind refers to `_Unwind_Resume` and more, the linker would take libunwind's objects
//! as well, and the symbols would clash at link time (a build error, never a silent change).
#![allow(unsafe_code)] // `#[no_mangle]` is counted as unsafe code; no unsafe block here.

/// `_URC_END_OF_STACK`: the walk found no (more) frames.
const END_OF_STACK: i32 = 5;
/// `_URC_FATAL_PHASE1_ERROR`.
const FATAL_PHASE1_ERROR: i32 = 3;

// SAFETY (all below): each has the C signature libunwind exports (pointer-sized arguments and
// results are `usize` here, same ABI), touches no memory through its arguments, and returns a
// value every caller handles ("no frame", "no data", "fatal error").

#[no_mangle]
pub extern "C" fn _Unwind_Backtrace(_trace: usize, _arg: usize) -> i32 {
    END_OF_STACK
}

#[no_mangle]
pub extern "C" fn _Unwind_GetIP(_ctx: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetIPInfo(_ctx: usize, _ip_before_insn: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetCFA(_ctx: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetGR(_ctx: usize, _index: i32) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_SetGR(_ctx: usize, _index: i32, _value: usize) {}

#[no_mangle]
pub extern "C" fn _Unwind_SetIP(_ctx: usize, _value: usize) {}

#[no_mangle]
pub extern "C" fn _Unwind_GetLanguageSpecificData(_ctx: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetRegionStart(_ctx: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetTextRelBase(_ctx: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetDataRelBase(_ctx: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_FindEnclosingFunction(_pc: usize) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_RaiseException(_exception: usize) -> i32 {
    FATAL_PHASE1_ERROR
}

#[no_mangle]
pub extern "C" fn _Unwind_DeleteException(_exception: usize) {}
