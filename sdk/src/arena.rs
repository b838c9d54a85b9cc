//! The heap of a plugin built with the SDK: a bump allocator over a static arena, and Rust's
//! own allocator past it.
//!
//! The host runs every call in a fresh instance and throws it away after the call, so memory
//! is never reused within an instance's life and freeing it is wasted work. Rust's allocator
//! on `wasm32` takes every byte it hands out from `memory.grow`, so each call grew the linear
//! memory, and the host then had to take the grown pages' access back (`mprotect`, a TLB
//! shootdown on every core) before the slot's next instance: 8 % of the server's CPU under
//! load (BENCHMARKS.md). The arena is part of the module's static data, inside its initial
//! memory: a call that stays within it never grows the memory.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of the arena: 4 wasm pages.
const ARENA_BYTES: usize = 256 * 1024;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: a wasm32 plugin instance runs on one thread; `NEXT` hands out disjoint ranges.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));
/// Offset of the arena's first free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The allocator (see the module's documentation).
pub(crate) struct Bump;

impl Bump {
    fn base() -> usize {
        ARENA.0.get() as usize
    }

    fn owns(ptr: *mut u8) -> bool {
        let p = ptr as usize;
        (Self::base()..Self::base() + ARENA_BYTES).contains(&p)
    }
}

// SAFETY: every pointer returned is either a fresh, aligned range of the arena that no other
// allocation overlaps, or `System`'s; `dealloc` and `realloc` send `System`'s back to it.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = Self::base();
        let next = NEXT.load(Ordering::Relaxed);
        let start = (base + next).next_multiple_of(layout.align()) - base;
        match start.checked_add(layout.size()) {
            Some(end) if end <= ARENA_BYTES => {
                NEXT.store(end, Ordering::Relaxed);
                (base + start) as *mut u8
            }
            // SAFETY: the caller's layout, passed on.
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !Self::owns(ptr) {
            // SAFETY: not the arena's, so `System` allocated it with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::owns(ptr) {
            // SAFETY: `System`'s allocation, as in `dealloc`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let base = Self::base();
        let offset = ptr as usize - base;
        // The last allocation grows or shrinks in place.
        if offset + layout.size() == NEXT.load(Ordering::Relaxed)
            && offset + new_size <= ARENA_BYTES
        {
            NEXT.store(offset + new_size, Ordering::Relaxed);
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the caller's contract).
        let new =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new.is_null() {
            // SAFETY: both ranges are valid for the smaller size and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Bump = Bump;
