//! IBAN check digits and national account numbers, so that every generated IBAN passes the
//! mod-97 check a connector (or a real payment scheme) would run on it.

/// Countries whose account numbers the sandbox can generate.
pub const SUPPORTED_COUNTRIES: [&str; 6] = ["DE", "FR", "GB", "AT", "NL", "BE"];

/// Expected IBAN length per country, for validation of creditor accounts.
fn expected_length(country: &str) -> Option<usize> {
    Some(match country {
        "DE" => 22,
        "FR" | "MC" | "IT" => 27,
        "GB" | "IE" => 22,
        "AT" | "EE" | "LT" => 20,
        "NL" => 18,
        "BE" => 16,
        "ES" | "SE" | "SK" | "CZ" => 24,
        "LU" => 20,
        "PT" => 25,
        "FI" | "DK" => 18,
        "CH" | "LI" => 21,
        "PL" => 28,
        _ => return None,
    })
}

/// Remainder of the number spelled by an IBAN-style string (letters count as 10..35), mod 97.
fn mod97(text: &str) -> Option<u32> {
    let mut rem: u32 = 0;
    for ch in text.chars() {
        let value = ch.to_digit(36)?;
        if value >= 10 {
            rem = (rem * 100 + value) % 97;
        } else {
            rem = (rem * 10 + value) % 97;
        }
    }
    Some(rem)
}

/// Builds an IBAN from country and BBAN by computing the two check digits.
pub fn from_bban(country: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{country}00");
    let check = 98 - mod97(&rearranged).unwrap_or(0);
    format!("{country}{check:02}{bban}")
}

/// Builds a SEPA creditor identifier (`DE98ZZZ09999999999`): country, check digits over the
/// national part, and the `ZZZ` business code that the check leaves out.
pub fn creditor_id(country: &str, national: &str) -> String {
    let rearranged = format!("{national}{country}00");
    let check = 98 - mod97(&rearranged).unwrap_or(0);
    format!("{country}{check:02}ZZZ{national}")
}

/// True when the text is an IBAN with valid structure and check digits.
pub fn is_valid(iban: &str) -> bool {
    let bytes = iban.as_bytes();
    if bytes.len() < 15 || bytes.len() > 34 {
        return false;
    }
    if !bytes[..2].iter().all(u8::is_ascii_uppercase) || !bytes[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    if !bytes[4..]
        .iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    let country = &iban[..2];
    if let Some(len) = expected_length(country)
        && len != iban.len()
    {
        return false;
    }
    let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
    mod97(&rearranged) == Some(1)
}

/// Pads a number with leading zeros to a fixed width (keeping the lowest digits).
fn digits(value: u64, width: usize) -> String {
    let text = format!("{value:0width$}");
    text[text.len() - width..].to_string()
}

/// The French RIB key over bank, branch and account (letters mapped as the RIB rules say).
fn rib_key(bank: &str, branch: &str, account: &str) -> u64 {
    let numeric = |s: &str| -> u64 {
        s.chars().fold(0u64, |acc, ch| {
            let d = match ch {
                '0'..='9' => u64::from(ch.to_digit(10).unwrap_or(0)),
                'A' | 'J' => 1,
                'B' | 'K' | 'S' => 2,
                'C' | 'L' | 'T' => 3,
                'D' | 'M' | 'U' => 4,
                'E' | 'N' | 'V' => 5,
                'F' | 'O' | 'W' => 6,
                'G' | 'P' | 'X' => 7,
                'H' | 'Q' | 'Y' => 8,
                _ => 9,
            };
            acc * 10 + d
        })
    };
    let sum =
        (89 * (numeric(bank) % 97) + 15 * (numeric(branch) % 97) + 3 * (numeric(account) % 97))
            % 97;
    97 - sum
}

/// National account data for one generated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NationalAccount {
    pub iban: String,
    pub bban: String,
    /// UK only: six-digit sort code and eight-digit account number.
    pub sort_code: Option<String>,
    pub account_number: Option<String>,
}

/// Generates the account identifiers of one account, from a bank code and a per-account number.
///
/// `bank_code` is a deterministic number derived from the bank id; `bank_letters` is the four
/// letter bank code that GB and NL IBANs carry.
pub fn national_account(
    country: &str,
    bank_code: u64,
    bank_letters: &str,
    number: u64,
) -> Option<NationalAccount> {
    let bban = match country {
        "DE" => format!("{}{}", digits(bank_code, 8), digits(number, 10)),
        "AT" => format!("{}{}", digits(bank_code, 5), digits(number, 11)),
        "NL" => format!("{bank_letters}{}", digits(number, 10)),
        "BE" => {
            let base = format!("{}{}", digits(bank_code, 3), digits(number, 7));
            let value: u64 = base.parse().ok()?;
            let check = match value % 97 {
                0 => 97,
                r => r,
            };
            format!("{base}{check:02}")
        }
        "FR" => {
            let bank = digits(bank_code, 5);
            let branch = digits(bank_code / 7 + 10_000, 5);
            let account = digits(number, 11);
            let key = rib_key(&bank, &branch, &account);
            format!("{bank}{branch}{account}{key:02}")
        }
        "GB" => {
            let sort_code = digits(bank_code, 6);
            let account_number = digits(number, 8);
            let bban = format!("{bank_letters}{sort_code}{account_number}");
            return Some(NationalAccount {
                iban: from_bban("GB", &bban),
                bban,
                sort_code: Some(sort_code),
                account_number: Some(account_number),
            });
        }
        _ => return None,
    };
    Some(NationalAccount {
        iban: from_bban(country, &bban),
        bban,
        sort_code: None,
        account_number: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ibans_validate() {
        assert!(is_valid("DE89370400440532013000"));
        assert!(is_valid("GB29NWBK60161331926819"));
        assert!(is_valid("FR1420041010050500013M02606"));
        assert!(!is_valid("DE89370400440532013001"));
        assert!(!is_valid("de89370400440532013000"));
        // The Bundesbank's documented example creditor identifier.
        assert_eq!(creditor_id("DE", "09999999999"), "DE98ZZZ09999999999");
    }

    #[test]
    fn generated_ibans_validate() {
        for country in SUPPORTED_COUNTRIES {
            for n in [1, 42, 987_654_321] {
                let acc = national_account(country, 12_345_678, "SNDB", n);
                let acc = acc.unwrap_or_else(|| panic!("{country} unsupported"));
                assert!(is_valid(&acc.iban), "{country}: {}", acc.iban);
            }
        }
        // The French RIB key of the well-known example account.
        assert_eq!(rib_key("20041", "01005", "0500013M026"), 6);
    }
}
