//! Connection tokens: how a connection is named to the kernel and in timers and queues.

/// Slab index in the low 32 bits, generation (24 bits) above it; the top byte is free
/// for a backend to tag operations with. A token outlives its connection harmlessly: once
/// the slot is freed (and maybe reused under a new generation) the core answers nothing
/// for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

impl Token {
    pub const GENERATION_MASK: u32 = 0x00ff_ffff;

    pub fn new(index: usize, generation: u32) -> Token {
        Token(u64::from(generation & Self::GENERATION_MASK) << 32 | index as u64)
    }

    pub fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32 & Self::GENERATION_MASK
    }
}
