//! The RFC 6962 Merkle tree of the audit log: hashes, roots, inclusion and consistency proofs.
//!
//! Hashing follows [RFC 6962 §2.1](https://www.rfc-editor.org/rfc/rfc6962#section-2.1):
//! a leaf is `SHA-256(0x00 || entry)`, an interior node is `SHA-256(0x01 || left || right)`,
//! and the tree over `n > 1` leaves splits at the largest power of two smaller than `n`. The
//! empty tree hashes to `SHA-256("")`. The two prefixes keep leaves and nodes apart, so no
//! entry can pose as a subtree.
//!
//! Proofs are produced as `PATH(m, D[n])` and `PROOF(m, D[n])` of RFC 6962 §2.1.1 and §2.1.2
//! and checked with the algorithms of
//! [RFC 9162 §2.1.3.2](https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.2) and
//! [§2.1.4.2](https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4.2). Indices are zero-based.
//!
//! A proof only ties a leaf (or an old root) to a root *for the tree size it is checked
//! against*; the size and the root must come together from one signed checkpoint.
//!
//! [`Frontier`] keeps only the right edge of the tree, so that a log of any length can be
//! appended to, and its root recomputed, in `O(log n)` memory.

use ring::digest;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain-separation prefix of a leaf hash (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// Version byte that opens the serialised form of a [`Frontier`].
const FRONTIER_VERSION: u8 = 1;
/// Length of the serialised frontier header: version byte and big-endian tree size.
const FRONTIER_HEADER_LEN: usize = 1 + 8;

/// Why a proof or a stored frontier was rejected. No variant carries entry content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of {size} entries: ask for a proof against a checkpoint that already contains the entry")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size it was asked against.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("the old tree size {old_size} is larger than the new tree size {new_size}: a log only grows, so give the older checkpoint first")]
    SizesOutOfOrder {
        /// The size of the tree claimed to be older.
        old_size: u64,
        /// The size of the tree claimed to be newer.
        new_size: u64,
    },
    /// The proof does not have the number of hashes the tree shape requires.
    #[error("wrong proof length: a proof for these sizes has {expected} hashes, this one has {actual}; the proof was truncated, padded or made for another tree size")]
    WrongProofLength {
        /// How many hashes the tree shape requires.
        expected: usize,
        /// How many hashes the proof has.
        actual: usize,
    },
    /// The proof leads to another root than the one trusted.
    #[error("root mismatch: the proof does not lead to the trusted root; the entry, its index, the proof or the log itself has been altered")]
    RootMismatch,
    /// A consistency proof does not reproduce the old root.
    #[error("old root mismatch: the consistency proof does not reproduce the older root; the log was rewritten or the proof is for other checkpoints")]
    OldRootMismatch,
    /// A consistency proof does not reproduce the new root.
    #[error("new root mismatch: the consistency proof does not reproduce the newer root; the log was rewritten or the proof is for other checkpoints")]
    NewRootMismatch,
    /// The tree already holds `u64::MAX` leaves.
    #[error("the tree is full: it already holds u64::MAX entries")]
    TreeFull,
    /// A stored frontier does not decode.
    #[error("corrupt stored frontier ({reason}): rebuild it from the audit entries")]
    CorruptFrontier {
        /// What is wrong with the bytes.
        reason: &'static str,
    },
}

/// Copies a SHA-256 digest into a [`Hash`].
fn to_hash(digest: &digest::Digest) -> Hash {
    let mut out = [0u8; 32];
    // INVARIANT: a SHA-256 digest is 32 bytes, so every byte of `out` is written.
    for (slot, byte) in out.iter_mut().zip(digest.as_ref()) {
        *slot = *byte;
    }
    out
}

/// The hash of one log entry: `SHA-256(0x00 || entry)`.
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(&[LEAF_PREFIX]);
    context.update(entry);
    to_hash(&context.finish())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One contiguous 65-byte message: one `update` call, no allocation.
    let mut message = [0u8; 65];
    let (prefix, children) = message.split_at_mut(1);
    let (left_slot, right_slot) = children.split_at_mut(32);
    prefix.fill(NODE_PREFIX);
    left_slot.copy_from_slice(left);
    right_slot.copy_from_slice(right);
    to_hash(&digest::digest(&digest::SHA256, &message))
}

/// The root of the empty tree: `SHA-256("")`.
#[must_use]
pub fn empty_root() -> Hash {
    to_hash(&digest::digest(&digest::SHA256, b""))
}

/// The Merkle tree hash `MTH(D[n])` over leaf hashes, in `O(n)` time and `O(log n)` memory.
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    root_of(leaves.iter())
}

/// `MTH` over the leaf hashes an iterator yields.
fn root_of<'a>(leaves: impl Iterator<Item = &'a Hash>) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        // A slice holds fewer than u64::MAX elements, so the tree never fills up here.
        frontier.append(*leaf);
    }
    frontier.root()
}

/// The root of the subtree over `leaves[start..start + len]`.
fn subtree_root(leaves: &[Hash], start: usize, len: usize) -> Hash {
    root_of(leaves.iter().skip(start).take(len))
}

/// The largest power of two strictly smaller than `n`; `n` must be at least 2.
fn split_point(n: usize) -> usize {
    // For n >= 2, n - 1 >= 1 has a highest set bit; that bit is the split.
    let below = n.saturating_sub(1);
    let top_bit = usize::BITS
        .saturating_sub(1)
        .saturating_sub(below.leading_zeros());
    1usize.checked_shl(top_bit).unwrap_or(0)
}

/// Converts a tree size or index to `usize`, or says it is out of range.
fn to_usize(value: u64, size: u64) -> Result<usize, ProofError> {
    usize::try_from(value).map_err(|_| ProofError::IndexOutOfRange { index: value, size })
}

/// The inclusion proof `PATH(index, D[n])` for the leaf at `index` (zero-based), leaf to root.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] if `index` is not below `leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut target = to_usize(index, size)?;
    // The subtree under consideration is leaves[start .. start + len]; walk from the root
    // down to the leaf, recording the sibling subtree at each level.
    let mut start = 0usize;
    let mut len = leaves.len();
    let mut siblings = Vec::new();
    while len > 1 {
        let split = split_point(len);
        if target < split {
            siblings.push(subtree_root(
                leaves,
                start.saturating_add(split),
                len - split,
            ));
            len = split;
        } else {
            siblings.push(subtree_root(leaves, start, split));
            start = start.saturating_add(split);
            target -= split;
            len -= split;
        }
    }
    // PATH lists the siblings from the leaf upwards.
    siblings.reverse();
    Ok(siblings)
}

/// The number of hashes in an inclusion proof for `index` in a tree of `size` leaves
/// (`index < size`): the levels below the point where the paths to `index` and to the last
/// leaf part, plus the left siblings above it.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let last = size.saturating_sub(1);
    let inner = u64::BITS - (index ^ last).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Checks an inclusion proof with the algorithm of RFC 9162 §2.1.3.2.
///
/// `leaf` is the leaf hash (see [`leaf_hash`]), `index` its zero-based position, and `size`
/// and `root` come from a trusted checkpoint.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`], [`ProofError::WrongProofLength`] or
/// [`ProofError::RootMismatch`].
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    // RFC 9162 §2.1.3.2: `position` is fn, `last` is sn.
    let mut position = index;
    let mut last = size - 1;
    let mut computed = *leaf;
    for sibling in proof {
        if last == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if position & 1 == 1 || position == last {
            computed = node_hash(sibling, &computed);
            // Skip the levels where this node is the right edge and has no sibling.
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            computed = node_hash(&computed, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if computed != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The consistency proof `PROOF(old_size, D[n])` that the first `old_size` leaves are a prefix
/// of `leaves`. It is empty when `old_size` is 0 or equals `leaves.len()`.
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`] if `old_size` exceeds `leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let new_size = leaves.len() as u64;
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 {
        // Every tree extends the empty tree; there is nothing to prove.
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start .. start + len], complete), unrolled: descend while recording the
    // hashes that are appended on the way back up, then emit them in reverse.
    let mut old = to_usize(old_size, new_size)?;
    let mut start = 0usize;
    let mut len = leaves.len();
    // `complete` is b in RFC 6962: true while the old root is itself a node of this subtree.
    let mut complete = true;
    let mut upward = Vec::new();
    let mut proof = Vec::new();
    while old != len {
        let split = split_point(len);
        if old <= split {
            upward.push(subtree_root(
                leaves,
                start.saturating_add(split),
                len - split,
            ));
            len = split;
        } else {
            upward.push(subtree_root(leaves, start, split));
            start = start.saturating_add(split);
            old -= split;
            len -= split;
            complete = false;
        }
    }
    if !complete {
        proof.push(subtree_root(leaves, start, len));
    }
    proof.extend(upward.into_iter().rev());
    Ok(proof)
}

/// The number of hashes in a consistency proof between sizes `0 < old_size < new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    // The proof is the inclusion path of the last old leaf, minus the levels inside the
    // largest perfect subtree that ends the old tree, plus that subtree's root unless it is
    // the whole old tree (then the verifier already has it as the old root).
    let shift = old_size.trailing_zeros();
    let path = inclusion_proof_len(old_size - 1, new_size);
    let seed = usize::from(old_size.checked_shr(shift) != Some(1));
    path.saturating_sub(shift as usize) + seed
}

/// Checks a consistency proof with the algorithm of RFC 9162 §2.1.4.2: the tree of
/// `old_size` leaves with root `old_root` is a prefix of the tree of `new_size` leaves with
/// root `new_root`.
///
/// Equal sizes need an empty proof and equal roots. An old size of 0 needs an empty proof and
/// `old_root` equal to [`empty_root`]: every tree extends the empty tree.
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`], [`ProofError::WrongProofLength`],
/// [`ProofError::RootMismatch`], [`ProofError::OldRootMismatch`] or
/// [`ProofError::NewRootMismatch`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        if old_size == 0 {
            if *old_root != empty_root() {
                return Err(ProofError::OldRootMismatch);
            }
            if new_size == 0 && *new_root != empty_root() {
                return Err(ProofError::NewRootMismatch);
            }
        } else if old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }

    // Now 0 < old_size < new_size.
    let expected = consistency_proof_len(old_size, new_size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // Step 2: when the old tree is perfect its root starts the path, otherwise the proof does.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest),
            None => return Err(wrong_length),
        }
    };
    // RFC 9162 §2.1.4.2: `position` is fn, `last` is sn, `old` is fr, `new` is sr.
    let mut position = old_size - 1;
    let mut last = new_size - 1;
    while position & 1 == 1 {
        position >>= 1;
        last >>= 1;
    }
    let mut old = *seed;
    let mut new = *seed;
    for hash in rest {
        if last == 0 {
            return Err(wrong_length);
        }
        if position & 1 == 1 || position == last {
            old = node_hash(hash, &old);
            new = node_hash(hash, &new);
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            new = node_hash(&new, hash);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(wrong_length);
    }
    if old != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if new != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

/// The right edge of the tree: roots of the perfect subtrees, so appends and the current root
/// are `O(log n)`.
///
/// A tree of `size` leaves is the concatenation of one perfect subtree per set bit of `size`,
/// largest first; the frontier keeps exactly their roots. Appending a leaf merges equal-sized
/// subtrees like a binary counter carries.
///
/// Serialised form ([`Frontier::to_bytes`]): a version byte `0x01`, the tree size as 8 bytes
/// big-endian, then the 32-byte subtree roots left to right (as many as `size` has set bits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    /// Number of leaves in the tree.
    size: u64,
    // INVARIANT: `hashes.len() == size.count_ones()`, largest subtree first.
    /// Roots of the perfect subtrees, left to right.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self {
            size: 0,
            // At most one subtree per bit of a u64 size: never reallocates.
            hashes: Vec::with_capacity(64),
        }
    }

    /// The number of leaves appended so far.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    ///
    /// # Errors
    /// [`ProofError::TreeFull`] if the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) -> Result<(), ProofError> {
        if self.size == u64::MAX {
            return Err(ProofError::TreeFull);
        }
        self.append(leaf);
        Ok(())
    }

    /// Appends a leaf hash; the caller ensures `size < u64::MAX`.
    fn append(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut carry = self.size;
        // Each trailing one bit of the size is a perfect subtree of the new node's height.
        while carry & 1 == 1 {
            match self.hashes.pop() {
                Some(left) => node = node_hash(&left, &node),
                // Unreachable while the invariant holds.
                None => break,
            }
            carry >>= 1;
        }
        self.hashes.push(node);
        self.size = self.size.wrapping_add(1);
    }

    /// The root of the tree so far; [`empty_root`] for the empty tree.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut subtrees = self.hashes.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(smallest) => subtrees.fold(*smallest, |right, left| node_hash(left, &right)),
        }
    }

    /// The roots of the perfect subtrees that make up the tree, largest (leftmost) first: one
    /// per set bit of the size. The tree's root is their fold from the right,
    /// `node(h0, node(h1, ... node(h(k-1), hk)))`.
    #[must_use]
    pub fn subtrees(&self) -> &[Hash] {
        &self.hashes
    }

    /// A frontier from its size and subtree roots (as [`Frontier::subtrees`] gives them).
    ///
    /// # Errors
    /// [`ProofError::CorruptFrontier`] if there is not one hash per set bit of `size`.
    pub fn from_subtrees(size: u64, hashes: Vec<Hash>) -> Result<Self, ProofError> {
        if hashes.len() != size.count_ones() as usize {
            return Err(ProofError::CorruptFrontier {
                reason: "not one subtree hash per set bit of the size",
            });
        }
        Ok(Self { size, hashes })
    }

    /// The serialised frontier, to be stored and later restored with [`Frontier::from_bytes`].
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(FRONTIER_HEADER_LEN + 32 * self.hashes.len());
        bytes.push(FRONTIER_VERSION);
        bytes.extend_from_slice(&self.size.to_be_bytes());
        for hash in &self.hashes {
            bytes.extend_from_slice(hash);
        }
        bytes
    }

    /// Restores a frontier written by [`Frontier::to_bytes`].
    ///
    /// # Errors
    /// [`ProofError::CorruptFrontier`] if the version, the length or the number of hashes
    /// does not match.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        let corrupt = |reason| ProofError::CorruptFrontier { reason };
        let (&version, rest) = bytes.split_first().ok_or(corrupt("empty"))?;
        if version != FRONTIER_VERSION {
            return Err(corrupt("unknown version"));
        }
        let (size_bytes, hash_bytes) = rest
            .split_first_chunk::<8>()
            .ok_or(corrupt("truncated tree size"))?;
        let size = u64::from_be_bytes(*size_bytes);
        let count = size.count_ones() as usize;
        if hash_bytes.len() != count * 32 {
            return Err(corrupt("the number of hashes does not match the tree size"));
        }
        let mut hashes = Vec::with_capacity(64);
        for chunk in hash_bytes.chunks_exact(32) {
            hashes.push(Hash::try_from(chunk).map_err(|_| corrupt("truncated hash"))?);
        }
        Ok(Self { size, hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex32(text: &str) -> Hash {
        hex::decode(text).unwrap().try_into().unwrap()
    }

    // ----- Known answers -----
    //
    // From the Certificate Transparency reference tests,
    // google/certificate-transparency cpp/merkletree/merkle_tree_test.cc (kInputs,
    // kSHA256Roots, kSHA256Paths, kSHA256Proofs; its leaf numbers are one-based, ours are
    // zero-based), and transparency-dev/merkle testonly/constants.go (NodeHashes,
    // CompactTrees) and proof/verify_test.go (the 6 -> 7 consistency proof).

    const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn inputs() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect()
    }

    fn test_leaves() -> Vec<Hash> {
        inputs().iter().map(|e| leaf_hash(e)).collect()
    }

    /// kSHA256Roots: roots of the trees of sizes 1 to 8.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Root of the tree of `size` test leaves (1..=8).
    fn kat_root(size: u64) -> Hash {
        hex32(ROOTS[size as usize - 1])
    }

    /// NodeHashes, level 0: the leaf hashes of the eight inputs.
    const LEAF_HASHES: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ];

    /// NodeHashes, levels 1 to 3.
    const LEVEL1: [&str; 4] = [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ];
    const LEVEL2: [&str; 2] = [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ];
    const LEVEL3: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";

    /// kSHA256Paths with zero-based indices: (index, size, path).
    fn kat_inclusion() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    hex32("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    hex32("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    hex32("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    hex32("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    hex32("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    hex32("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![hex32(
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                )],
            ),
            (
                1,
                5,
                vec![
                    hex32("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    hex32("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    hex32("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    /// kSHA256Proofs plus the 6 -> 7 proof of transparency-dev/merkle: (old, new, proof).
    fn kat_consistency() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    hex32("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    hex32("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    hex32("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    hex32("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    hex32("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    hex32("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    hex32("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    hex32("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
            (
                6,
                7,
                vec![
                    hex32("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    hex32("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                    hex32("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
        ]
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(empty_root(), hex32(EMPTY_ROOT));
        assert_eq!(root(&[]), hex32(EMPTY_ROOT));
        assert_eq!(Frontier::new().root(), hex32(EMPTY_ROOT));
    }

    #[test]
    fn single_empty_entry_root_matches_rfc6962_vector() {
        assert_eq!(root(&[leaf_hash(b"")]), hex32(ROOTS[0]));
    }

    #[test]
    fn leaf_and_node_hashes_match_reference_node_hashes() {
        let leaves = test_leaves();
        for (leaf, expected) in leaves.iter().zip(LEAF_HASHES) {
            assert_eq!(*leaf, hex32(expected));
        }
        let level1: Vec<Hash> = leaves.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        for (node, expected) in level1.iter().zip(LEVEL1) {
            assert_eq!(*node, hex32(expected));
        }
        let level2: Vec<Hash> = level1.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        for (node, expected) in level2.iter().zip(LEVEL2) {
            assert_eq!(*node, hex32(expected));
        }
        assert_eq!(node_hash(&level2[0], &level2[1]), hex32(LEVEL3));
    }

    #[test]
    fn roots_match_reference_vectors_for_sizes_1_to_8() {
        let leaves = test_leaves();
        let mut frontier = Frontier::new();
        for size in 1..=8u64 {
            assert_eq!(
                root(&leaves[..size as usize]),
                kat_root(size),
                "size {size}"
            );
            frontier.push(leaves[size as usize - 1]).unwrap();
            assert_eq!(frontier.root(), kat_root(size), "frontier size {size}");
        }
    }

    #[test]
    fn frontier_holds_the_reference_compact_trees() {
        // CompactTrees: the perfect-subtree roots after each append.
        let l0: Vec<Hash> = LEAF_HASHES.iter().map(|h| hex32(h)).collect();
        let l1: Vec<Hash> = LEVEL1.iter().map(|h| hex32(h)).collect();
        let l2: Vec<Hash> = LEVEL2.iter().map(|h| hex32(h)).collect();
        let expected: Vec<Vec<Hash>> = vec![
            vec![],
            vec![l0[0]],
            vec![l1[0]],
            vec![l1[0], l0[2]],
            vec![l2[0]],
            vec![l2[0], l0[4]],
            vec![l2[0], l1[2]],
            vec![l2[0], l1[2], l0[6]],
            vec![hex32(LEVEL3)],
        ];
        let mut frontier = Frontier::new();
        for (size, want) in expected.iter().enumerate() {
            if size > 0 {
                frontier.push(l0[size - 1]).unwrap();
            }
            assert_eq!(frontier.hashes, *want, "size {size}");
        }
    }

    #[test]
    fn inclusion_proofs_match_reference_vectors_and_verify() {
        let leaves = test_leaves();
        for (index, size, path) in kat_inclusion() {
            let tree = &leaves[..size as usize];
            assert_eq!(
                inclusion_proof(tree, index).unwrap(),
                path,
                "{index}/{size}"
            );
            verify_inclusion(&leaves[index as usize], index, size, &path, &kat_root(size)).unwrap();
        }
    }

    #[test]
    fn consistency_proofs_match_reference_vectors_and_verify() {
        let leaves = test_leaves();
        for (old, new, proof) in kat_consistency() {
            let tree = &leaves[..new as usize];
            assert_eq!(consistency_proof(tree, old).unwrap(), proof, "{old}->{new}");
            verify_consistency(old, new, &kat_root(old), &kat_root(new), &proof).unwrap();
        }
    }

    /// The corruptions of merkle_tree_test.cc `VerifierCheck`, on the reference paths.
    #[test]
    fn reference_inclusion_proofs_reject_the_reference_corruptions() {
        let leaves = test_leaves();
        let empty = hex32(EMPTY_ROOT);
        for (index, size, path) in kat_inclusion() {
            let leaf = leaves[index as usize];
            let good = kat_root(size);
            let verify = |i: u64, s: u64, p: &[Hash], r: &Hash, l: &Hash| {
                verify_inclusion(l, i, s, p, r).is_err()
            };
            if index > 0 {
                assert!(verify(index - 1, size, &path, &good, &leaf));
            }
            assert!(verify(index + 1, size, &path, &good, &leaf));
            assert!(verify(index ^ 2, size, &path, &good, &leaf));
            assert!(verify(index, size * 2, &path, &good, &leaf));
            assert!(verify(index, size / 2, &path, &good, &leaf));
            assert!(verify(index, size, &path, &good, &leaf_hash(b"WrongLeaf")));
            assert!(verify(index, size, &path, &empty, &leaf));
            for j in 0..path.len() {
                let mut wrong = path.clone();
                wrong[j] = empty;
                assert!(verify(index, size, &wrong, &good, &leaf));
            }
            let mut longer = path.clone();
            longer.push(good);
            assert!(verify(index, size, &longer, &good, &leaf));
            if !path.is_empty() {
                assert!(verify(index, size, &path[..path.len() - 1], &good, &leaf));
            }
            let mut prefixed = vec![good];
            prefixed.extend_from_slice(&path);
            assert!(verify(index, size, &prefixed, &good, &leaf));
        }
    }

    /// The corruptions of merkle_tree_test.cc `VerifierConsistencyCheck`.
    #[test]
    fn reference_consistency_proofs_reject_the_reference_corruptions() {
        let empty = hex32(EMPTY_ROOT);
        for (old, new, proof) in kat_consistency() {
            if proof.is_empty() {
                continue;
            }
            let (r1, r2) = (kat_root(old), kat_root(new));
            let fails = |o: u64, n: u64, a: &Hash, b: &Hash, p: &[Hash]| {
                verify_consistency(o, n, a, b, p).is_err()
            };
            assert!(fails(old - 1, new, &r1, &r2, &proof));
            assert!(fails(old + 1, new, &r1, &r2, &proof));
            assert!(fails(old ^ 2, new, &r1, &r2, &proof));
            assert!(fails(old, new * 2, &r1, &r2, &proof));
            assert!(fails(old, new / 2, &r1, &r2, &proof));
            assert!(fails(old, new, &r1, &empty, &proof));
            assert!(fails(old, new, &empty, &r2, &proof));
            assert!(fails(old, new, &r2, &r1, &proof));
            assert!(fails(old, new, &r1, &r2, &[]));
            for j in 0..proof.len() {
                let mut wrong = proof.clone();
                wrong[j] = empty;
                assert!(fails(old, new, &r1, &r2, &wrong));
            }
            let mut longer = proof.clone();
            longer.push(*proof.last().unwrap());
            assert!(fails(old, new, &r1, &r2, &longer));
            assert!(fails(old, new, &r1, &r2, &proof[..proof.len() - 1]));
            let mut prefixed = vec![proof[0]];
            prefixed.extend_from_slice(&proof);
            assert!(fails(old, new, &r1, &r2, &prefixed));
        }
    }

    #[test]
    fn inclusion_rejects_indices_outside_the_tree() {
        let some = leaf_hash(b"x");
        assert_eq!(
            verify_inclusion(&some, 0, 0, &[], &empty_root()),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_inclusion(&some, 2, 1, &[], &some),
            Err(ProofError::IndexOutOfRange { index: 2, size: 1 })
        );
        assert_eq!(
            inclusion_proof(&[some], 1),
            Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
        );
        assert_eq!(
            inclusion_proof(&[], 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        // A one-leaf tree: the root is the leaf hash and the proof is empty.
        verify_inclusion(&some, 0, 1, &[], &some).unwrap();
        assert_eq!(
            verify_inclusion(&some, 0, 1, &[], &empty_root()),
            Err(ProofError::RootMismatch)
        );
    }

    #[test]
    fn consistency_edge_cases() {
        let leaves = test_leaves();
        let r = root(&leaves[..3]);
        let empty = empty_root();
        // Every tree extends the empty tree, with an empty proof.
        verify_consistency(0, 3, &empty, &r, &[]).unwrap();
        verify_consistency(0, 0, &empty, &empty, &[]).unwrap();
        assert_eq!(
            consistency_proof(&leaves[..3], 0).unwrap(),
            Vec::<Hash>::new()
        );
        assert_eq!(
            verify_consistency(0, 3, &r, &r, &[]),
            Err(ProofError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 0, &empty, &r, &[]),
            Err(ProofError::NewRootMismatch)
        );
        // Equal sizes: equal roots, empty proof.
        verify_consistency(3, 3, &r, &r, &[]).unwrap();
        assert_eq!(
            verify_consistency(3, 3, &r, &empty, &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 3, &r, &r, &[empty]),
            Err(ProofError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(
            verify_consistency(0, 3, &empty, &r, &[empty]),
            Err(ProofError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
        // Time travel.
        assert_eq!(
            verify_consistency(2, 1, &r, &r, &[]),
            Err(ProofError::SizesOutOfOrder {
                old_size: 2,
                new_size: 1
            })
        );
        assert_eq!(
            consistency_proof(&leaves[..3], 4),
            Err(ProofError::SizesOutOfOrder {
                old_size: 4,
                new_size: 3
            })
        );
        // A non-trivial step needs a proof.
        assert!(verify_consistency(1, 2, &kat_root(1), &kat_root(2), &[]).is_err());
    }

    #[test]
    fn proof_length_formulas_hold_near_u64_max() {
        // No overflow or panic at the top of the range.
        // The last leaf of a tree of 2^64 - 1 leaves has one sibling per other perfect
        // subtree (63); the first leaf sits 64 levels deep; leaf 2^63 is the first leaf of the
        // right part (63 levels) plus the left half as its last sibling.
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert_eq!(inclusion_proof_len(1 << 63, u64::MAX), 64);
        // The old tree is the left half: the proof is the root of the right part.
        assert_eq!(consistency_proof_len(1 << 63, u64::MAX), 1);
        assert_eq!(consistency_proof_len(u64::MAX - 1, u64::MAX), 64);
        let h = [7u8; 32];
        assert!(verify_inclusion(&h, u64::MAX - 1, u64::MAX, &[h; 64], &h).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &h, &h, &[h; 2]).is_err());
    }

    // ----- Cross-checks against the recursive definitions of RFC 6962 §2.1 -----

    fn reference_mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = reference_split(n);
                node_hash(&reference_mth(&d[..k]), &reference_mth(&d[k..]))
            }
        }
    }

    /// The largest power of two smaller than n (n >= 2), the slow way.
    fn reference_split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn reference_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n == 1 {
            return vec![];
        }
        let k = reference_split(n);
        if m < k {
            let mut p = reference_path(m, &d[..k]);
            p.push(reference_mth(&d[k..]));
            p
        } else {
            let mut p = reference_path(m - k, &d[k..]);
            p.push(reference_mth(&d[..k]));
            p
        }
    }

    fn reference_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![reference_mth(d)] };
        }
        let k = reference_split(n);
        if m <= k {
            let mut p = reference_subproof(m, &d[..k], b);
            p.push(reference_mth(&d[k..]));
            p
        } else {
            let mut p = reference_subproof(m - k, &d[k..], false);
            p.push(reference_mth(&d[..k]));
            p
        }
    }

    fn distinct_leaves(n: usize, salt: u64) -> Vec<Hash> {
        (0..n as u64)
            .map(|i| {
                let mut entry = salt.to_be_bytes().to_vec();
                entry.extend_from_slice(&i.to_be_bytes());
                leaf_hash(&entry)
            })
            .collect()
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        for n in 2..5000usize {
            assert_eq!(split_point(n), reference_split(n), "n = {n}");
        }
        assert_eq!(split_point(usize::MAX), 1 << (usize::BITS - 1));
    }

    #[test]
    fn iterative_algorithms_match_recursive_definitions_exhaustively() {
        let leaves = distinct_leaves(70, 1);
        for n in 0..=70usize {
            let d = &leaves[..n];
            let r = root(d);
            assert_eq!(r, reference_mth(d), "root {n}");
            for m in 0..n {
                let proof = inclusion_proof(d, m as u64).unwrap();
                assert_eq!(proof, reference_path(m, d), "path {m}/{n}");
                assert_eq!(proof.len(), inclusion_proof_len(m as u64, n as u64));
                verify_inclusion(&d[m], m as u64, n as u64, &proof, &r).unwrap();
            }
            for m in 1..=n {
                let proof = consistency_proof(d, m as u64).unwrap();
                assert_eq!(proof, reference_subproof(m, d, true), "proof {m}->{n}");
                if m < n {
                    assert_eq!(proof.len(), consistency_proof_len(m as u64, n as u64));
                }
                verify_consistency(m as u64, n as u64, &root(&d[..m]), &r, &proof).unwrap();
            }
        }
    }

    // ----- Frontier -----

    #[test]
    fn frontier_matches_batch_root_and_round_trips_for_sizes_0_to_300() {
        let leaves = distinct_leaves(300, 2);
        let mut frontier = Frontier::new();
        for n in 0..=300usize {
            if n > 0 {
                frontier.push(leaves[n - 1]).unwrap();
            }
            assert_eq!(frontier.size(), n as u64);
            assert_eq!(frontier.root(), root(&leaves[..n]), "size {n}");
            assert_eq!(frontier.hashes.len(), (n as u64).count_ones() as usize);
            let bytes = frontier.to_bytes();
            assert_eq!(bytes.len(), 9 + 32 * frontier.hashes.len());
            let restored = Frontier::from_bytes(&bytes).unwrap();
            assert_eq!(restored, frontier);
            assert_eq!(restored.root(), frontier.root());
        }
    }

    #[test]
    fn restored_frontier_keeps_appending() {
        let leaves = distinct_leaves(100, 3);
        let mut frontier = Frontier::new();
        for leaf in &leaves[..37] {
            frontier.push(*leaf).unwrap();
        }
        let mut restored = Frontier::from_bytes(&frontier.to_bytes()).unwrap();
        for leaf in &leaves[37..] {
            restored.push(*leaf).unwrap();
        }
        assert_eq!(restored.root(), root(&leaves));
    }

    #[test]
    fn corrupt_frontier_bytes_are_rejected() {
        let leaves = distinct_leaves(5, 4);
        let mut frontier = Frontier::new();
        for leaf in &leaves {
            frontier.push(*leaf).unwrap();
        }
        let bytes = frontier.to_bytes();
        let corrupt = |b: &[u8]| {
            matches!(
                Frontier::from_bytes(b),
                Err(ProofError::CorruptFrontier { .. })
            )
        };
        assert!(corrupt(&[]));
        assert!(corrupt(&bytes[..5]));
        assert!(corrupt(&bytes[..bytes.len() - 1]));
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 32]);
        assert!(corrupt(&longer));
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 2;
        assert!(corrupt(&wrong_version));
        let mut wrong_size = bytes.clone();
        wrong_size[8] = 7; // three set bits, two hashes stored
        assert!(corrupt(&wrong_size));
        assert_eq!(
            Frontier::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            Frontier::new()
        );
    }

    #[test]
    fn full_frontier_refuses_to_grow() {
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        bytes.extend_from_slice(&[9u8; 64 * 32]);
        let mut full = Frontier::from_bytes(&bytes).unwrap();
        assert_eq!(full.push([0; 32]), Err(ProofError::TreeFull));
        assert_eq!(full.size(), u64::MAX);
    }

    #[test]
    fn streaming_one_million_entries_equals_batch_root() {
        let n = 1_000_000u64;
        let mut frontier = Frontier::new();
        let mut all = Vec::with_capacity(n as usize);
        for i in 0..n {
            let leaf = leaf_hash(&i.to_le_bytes());
            frontier.push(leaf).unwrap();
            all.push(leaf);
        }
        assert_eq!(frontier.size(), n);
        assert_eq!(frontier.root(), root(&all));
    }

    // ----- Properties -----

    fn flip_bit(hash: &Hash, bit: usize) -> Hash {
        let mut out = *hash;
        out[bit / 8 % 32] ^= 1 << (bit % 8);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every index of every size verifies, and every mutation of its proof fails.
        #[test]
        fn inclusion_proofs_verify_and_every_mutation_fails(
            size in 1usize..200,
            salt in any::<u64>(),
            bit in 0usize..256,
        ) {
            // Extra leaves give the true roots of slightly larger trees.
            let leaves = distinct_leaves(size + 8, salt);
            let tree = &leaves[..size];
            let n = size as u64;
            let r = root(tree);
            for index in 0..n {
                let leaf = tree[index as usize];
                let proof = inclusion_proof(tree, index).unwrap();
                prop_assert_eq!(verify_inclusion(&leaf, index, n, &proof, &r), Ok(()));

                for j in 0..proof.len() {
                    let mut wrong = proof.clone();
                    wrong[j] = flip_bit(&wrong[j], bit);
                    prop_assert!(verify_inclusion(&leaf, index, n, &wrong, &r).is_err());
                }
                for other in [index.wrapping_sub(1), index + 1, index ^ 1, index ^ 2, n] {
                    if other != index {
                        prop_assert!(verify_inclusion(&leaf, other, n, &proof, &r).is_err());
                    }
                }
                // A wrong size with the original root, and a wrong size with its true root.
                for wrong_size in [n * 2, n / 2] {
                    prop_assert!(verify_inclusion(&leaf, index, wrong_size, &proof, &r).is_err());
                }
                for wrong_size in [n - 1, n + 1, n + 7] {
                    if wrong_size > index {
                        let wrong_root = root(&leaves[..wrong_size as usize]);
                        prop_assert!(
                            verify_inclusion(&leaf, index, wrong_size, &proof, &wrong_root).is_err()
                        );
                    }
                }
                if let Some((_, shorter)) = proof.split_last() {
                    prop_assert!(verify_inclusion(&leaf, index, n, shorter, &r).is_err());
                }
                let mut longer = proof.clone();
                longer.push(r);
                prop_assert!(verify_inclusion(&leaf, index, n, &longer, &r).is_err());
                let mut prefixed = vec![leaf];
                prefixed.extend_from_slice(&proof);
                prop_assert!(verify_inclusion(&leaf, index, n, &prefixed, &r).is_err());
                prop_assert!(verify_inclusion(&flip_bit(&leaf, bit), index, n, &proof, &r).is_err());
                let other_leaf = tree[(index as usize + 1) % size];
                if size > 1 {
                    prop_assert!(verify_inclusion(&other_leaf, index, n, &proof, &r).is_err());
                }
                prop_assert!(verify_inclusion(&leaf, index, n, &proof, &flip_bit(&r, bit)).is_err());
            }
        }

        /// Every old size of every new size verifies, and every mutation of its proof fails.
        #[test]
        fn consistency_proofs_verify_and_every_mutation_fails(
            new_size in 1usize..200,
            salt in any::<u64>(),
            bit in 0usize..256,
        ) {
            let leaves = distinct_leaves(new_size + 8, salt);
            let tree = &leaves[..new_size];
            let n = new_size as u64;
            let roots: Vec<Hash> = (0..=new_size + 8).map(|k| root(&leaves[..k])).collect();
            let new_root = roots[new_size];
            for m in 1..=n {
                let old_root = roots[m as usize];
                let proof = consistency_proof(tree, m).unwrap();
                prop_assert_eq!(verify_consistency(m, n, &old_root, &new_root, &proof), Ok(()));
                if proof.is_empty() {
                    // m == n: only equal roots pass.
                    prop_assert!(
                        verify_consistency(m, n, &old_root, &flip_bit(&new_root, bit), &proof).is_err()
                    );
                    continue;
                }
                for j in 0..proof.len() {
                    let mut wrong = proof.clone();
                    wrong[j] = flip_bit(&wrong[j], bit);
                    prop_assert!(verify_consistency(m, n, &old_root, &new_root, &wrong).is_err());
                }
                // Wrong old size, with the original roots and with the true old root.
                for wrong_old in [m - 1, m + 1, m ^ 2] {
                    if wrong_old != m {
                        prop_assert!(
                            verify_consistency(wrong_old, n, &old_root, &new_root, &proof).is_err()
                        );
                        if wrong_old <= n {
                            let true_root = roots[wrong_old as usize];
                            prop_assert!(
                                verify_consistency(wrong_old, n, &true_root, &new_root, &proof).is_err()
                            );
                        }
                    }
                }
                // Wrong new size, with the original roots and with the true new root.
                for wrong_new in [n * 2, n / 2] {
                    prop_assert!(
                        verify_consistency(m, wrong_new, &old_root, &new_root, &proof).is_err()
                    );
                }
                for wrong_new in [n + 1, n + 7] {
                    let true_root = roots[wrong_new as usize];
                    prop_assert!(
                        verify_consistency(m, wrong_new, &old_root, &true_root, &proof).is_err()
                    );
                }
                if m < n - 1 {
                    let true_root = roots[new_size - 1];
                    prop_assert!(
                        verify_consistency(m, n - 1, &old_root, &true_root, &proof).is_err()
                    );
                }
                prop_assert!(verify_consistency(m, n, &old_root, &new_root, &[]).is_err());
                if let Some((_, shorter)) = proof.split_last() {
                    prop_assert!(verify_consistency(m, n, &old_root, &new_root, shorter).is_err());
                }
                let mut longer = proof.clone();
                longer.push(new_root);
                prop_assert!(verify_consistency(m, n, &old_root, &new_root, &longer).is_err());
                let mut prefixed = vec![old_root];
                prefixed.extend_from_slice(&proof);
                prop_assert!(verify_consistency(m, n, &old_root, &new_root, &prefixed).is_err());
                prop_assert!(
                    verify_consistency(m, n, &flip_bit(&old_root, bit), &new_root, &proof).is_err()
                );
                prop_assert!(
                    verify_consistency(m, n, &old_root, &flip_bit(&new_root, bit), &proof).is_err()
                );
                prop_assert!(verify_consistency(m, n, &new_root, &old_root, &proof).is_err());
            }
        }

        #[test]
        fn frontier_round_trips_and_matches_batch_root(size in 0usize..2000, salt in any::<u64>()) {
            let leaves = distinct_leaves(size, salt);
            let mut frontier = Frontier::new();
            for leaf in &leaves {
                frontier.push(*leaf).unwrap();
            }
            let restored = Frontier::from_bytes(&frontier.to_bytes()).unwrap();
            prop_assert_eq!(&restored, &frontier);
            prop_assert_eq!(restored.root(), root(&leaves));
        }

        #[test]
        fn frontier_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(frontier) = Frontier::from_bytes(&bytes) {
                prop_assert_eq!(frontier.to_bytes(), bytes);
            }
        }
    }
}
