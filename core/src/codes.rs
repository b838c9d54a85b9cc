//! Random codes people read out or type: Crockford's base 32 (no I, L, O, U), 5 bits each.

use rand::Rng;

/// The characters of a code.
pub const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `len` random characters of [`ALPHABET`].
pub fn random(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
