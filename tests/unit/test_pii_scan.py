"""The PII scan runs on every prompt: it must find what it finds in any surrounding text, and
its cost must grow linearly with the text, whatever the text (the e-mail pattern once took
seconds on 16 KB of "a.a.a.")."""

import string
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierserve.pii import detect_pii, redact_pii

ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "dotted run": lambda n: "a." * n,
    "dotted run then @": lambda n: "a." * n + "@",
    "many @": lambda n: "a@" * n,
    "hyphenated domain": lambda n: "x@" + "a-" * n,
    "dotted domain": lambda n: "x@" + "a." * n,
    "digits and spaces": lambda n: "1 " * n + "x",
    "digits and brackets": lambda n: "1(" * n,
    "iban groups": lambda n: "DE12" + " ABCD" * n,
    "plus signs": lambda n: "+" * n + "@",
}


def scan_seconds(text: str) -> float:
    best = float("inf")
    for _ in range(5):  # the best of several: another process's burst is not the scan's cost
        started = time.perf_counter()
        detect_pii(text)
        redact_pii(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("family", sorted(ADVERSARIAL))
def test_the_scan_grows_linearly_on_adversarial_text(family: str) -> None:
    # A ratio within one run, not a time: 4x the text costs about 4x when linear, 16x when
    # quadratic; 8 leaves room for a noisy machine.
    make = ADVERSARIAL[family]
    short, long = scan_seconds(make(4_000)), scan_seconds(make(16_000))
    assert long / max(short, 1e-5) < 8, f"{family}: {short * 1e3:.1f} ms -> {long * 1e3:.1f} ms"


local = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
noise = st.text(string.ascii_letters + " ,;:!?()\n", max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    user=local,
    tag=st.one_of(st.just(""), local.map(lambda s: "+" + s)),
    domain=local,
    tld=st.sampled_from(["com", "org", "co.uk", "io"]),
    before=noise,
    after=noise,
)
def test_an_email_in_any_text_is_found_and_redacted(
    user: str, tag: str, domain: str, tld: str, before: str, after: str
) -> None:
    email = f"{user}{tag}@{domain}.{tld}"
    text = f"{before} {email} {after}"
    assert "email" in detect_pii(text)
    redacted = redact_pii(text)
    assert email not in redacted and "[email]" in redacted
