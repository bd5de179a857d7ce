//! Checked conversions of what C hands in (pointers, strings, enum values) and of text handed
//! back.

use std::ffi::{c_char, CStr};

use crate::error::Failure;

/// A reference from a pointer C passed in; NULL is an invalid-input failure naming `what`.
///
/// # Safety
/// A non-NULL `pointer` must point to a live `T` made by this library, for `'a`.
pub(crate) unsafe fn object<'a, T>(pointer: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: NULL is handled by `as_ref`; otherwise the caller promises a live object.
    unsafe { pointer.as_ref() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// A UTF-8 string C passed in; NULL or invalid UTF-8 is an invalid-input failure naming
/// `what`.
///
/// # Safety
/// A non-NULL `text` must point to a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn text<'a>(text: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if text.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(text) };
    bytes.to_str().map_err(|_| Failure::invalid(format!("{what} is not UTF-8")))
}

/// Writes `value` through an out-pointer; NULL is an invalid-input failure naming `what`.
///
/// # Safety
/// A non-NULL `out` must be valid for a write of `T`.
pub(crate) unsafe fn put<T>(out: *mut T, what: &str, value: T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and the caller promises it is writable.
    unsafe { out.write(value) };
    Ok(())
}

/// Clears an out-pointer first, so that a failed call leaves NULL there (if the caller gave
/// one at all).
///
/// # Safety
/// A non-NULL `out` must be valid for a write of a pointer.
pub(crate) unsafe fn clear<T>(out: *mut *mut T) {
    if !out.is_null() {
        // SAFETY: not NULL, and the caller promises it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
    }
}

/// Text owned by an object and handed to C: its exact bytes, then a NUL (outside text may hold
/// a NUL of its own; the length says where it really ends).
#[derive(Debug)]
pub(crate) struct Text(Box<[u8]>);

impl Text {
    /// Copies `text` and terminates it.
    pub(crate) fn new(text: &str) -> Text {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
        Text(bytes.into_boxed_slice())
    }

    /// The pointer for C; stores the length (without the NUL) through `len` unless NULL.
    ///
    /// # Safety
    /// A non-NULL `len` must be valid for a write of `usize`.
    pub(crate) unsafe fn give(&self, len: *mut usize) -> *const c_char {
        if !len.is_null() {
            // SAFETY: not NULL, and the caller promises it is writable.
            unsafe { len.write(self.0.len() - 1) };
        }
        self.0.as_ptr().cast()
    }
}

/// A NUL-terminated `'static` name, for names from fixed tables.
pub(crate) fn name(text: &'static CStr) -> *const c_char {
    text.as_ptr()
}
