//! RSA key generation for the sandbox's test PKI. *ring* signs and verifies RSA but cannot make
//! keys, and the `rsa` crate carries an unfixed advisory (RUSTSEC-2023-0071), so the primes are
//! found here with `num-bigint` (trial division, then Miller–Rabin with random bases from the
//! system RNG) and the finished key is handed to *ring*, which validates it before anything
//! signs with it.
//!
//! This is not constant-time and is meant for sandbox test keys only: the sandbox's own
//! `id_token` key and the demo TPP's seal key. Real deployments bring their own keys.

use num_bigint::BigUint;
use ring::rand::{SecureRandom, SystemRandom};

use super::der;

/// Why no key came out (the system RNG failed, or the result did not pass *ring*'s checks).
#[derive(Debug, thiserror::Error)]
#[error("RSA key generation failed: {0}")]
pub struct KeyGenError(&'static str);

/// The public exponent every modern RSA key uses.
const E: u32 = 65_537;

/// Miller–Rabin rounds with random bases: far below 2^-100 error for 1024-bit candidates.
const ROUNDS: usize = 40;

fn small_primes() -> Vec<u32> {
    const LIMIT: usize = 2_000;
    let mut composite = vec![false; LIMIT];
    let mut primes = Vec::new();
    for n in 2..LIMIT {
        if composite.get(n).copied().unwrap_or(true) {
            continue;
        }
        if let Ok(p) = u32::try_from(n) {
            primes.push(p);
        }
        let mut multiple = n * n;
        while multiple < LIMIT {
            if let Some(slot) = composite.get_mut(multiple) {
                *slot = true;
            }
            multiple += n;
        }
    }
    primes
}

fn random_bytes(rng: &SystemRandom, len: usize) -> Result<Vec<u8>, KeyGenError> {
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes)
        .map_err(|_| KeyGenError("the system random number generator failed"))?;
    Ok(bytes)
}

/// A random number in `[2, n - 2]` (for `n > 4`).
fn random_base(rng: &SystemRandom, n: &BigUint) -> Result<BigUint, KeyGenError> {
    let two = BigUint::from(2u32);
    let span = n - BigUint::from(3u32);
    let bytes = random_bytes(rng, usize::try_from(n.bits().div_ceil(8)).unwrap_or(0) + 8)?;
    Ok(BigUint::from_bytes_be(&bytes) % span + two)
}

fn is_probable_prime(n: &BigUint, primes: &[u32], rng: &SystemRandom) -> Result<bool, KeyGenError> {
    for &p in primes {
        if n % p == BigUint::ZERO {
            return Ok(*n == BigUint::from(p));
        }
    }
    let one = BigUint::from(1u32);
    let n_minus_one = n - &one;
    let twos = n_minus_one.trailing_zeros().unwrap_or(0);
    let odd = &n_minus_one >> twos;
    'rounds: for _ in 0..ROUNDS {
        let mut x = random_base(rng, n)?.modpow(&odd, n);
        if x == one || x == n_minus_one {
            continue;
        }
        for _ in 1..twos {
            x = x.modpow(&BigUint::from(2u32), n);
            if x == n_minus_one {
                continue 'rounds;
            }
        }
        return Ok(false);
    }
    Ok(true)
}

/// A random prime of exactly `bits` bits whose top two bits are set (so two of them multiply
/// to a modulus of exactly twice the size) and with `p - 1` coprime to `E`.
fn random_prime(bits: u64, primes: &[u32], rng: &SystemRandom) -> Result<BigUint, KeyGenError> {
    let bytes = usize::try_from(bits / 8).map_err(|_| KeyGenError("key size"))?;
    loop {
        let mut raw = random_bytes(rng, bytes)?;
        if let Some(first) = raw.first_mut() {
            *first |= 0xc0;
        }
        if let Some(last) = raw.last_mut() {
            *last |= 1;
        }
        let candidate = BigUint::from_bytes_be(&raw);
        if (&candidate - 1u32) % E == BigUint::ZERO {
            continue;
        }
        if is_probable_prime(&candidate, primes, rng)? {
            return Ok(candidate);
        }
    }
}

/// A new RSA private key of `bits` bits (2048..=4096, a multiple of 16), as PKCS#8 DER.
pub fn generate_rsa_pkcs8(bits: u64) -> Result<Vec<u8>, KeyGenError> {
    if !(2048..=4096).contains(&bits) || !bits.is_multiple_of(16) {
        return Err(KeyGenError(
            "size must be 2048..=4096 bits, a multiple of 16",
        ));
    }
    let rng = SystemRandom::new();
    let primes = small_primes();
    let e = BigUint::from(E);
    let one = BigUint::from(1u32);
    loop {
        let a = random_prime(bits / 2, &primes, &rng)?;
        let b = random_prime(bits / 2, &primes, &rng)?;
        // *ring* expects q < p.
        let (p, q) = match a.cmp(&b) {
            std::cmp::Ordering::Greater => (a, b),
            std::cmp::Ordering::Less => (b, a),
            std::cmp::Ordering::Equal => continue,
        };
        let n = &p * &q;
        if n.bits() != bits {
            continue;
        }
        let phi = (&p - &one) * (&q - &one);
        let Some(d) = e.modinv(&phi) else { continue };
        let Some(q_inv) = q.modinv(&p) else { continue };
        let dp = &d % (&p - &one);
        let dq = &d % (&q - &one);
        let int = |v: &BigUint| der::unsigned_integer(&v.to_bytes_be());
        let rsa_private_key = der::sequence(&[
            der::unsigned_integer(&[0]),
            int(&n),
            int(&e),
            int(&d),
            int(&p),
            int(&q),
            int(&dp),
            int(&dq),
            int(&q_inv),
        ]);
        let pkcs8 = der::sequence(&[
            der::unsigned_integer(&[0]),
            der::sequence(&[
                der::oid(&[1, 2, 840, 113_549, 1, 1, 1]),
                der::element(der::NULL, &[]),
            ]),
            der::element(der::OCTET_STRING, &rsa_private_key),
        ]);
        ring::signature::RsaKeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| KeyGenError("ring refused the generated key"))?;
        return Ok(pkcs8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256, UnparsedPublicKey};

    #[test]
    fn generated_keys_sign_and_verify() {
        let pkcs8 = generate_rsa_pkcs8(2048).unwrap();
        let key = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.public().modulus_len(), 256);
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PSS_SHA256,
            &SystemRandom::new(),
            b"hello",
            &mut signature,
        )
        .unwrap();
        let public = UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, key.public().as_ref());
        assert!(public.verify(b"hello", &signature).is_ok());
        assert!(public.verify(b"hellO", &signature).is_err());
    }

    #[test]
    fn primality() {
        let rng = SystemRandom::new();
        let primes = small_primes();
        assert_eq!(primes.first(), Some(&2));
        // 2^127 - 1 is prime; 2^128 + 1 is not (59649589127497217 divides it).
        let mersenne = (BigUint::from(1u32) << 127u32) - 1u32;
        assert!(is_probable_prime(&mersenne, &primes, &rng).unwrap());
        let fermat = (BigUint::from(1u32) << 128u32) + 1u32;
        assert!(!is_probable_prime(&fermat, &primes, &rng).unwrap());
        assert!(generate_rsa_pkcs8(1024).is_err());
    }
}
