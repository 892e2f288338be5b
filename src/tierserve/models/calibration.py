"""Calibration text for quantization, shipped with the code because no hub is reachable.

Round-to-nearest (iters=0) does not fit weights to this text, but AutoRound still caches
activations from it and needs samples of at least ``seqlen`` tokens. The paragraphs mix the
traffic tierserve expects: support questions, extraction, arithmetic, code, policy text.
"""

from __future__ import annotations

__all__ = ["calibration_texts"]

_PARAGRAPHS = (
    "Customer support: my order number 48213 arrived damaged, the box was crushed and two of the "
    "glasses were broken. I would like a refund or a replacement, whichever is faster. I have "
    "attached photos of the package and the receipt from March 3rd. Please let me know what "
    "information you need from me to process this request and how long it usually takes.",
    "To reset your password, open the sign-in page and choose 'Forgot password'. Enter the email "
    "address linked to your account and we will send a link that stays valid for thirty minutes. "
    "If the email does not arrive, check the spam folder, then make sure the address is spelled "
    "correctly. Accounts locked after five failed attempts unlock automatically after an hour.",
    "Invoice INV-2291 from Northwind Traders, dated 2024-11-02: 12 units of item A-100 at 4.50 "
    "each, 3 units of item B-220 at 19.99 each, shipping 7.00. Subtotal 120.97, tax 24.19, total "
    "due 145.16 EUR within 30 days. Extract the vendor, the line items, the currency and the "
    "total, and check that the total equals the subtotal plus tax.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May? In May she sold 48 / 2 = "
    "24 clips, so altogether she sold 48 + 24 = 72 clips. A train travels 60 miles per hour for "
    "2.5 hours; it covers 150 miles. What is 12 plus 30? It is 42.",
    "def merge_sorted(a: list[int], b: list[int]) -> list[int]:\n    result = []\n    i = j = 0\n"
    "    while i < len(a) and j < len(b):\n        if a[i] <= b[j]:\n"
    "            result.append(a[i])\n            i += 1\n        else:\n"
    "            result.append(b[j])\n            j += 1\n"
    "    return result + a[i:] + b[j:]\n# The function runs in linear time in the total length.",
    "Policy: refunds above 500 dollars require approval from a team lead. Agents must not promise "
    "compensation for data breaches or security incidents; route those to the security team and "
    "legal. Personal data such as social security numbers or card numbers must never be repeated "
    "back to the customer in full. When unsure, escalate to a human reviewer.",
    "The capital of France is Paris. The Pacific is the largest ocean on Earth. Water boils at "
    "100 degrees Celsius at sea level. Photosynthesis turns light, water and carbon dioxide into "
    "glucose and oxygen. The French Revolution began in 1789, and the Eiffel Tower was finished "
    "in 1889 for the World's Fair held in Paris that year.",
    "Draft a short, polite reply to a customer whose flight was cancelled. Apologise for the "
    "disruption, explain that they can rebook free of charge on any flight within seven days or "
    "ask for a full refund to the original payment method, and give the phone number of the "
    "support line. Keep the tone warm and professional and the reply under 120 words.",
)


def calibration_texts(count: int = 32) -> list[str]:
    """``count`` samples, each every paragraph once in a rotated order (about 700 tokens)."""
    n = len(_PARAGRAPHS)
    return ["\n\n".join(_PARAGRAPHS[(start + k) % n] for k in range(n)) for start in range(count)]
