//! DynamoDB's number type: decimal, up to 38 significant digits, magnitudes from 1E-130 to
//! 9.9999999999999999999999999999999999999E+125, compared by value and added exactly.
//!
//! A number is kept as `±0.D × 10^exp` with `D` a string of digits without leading or
//! trailing zeros (empty for zero), which makes comparison and the canonical text (what
//! DynamoDB answers: `"1.50"` comes back as `"1.5"`) simple.

use std::cmp::Ordering;

/// Significant digits a number may have.
pub const MAX_DIGITS: usize = 38;
/// `0.D × 10^exp` must have `exp` in this range: 1E-130 is `0.1 × 10^-129`, and
/// 9.99...E+125 is `0.999... × 10^126`.
const MIN_EXP: i64 = -129;
const MAX_EXP: i64 = 126;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// Each in 0..=9; the first and the last are not 0. Empty for zero.
    digits: Vec<u8>,
    exp: i64,
}

/// Why a text is not a DynamoDB number; the messages are DynamoDB's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    Invalid,
    TooManyDigits,
    Overflow,
    Underflow,
}

impl NumberError {
    pub fn message(&self) -> &'static str {
        match self {
            NumberError::Invalid => "A value provided cannot be converted into a number",
            NumberError::TooManyDigits => {
                "Attempting to store more than 38 significant digits in a Number"
            }
            NumberError::Overflow => {
                "Number overflow. Attempting to store a number with magnitude larger than supported range"
            }
            NumberError::Underflow => {
                "Number underflow. Attempting to store a number with magnitude smaller than supported range"
            }
        }
    }
}

impl Number {
    pub fn zero() -> Number {
        Number {
            negative: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    pub fn from_u64(n: u64) -> Number {
        Number::parse(&n.to_string()).unwrap_or_else(|_| Number::zero())
    }

    /// Parses DynamoDB's number text: an optional sign, digits with an optional decimal
    /// point, an optional exponent.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&sign) = bytes.first()
            && (sign == b'-' || sign == b'+')
        {
            negative = sign == b'-';
            i = 1;
        }
        let mut mantissa = Vec::new();
        let mut int_len: i64 = 0;
        let mut seen_point = false;
        let mut seen_digit = false;
        while i < bytes.len() {
            match bytes[i] {
                b @ b'0'..=b'9' => {
                    mantissa.push(b - b'0');
                    if !seen_point {
                        int_len += 1;
                    }
                    seen_digit = true;
                }
                b'.' if !seen_point => seen_point = true,
                b'e' | b'E' => break,
                _ => return Err(NumberError::Invalid),
            }
            i += 1;
        }
        if !seen_digit {
            return Err(NumberError::Invalid);
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() {
            // The exponent: `e`, an optional sign, at least one digit.
            i += 1;
            let mut exp_negative = false;
            if let Some(&sign) = bytes.get(i)
                && (sign == b'-' || sign == b'+')
            {
                exp_negative = sign == b'-';
                i += 1;
            }
            let digits = &bytes[i..];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(NumberError::Invalid);
            }
            for d in digits {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(d - b'0'));
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        Number::normalized(negative, mantissa, int_len.saturating_add(exponent))
    }

    /// `±0.digits × 10^exp`, with `digits` possibly carrying leading and trailing zeros.
    fn normalized(
        negative: bool,
        mut digits: Vec<u8>,
        mut exp: i64,
    ) -> Result<Number, NumberError> {
        let leading = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading);
        exp = exp.saturating_sub(leading as i64);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Ok(Number::zero());
        }
        if digits.len() > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        if exp > MAX_EXP {
            return Err(NumberError::Overflow);
        }
        if exp < MIN_EXP {
            return Err(NumberError::Underflow);
        }
        Ok(Number {
            negative,
            digits,
            exp,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// The size DynamoDB counts for the value: about one byte per two significant
    /// digits, plus one.
    pub fn size(&self) -> usize {
        self.digits.len().div_ceil(2) + 1
    }

    /// `self + other`, exactly; an error when the sum has more than 38 significant
    /// digits or leaves the range.
    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        // Both as integers times 10^scale, at the smaller scale.
        let scale_a = self.exp - self.digits.len() as i64;
        let scale_b = other.exp - other.digits.len() as i64;
        let scale = scale_a.min(scale_b);
        let a = padded(&self.digits, (scale_a - scale) as usize);
        let b = padded(&other.digits, (scale_b - scale) as usize);
        let (negative, magnitude) = if self.negative == other.negative {
            (self.negative, add_magnitudes(&a, &b))
        } else {
            match compare_magnitudes(&a, &b) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (self.negative, sub_magnitudes(&a, &b)),
                Ordering::Less => (other.negative, sub_magnitudes(&b, &a)),
            }
        };
        let len = magnitude.len() as i64;
        Number::normalized(negative, magnitude, len + scale)
    }

    pub fn negated(&self) -> Number {
        let mut n = self.clone();
        if !n.is_zero() {
            n.negative = !n.negative;
        }
        n
    }

    pub fn sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.add(&other.negated())
    }
}

fn padded(digits: &[u8], zeros: usize) -> Vec<u8> {
    let mut v = digits.to_vec();
    v.resize(digits.len() + zeros, 0);
    v
}

fn compare_magnitudes(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading(a);
    let b = strip_leading(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_leading(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|x| **x == 0).count();
    &d[n..]
}

fn add_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let x = if i > 0 {
            i -= 1;
            a[i]
        } else {
            0
        };
        let y = if j > 0 {
            j -= 1;
            b[j]
        } else {
            0
        };
        let s = x + y + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    out.reverse();
    out
}

/// `a - b` for `a >= b`.
fn sub_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut i, mut j, mut borrow) = (a.len(), b.len(), 0i8);
    while i > 0 {
        i -= 1;
        let y = if j > 0 {
            j -= 1;
            b[j] as i8
        } else {
            0
        };
        let mut d = a[i] as i8 - y - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(d as u8);
    }
    out.reverse();
    out
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        let class = |n: &Number| match (n.is_zero(), n.negative) {
            (true, _) => 0i8,
            (false, false) => 1,
            (false, true) => -1,
        };
        let (ca, cb) = (class(self), class(other));
        if ca != cb || ca == 0 {
            return ca.cmp(&cb);
        }
        let magnitude = self
            .exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Number {
    /// The canonical text: plain decimal notation, no leading or trailing zeros.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let digits: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let len = self.digits.len() as i64;
        if self.negative {
            f.write_str("-")?;
        }
        if self.exp <= 0 {
            write!(f, "0.{}{digits}", "0".repeat((-self.exp) as usize))
        } else if self.exp >= len {
            write!(f, "{digits}{}", "0".repeat((self.exp - len) as usize))
        } else {
            let (int, frac) = digits.split_at(self.exp as usize);
            write!(f, "{int}.{frac}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn canonical_text() {
        for (text, canonical) in [
            ("0", "0"),
            ("-0.000", "0"),
            ("007", "7"),
            ("1.50", "1.5"),
            ("1e2", "100"),
            ("1.5E-3", "0.0015"),
            ("-123.456", "-123.456"),
            ("+42", "42"),
            ("12345678901234567890", "12345678901234567890"),
        ] {
            assert_eq!(n(text).to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn refusals() {
        for text in ["", "-", ".", "1e", "abc", "1.2.3", "NaN", "Infinity", " 1"] {
            assert_eq!(Number::parse(text), Err(NumberError::Invalid), "{text:?}");
        }
        assert_eq!(
            Number::parse(&"1".repeat(39)),
            Err(NumberError::TooManyDigits)
        );
        assert!(Number::parse(&"1".repeat(38)).is_ok());
        assert_eq!(Number::parse("1E126"), Err(NumberError::Overflow));
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
        assert!(Number::parse("1E-130").is_ok());
    }

    #[test]
    fn order_is_numeric() {
        let sorted = [
            "-1000", "-2.5", "-2", "-0.001", "0", "0.001", "0.01", "1", "1.5", "2", "10", "99",
            "100",
        ];
        for w in sorted.windows(2) {
            assert!(n(w[0]) < n(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(n("1.0"), n("1"));
    }

    #[test]
    fn arithmetic_is_exact() {
        for (a, b, sum) in [
            ("1", "1", "2"),
            ("0.1", "0.2", "0.3"),
            ("99", "1", "100"),
            ("5", "-7", "-2"),
            ("-5", "5", "0"),
            ("1e20", "1", "100000000000000000001"),
            ("123.45", "-0.45", "123"),
        ] {
            assert_eq!(n(a).add(&n(b)).unwrap().to_string(), sum, "{a} + {b}");
        }
        assert_eq!(n("10").sub(&n("0.5")).unwrap().to_string(), "9.5");
        assert_eq!(n(&"9".repeat(38)).add(&n("1")), Ok(n("1e38")));
        assert_eq!(n("1").add(&n("1e-40")), Err(NumberError::TooManyDigits));
    }

    #[test]
    fn sizes() {
        assert_eq!(n("1").size(), 2);
        assert_eq!(n("12").size(), 2);
        assert_eq!(n("123").size(), 3);
        assert_eq!(n("1000").size(), 2);
    }
}
