//! English numbers spelled out in words, for G2P sentence mode (`[text] numbers = "english"`):
//! `I have 25 books.` → `I have twenty five books.`, whose words then go through the lexicon
//! (every number word is in CMUdict) or the model like any other.
//!
//! The conventions follow g2p_en's `normalize_numbers` (itself inflect's), which users of
//! g2p_en expect, with these choices of recur's:
//!
//! | written | spoken |
//! |---|---|
//! | `25`, `1,234,567` (commas only in groups of three) | `twenty five`, `one million two hundred thirty four thousand five hundred sixty seven` (no `and`, as g2p_en) |
//! | `0`, `007` (a leading zero) | `zero`, `zero zero seven` (digit by digit) |
//! | a plain 4-digit `1100`–`1999` or `2010`–`2099` (a year) | `nineteen eighty four`, `nineteen oh five`, `nineteen hundred`, `twenty twenty six` |
//! | `2000`–`2009` | `two thousand five` (a cardinal, no `and`, as g2p_en) |
//! | `3.5`, `0.25` | `three point five`, `zero point two five` (decimals digit by digit) |
//! | `1st`, `22nd`, `100th` | `first`, `twenty second`, `one hundredth` |
//! | `1980s`, `5's` | `nineteen eighties`, `fives` |
//! | `25%` | `twenty five percent` |
//! | `$5`, `$1.50`, `$0.99`, `£3`, `€2.5` | `five dollars`, `one dollar fifty cents`, `ninety nine cents`, `three pounds`, `two point five euros` |
//! | `10:30`, `10:05`, `7:00`, `14:00` | `ten thirty`, `ten oh five`, `seven o'clock`, `fourteen hundred` |
//!
//! Words are separated by single spaces (`twenty five`, not `twenty-five`: each is a lexicon
//! word), and a number touching a letter gets a space on that side (`mp3` → `mp three`).
//! A number with more than 12 digits in a part (past 999,999,999,999) is left as written, and
//! so are URLs and e-mail addresses (see [`crate::text`]).

use std::borrow::Cow;

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [(u64, &str); 3] = [
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];
/// Digits of the largest part spelled (999,999,999,999).
const MAX_DIGITS: usize = 12;

/// `line` with its numbers written in English words (borrowed when it has no digit).
pub fn spell_numbers(line: &str) -> Cow<'_, str> {
    if !line.bytes().any(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() * 2);
    let mut i = 0;
    while i < line.len() {
        let token_start = i == 0 || line[..i].ends_with(char::is_whitespace);
        if token_start {
            let end = line[i..]
                .find(char::is_whitespace)
                .map_or(line.len(), |e| i + e);
            if crate::text::is_address(&line[i..end]) {
                out.push_str(&line[i..end]);
                i = end;
                continue;
            }
        }
        if let Some((words, len)) = number_at(line, i) {
            push_spaced(&mut out, &words.join(" "), line[i + len..].chars().next());
            i += len;
            continue;
        }
        // A number too long to spell stays whole (not spelled from its last 12 digits on).
        let unspelled = digit_run(&line[i..]);
        if unspelled > 0 {
            out.push_str(&line[i..i + unspelled]);
            i += unspelled;
            continue;
        }
        let Some(c) = line[i..].chars().next() else {
            break;
        };
        out.push(c);
        i += c.len_utf8();
    }
    Cow::Owned(out)
}

/// Bytes of the digits starting `s`, with their inner `.`, `,` and `:` (`123.45,6`).
fn digit_run(s: &str) -> usize {
    let b = s.as_bytes();
    let mut len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    while len > 0 && matches!(b.get(len), Some(b'.' | b',' | b':')) {
        let more = b[len + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if more == 0 {
            break;
        }
        len += 1 + more;
    }
    len
}

/// Appends `words`, with a space on a side where they would touch a letter or digit.
fn push_spaced(out: &mut String, words: &str, next: Option<char>) {
    if out.ends_with(char::is_alphanumeric) {
        out.push(' ');
    }
    out.push_str(words);
    if next.is_some_and(char::is_alphanumeric) {
        out.push(' ');
    }
}

/// The number written at byte `i` of `line` (starting with a digit or a currency sign): its
/// words and its length in bytes; `None` when there is none, or it is too long to spell.
fn number_at(line: &str, i: usize) -> Option<(Vec<String>, usize)> {
    let rest = &line[i..];
    let (currency, after_sign) = match rest.chars().next()? {
        '$' => (Some(&DOLLAR), 1),
        '£' => (Some(&POUND), '£'.len_utf8()),
        '€' => (Some(&EURO), '€'.len_utf8()),
        _ => (None, 0),
    };
    // An amount is never a time: `$10:30` is ten dollars, then `:30`.
    let n = Numeral::scan(&rest[after_sign..], currency.is_none())?;
    if n.int.len() > MAX_DIGITS || n.frac.is_some_and(|f| f.len() > MAX_DIGITS) {
        return None;
    }
    let tail = &rest[after_sign + n.len..];
    let (words, suffix) = match currency {
        Some(c) => (money(&n, c), 0),
        None => plain(&n, tail),
    };
    Some((words, after_sign + n.len + suffix))
}

/// Digits as written: an integer part (thousands commas removed), a decimal fraction, or a
/// time `H:MM`.
#[derive(Debug, PartialEq)]
struct Numeral<'a> {
    /// The integer part's digits.
    int: String,
    /// The digits after a decimal point.
    frac: Option<&'a str>,
    /// Minutes of a time `H:MM` (then `int` is the hour).
    minutes: Option<u64>,
    /// Whether the integer part had thousands commas (then it is never read as a year).
    grouped: bool,
    /// Bytes it spans.
    len: usize,
}

impl<'a> Numeral<'a> {
    /// Reads the digits starting `s` (`None` when it does not start with a digit); `times`:
    /// whether `H:MM` is a time.
    fn scan(s: &'a str, times: bool) -> Option<Numeral<'a>> {
        let digits = |from: usize| s[from..].bytes().take_while(u8::is_ascii_digit).count();
        let first = digits(0);
        if first == 0 {
            return None;
        }
        let (int, grouped, mut len) = Numeral::grouped(s, first);
        let mut n = Numeral {
            int,
            frac: None,
            minutes: None,
            grouped,
            len,
        };
        let after = |sep: u8| s.as_bytes().get(len) == Some(&sep) && digits(len + 1) > 0;
        if after(b'.') {
            let f = digits(len + 1);
            n.frac = Some(&s[len + 1..len + 1 + f]);
            len += 1 + f;
        } else if times && !grouped && first <= 2 && after(b':') && digits(len + 1) == 2 {
            n.minutes = s[len + 1..len + 3].parse().ok().filter(|&m| m < 60);
            if n.minutes.is_some() && n.int.parse::<u64>().is_ok_and(|h| h < 24) {
                len += 3;
            } else {
                n.minutes = None;
            }
        }
        n.len = len;
        Some(n)
    }

    /// The integer part of `s` whose first `first` bytes are digits: with thousands groups
    /// (`1,234,567`: commas every three digits, at most three digits before the first) when
    /// written so, else the plain digits.
    fn grouped(s: &str, first: usize) -> (String, bool, usize) {
        let bytes = s.as_bytes();
        let mut int = s[..first].to_string();
        let mut len = first;
        let group = |at: usize| {
            bytes.get(at) == Some(&b',')
                && bytes
                    .get(at + 1..at + 4)
                    .is_some_and(|g| g.iter().all(u8::is_ascii_digit))
                && !bytes.get(at + 4).is_some_and(u8::is_ascii_digit)
        };
        if first > 3 || !group(len) {
            return (int, false, len);
        }
        while group(len) {
            int.push_str(&s[len + 1..len + 4]);
            len += 4;
        }
        (int, true, len)
    }
}

/// Words of a number without a currency, and the bytes of the suffix it took from `tail`
/// (an ordinal `st`/`nd`/`rd`/`th`, a plural `s`/`'s`, or `%`).
fn plain(n: &Numeral, tail: &str) -> (Vec<String>, usize) {
    if let Some(m) = n.minutes {
        return (time(&n.int, m), 0);
    }
    let mut words = integer(n);
    if let Some(f) = n.frac {
        words.push("point".into());
        words.extend(digit_by_digit(f));
    }
    if tail.starts_with('%') {
        words.push("percent".into());
        return (words, 1);
    }
    if n.frac.is_some() {
        return (words, 0);
    }
    let ends_word = |k: usize| !tail[k..].starts_with(char::is_alphanumeric);
    let lower = tail.get(..2).map(str::to_ascii_lowercase);
    if matches!(lower.as_deref(), Some("st" | "nd" | "rd" | "th")) && ends_word(2) {
        change_last(&mut words, ordinal);
        return (words, 2);
    }
    for suffix in ["'s", "s"] {
        if tail.starts_with(suffix) && ends_word(suffix.len()) {
            change_last(&mut words, plural);
            return (words, suffix.len());
        }
    }
    (words, 0)
}

/// The integer part in words: a year, a cardinal, or digit by digit after a leading zero.
fn integer(n: &Numeral) -> Vec<String> {
    let Ok(value) = n.int.parse::<u64>() else {
        return digit_by_digit(&n.int);
    };
    if n.int.len() > 1 && n.int.starts_with('0') {
        return digit_by_digit(&n.int);
    }
    let year = n.int.len() == 4 && !n.grouped && n.frac.is_none();
    if year && ((1100..2000).contains(&value) || (2010..2100).contains(&value)) {
        return year_words(value);
    }
    cardinal(value)
}

/// `n` (below 10¹²) as a cardinal: `one million two hundred thousand five`.
pub fn cardinal(n: u64) -> Vec<String> {
    if n == 0 {
        return vec![ONES[0].into()];
    }
    let mut words = Vec::new();
    let mut rest = n;
    for (scale, name) in SCALES {
        if rest >= scale {
            below_thousand(rest / scale, &mut words);
            words.push(name.into());
            rest %= scale;
        }
    }
    if rest > 0 {
        below_thousand(rest, &mut words);
    }
    words
}

/// 1–999 in words.
fn below_thousand(n: u64, words: &mut Vec<String>) {
    if n >= 100 {
        words.push(ONES[(n / 100) as usize].into());
        words.push("hundred".into());
    }
    if !n.is_multiple_of(100) {
        below_hundred(n % 100, words);
    }
}

/// 1–99 in words.
fn below_hundred(n: u64, words: &mut Vec<String>) {
    let n = n as usize;
    if n < 20 {
        words.push(ONES[n].into());
        return;
    }
    words.push(TENS[n / 10].into());
    if !n.is_multiple_of(10) {
        words.push(ONES[n % 10].into());
    }
}

/// A year as said in two halves: `nineteen eighty four`, `nineteen oh five`, `nineteen
/// hundred`, `twenty twenty six`.
fn year_words(year: u64) -> Vec<String> {
    let mut words = Vec::new();
    below_hundred(year / 100, &mut words);
    match year % 100 {
        0 => words.push("hundred".into()),
        low @ 1..=9 => {
            words.push("oh".into());
            words.push(ONES[low as usize].into());
        }
        low => below_hundred(low, &mut words),
    }
    words
}

/// A time `H:MM`: `ten thirty`, `ten oh five`, `seven o'clock`, `fourteen hundred`.
fn time(hour: &str, minutes: u64) -> Vec<String> {
    let h = hour.parse::<u64>().unwrap_or(0);
    let mut words = cardinal(h);
    match minutes {
        0 if (1..=12).contains(&h) => words.push("o'clock".into()),
        0 => words.push("hundred".into()),
        m @ 1..=9 => {
            words.push("oh".into());
            words.push(ONES[m as usize].into());
        }
        m => below_hundred(m, &mut words),
    }
    words
}

/// Each digit as a word: `zero zero seven`.
fn digit_by_digit(digits: &str) -> Vec<String> {
    digits
        .bytes()
        .map(|d| ONES[usize::from(d - b'0')].into())
        .collect()
}

/// Replaces the last word with `f` of it.
fn change_last(words: &mut [String], f: fn(&str) -> String) {
    if let Some(last) = words.last_mut() {
        *last = f(last);
    }
}

/// A number word's ordinal: `one` → `first`, `twenty` → `twentieth`, `million` → `millionth`.
fn ordinal(word: &str) -> String {
    let irregular = [
        ("one", "first"),
        ("two", "second"),
        ("three", "third"),
        ("five", "fifth"),
        ("eight", "eighth"),
        ("nine", "ninth"),
        ("twelve", "twelfth"),
    ];
    if let Some((_, o)) = irregular.iter().find(|(w, _)| *w == word) {
        return (*o).to_string();
    }
    match word.strip_suffix('y') {
        Some(stem) => format!("{stem}ieth"),
        None => format!("{word}th"),
    }
}

/// A number word's plural: `eighty` → `eighties`, `six` → `sixes`, `hundred` → `hundreds`.
fn plural(word: &str) -> String {
    if let Some(stem) = word.strip_suffix('y') {
        return format!("{stem}ies");
    }
    if word.ends_with('x') {
        return format!("{word}es");
    }
    format!("{word}s")
}

/// The singular or the plural of a unit, for `count` of it.
fn unit_name(count: u64, (one, many): (&'static str, &'static str)) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

/// A currency's words.
struct Currency {
    unit: (&'static str, &'static str),
    cent: (&'static str, &'static str),
}

const DOLLAR: Currency = Currency {
    unit: ("dollar", "dollars"),
    cent: ("cent", "cents"),
};
const POUND: Currency = Currency {
    unit: ("pound", "pounds"),
    cent: ("penny", "pence"),
};
const EURO: Currency = Currency {
    unit: ("euro", "euros"),
    cent: ("cent", "cents"),
};

/// An amount after a currency sign: `five dollars`, `one dollar fifty cents`, `ninety nine
/// cents`; a fraction that is not two digits is read as a decimal (`two point five euros`).
fn money(n: &Numeral, c: &Currency) -> Vec<String> {
    let units = n.int.parse::<u64>().unwrap_or(0);
    let cents = match n.frac {
        None => Some(0),
        Some(f) if f.len() == 2 => f.parse::<u64>().ok(),
        Some(_) => None,
    };
    let Some(cents) = cents else {
        let mut words = integer(n);
        if let Some(f) = n.frac {
            words.push("point".into());
            words.extend(digit_by_digit(f));
        }
        words.push(c.unit.1.into());
        return words;
    };
    let mut words = Vec::new();
    if units > 0 || cents == 0 {
        words.extend(cardinal(units));
        words.push(unit_name(units, c.unit).into());
    }
    if cents > 0 {
        words.extend(cardinal(cents));
        words.push(unit_name(cents, c.cent).into());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_words() {
        for (written, spoken) in [
            ("I have 25 books.", "I have twenty five books."),
            ("0 7 10 13 40 99", "zero seven ten thirteen forty ninety nine"),
            ("100 101 999", "one hundred one hundred one nine hundred ninety nine"),
            ("1,000 1,234,567", "one thousand one million two hundred thirty four thousand five hundred sixty seven"),
            ("999,999,999,999", "nine hundred ninety nine billion nine hundred ninety nine million nine hundred ninety nine thousand nine hundred ninety nine"),
            ("1000000", "one million"),
            ("1984 1905 1900 1100", "nineteen eighty four nineteen oh five nineteen hundred eleven hundred"),
            ("2026 2010 2099", "twenty twenty six twenty ten twenty ninety nine"),
            ("2000 2005 2100 1066 1,984", "two thousand two thousand five two thousand one hundred one thousand sixty six one thousand nine hundred eighty four"),
            ("3.5 0.25 3.14.", "three point five zero point two five three point one four."),
            ("007 05", "zero zero seven zero five"),
            ("1st 2nd 3rd 4th 11th 12th 22nd 100th 1000000th", "first second third fourth eleventh twelfth twenty second one hundredth one millionth"),
            ("the 1980s, 5's and 1900s", "the nineteen eighties, fives and nineteen hundreds"),
            ("25% 3.5%", "twenty five percent three point five percent"),
            ("$5 $1 $1.50 $0.99 $2.5 $1,000,000", "five dollars one dollar one dollar fifty cents ninety nine cents two point five dollars one million dollars"),
            ("£3 £1.01 €2", "three pounds one pound one penny two euros"),
            ("10:30 10:05 7:00 14:00 25:00", "ten thirty ten oh five seven o'clock fourteen hundred twenty five:zero zero"),
        ] {
            assert_eq!(spell_numbers(written), spoken, "{written}");
        }
    }

    #[test]
    fn letters_digits_and_long_numbers() {
        assert_eq!(spell_numbers("mp3 4x4"), "mp three four x four");
        assert_eq!(spell_numbers("3rdparty"), "three rdparty", "not an ordinal");
        assert_eq!(
            spell_numbers("1,23 1,2345"),
            "one,twenty three one,two thousand three hundred forty five"
        );
        assert_eq!(
            spell_numbers("1234567890123 x"),
            "1234567890123 x",
            "too long"
        );
        assert_eq!(
            spell_numbers("see https://a.org/1 or a1@b.com 2"),
            "see https://a.org/1 or a1@b.com two"
        );
        assert!(matches!(spell_numbers("no digits"), Cow::Borrowed(_)));
        assert_eq!(spell_numbers("$ 5 $x"), "$ five $x");
    }
}
