"""Per-tenant request and token limits (sliding minute windows of the ``limits`` library)."""

from tierserve.errors import RateLimitError
from tierserve.policy.spec import RateLimitSpec
from tierserve.quota import TenantQuota

REQUESTS = RateLimitSpec(requests_per_minute=3)
TOKENS = RateLimitSpec(tokens_per_minute=100)


def test_the_request_over_the_limit_is_refused_with_when_to_retry() -> None:
    quota = TenantQuota()
    assert [quota.admit("acme", REQUESTS) for _ in range(3)] == [None, None, None]
    refusal = quota.admit("acme", REQUESTS)
    assert refusal is not None and refusal.kind == "requests" and refusal.limit == 3
    assert 1.0 <= refusal.retry_after_s <= 120.0
    assert refusal.reason == "rate_limit=requests>3/min"
    error = refusal.error("acme")
    assert isinstance(error, RateLimitError) and error.http_status == 429 and error.retryable
    assert error.code == "rate_limit_exceeded" and error.retry_after_s == refusal.retry_after_s


def test_one_tenant_spending_its_limit_leaves_the_others_theirs() -> None:
    quota = TenantQuota()
    for _ in range(3):
        quota.admit("acme", REQUESTS)
    assert quota.admit("acme", REQUESTS) is not None
    assert quota.admit("globex", REQUESTS) is None


def test_tokens_are_charged_after_the_answer_and_refuse_the_next_request() -> None:
    quota = TenantQuota()
    assert quota.admit("acme", TOKENS) is None
    quota.charge("acme", TOKENS, 60)
    assert quota.admit("acme", TOKENS) is None  # 40 tokens left
    quota.charge("acme", TOKENS, 300)  # bigger than what is left: the window is full
    refusal = quota.admit("acme", TOKENS)
    assert refusal is not None and refusal.kind == "tokens" and refusal.limit == 100


def test_a_refused_request_does_not_count_against_the_limit() -> None:
    quota = TenantQuota()
    both = RateLimitSpec(requests_per_minute=2, tokens_per_minute=10)
    assert quota.admit("acme", both) is None
    quota.charge("acme", both, 10)
    assert quota.admit("acme", both) is not None  # tokens spent: refused, not counted
    assert quota.admit("acme", RateLimitSpec(requests_per_minute=2)) is None  # 1 of 2 counted
