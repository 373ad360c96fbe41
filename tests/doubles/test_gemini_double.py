"""The Gemini double, driven by the official google-genai SDK: it answers like the service and
refuses what the service refuses."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import httpx2
import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from tests.doubles.base import ManualClock
from tests.doubles.gemini import TITLE_REFUSED, GeminiDouble, fake_vector
from tests.doubles.gemini_tokens import count_tokens, truncate

MODEL = "gemini-embedding-001"


def client(double, *, api_key=GeminiDouble.API_KEY, timeout_ms=None, api_version=None):
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=double.url, timeout=timeout_ms, api_version=api_version
        ),
    )


def embed(c, texts, **config):
    return c.models.embed_content(
        model=MODEL, contents=texts, config=types.EmbedContentConfig(**config) if config else None
    )


def test_it_answers_in_input_order_with_vectors_fixed_per_text_and_task_type(gemini_double):
    c = client(gemini_double)
    texts = ["alpha", "beta", "gamma"]
    r = embed(c, texts, task_type="RETRIEVAL_DOCUMENT", output_dimensionality=256, title="T")

    assert [e.values for e in r.embeddings] == [
        fake_vector(t, "RETRIEVAL_DOCUMENT", 256) for t in texts
    ]
    again = embed(c, ["beta"], task_type="RETRIEVAL_DOCUMENT", output_dimensionality=256)
    assert again.embeddings[0].values == r.embeddings[1].values
    as_query = embed(c, ["beta"], task_type="RETRIEVAL_QUERY", output_dimensionality=256)
    assert as_query.embeddings[0].values != r.embeddings[1].values


def test_only_the_full_3072_output_is_normalised(gemini_double):
    c = client(gemini_double)
    small = embed(c, ["x"], output_dimensionality=768).embeddings[0].values
    full = embed(c, ["x"]).embeddings[0].values  # no outputDimensionality -> 3072

    assert len(small) == 768 and len(full) == 3072
    assert np.linalg.norm(full) == pytest.approx(1.0)
    assert np.linalg.norm(small) < 0.8  # a 768-prefix of a unit vector: about 0.5


def test_it_records_requests_texts_and_bodies(gemini_double):
    c = client(gemini_double, api_version="v1beta")
    embed(c, ["one", "two"], task_type="RETRIEVAL_DOCUMENT", title="Doc")

    assert gemini_double.request_count == 1
    assert gemini_double.texts_embedded == 2
    assert gemini_double.requests[0].path == f"/v1beta/models/{MODEL}:batchEmbedContents"
    first = gemini_double.last_body["requests"][0]
    assert first["title"] == "Doc" and first["content"]["parts"] == [{"text": "one"}]


def test_the_single_embed_content_route_answers_one_embedding(gemini_double):
    r = httpx.post(
        f"{gemini_double.url}/v1beta/models/{MODEL}:embedContent",
        headers={"x-goog-api-key": GeminiDouble.API_KEY},
        json={"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 128},
    )
    assert r.status_code == 200
    assert r.json()["embedding"]["values"] == fake_vector("hi", "TASK_TYPE_UNSPECIFIED", 128)


def test_a_batch_of_101_texts_is_refused_with_the_services_message(gemini_double):
    with pytest.raises(errors.ClientError) as caught:
        embed(client(gemini_double), [f"t{i}" for i in range(101)])
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.message == (
        "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
    )
    embed(client(gemini_double), [f"t{i}" for i in range(100)])  # 100 is fine


def test_a_wrong_key_is_400_invalid_argument(gemini_double):
    with pytest.raises(errors.ClientError) as caught:
        embed(client(gemini_double, api_key="not-the-key"), ["x"])
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.message == "API key not valid. Please pass a valid API key."


def test_a_missing_key_is_403_permission_denied(gemini_double):
    r = httpx.post(
        f"{gemini_double.url}/v1/models/{MODEL}:batchEmbedContents",
        json={"requests": [{"content": {"parts": [{"text": "x"}]}}]},
    )
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_an_unknown_model_is_404(gemini_double):
    # keep the Client in a variable: a temporary one is garbage-collected mid-call and its
    # __del__ closes the HTTP client under the request ("client has been closed")
    c = client(gemini_double)
    with pytest.raises(errors.ClientError) as caught:
        c.models.embed_content(model="text-embedding-004", contents=["x"])
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")


@pytest.mark.parametrize("dimension", [127, 3073])
def test_an_output_dimensionality_outside_128_to_3072_is_refused(gemini_double, dimension):
    with pytest.raises(errors.ClientError) as caught:
        embed(client(gemini_double), ["x"], output_dimensionality=dimension)
    assert caught.value.code == 400 and str(dimension) in caught.value.message


def test_a_text_over_2048_tokens_is_refused_and_2048_is_not(gemini_double):
    c = client(gemini_double)
    embed(c, ["word " * 2048])  # one token per short word, the space is free
    with pytest.raises(errors.ClientError) as caught:
        embed(c, ["word " * 2049])
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.message == (
        "The input token count (2049) exceeds the maximum number of tokens allowed (2048)."
    )
    with pytest.raises(errors.ClientError):
        embed(c, ["a, " * 1025])  # only 3,075 bytes, but 2,050 words and marks


def test_the_token_model_counts_each_digit_mark_and_cjk_character():
    assert count_tokens("2026") == 4
    assert count_tokens("3.14") == 4
    assert count_tokens("Revenue 1,234,567.89 EUR") == 2 + 12 + 1  # Reve|nue, digits+marks, EUR
    assert count_tokens("文字テキスト") == 6
    assert count_tokens("cat quick internationalization") == 1 + 2 + 5  # ceil(bytes / 4)
    assert count_tokens("a\n\n    b") == 3  # the whitespace run is one token
    assert count_tokens("one two") == 2  # a single space is part of the next piece


def test_count_tokens_answers_with_the_token_model(gemini_double):
    c = client(gemini_double)
    r = c.models.count_tokens(model=MODEL, contents="Revenue 1,234,567.89 EUR")
    assert r.total_tokens == 15


def test_a_short_table_of_figures_is_over_the_limit_because_every_digit_counts(gemini_double):
    row = "1234567890 "  # 11 bytes, 10 tokens
    c = client(gemini_double)
    embed(c, [row * 204 + "12345678"])  # 2,048 tokens in 2,252 bytes: accepted
    with pytest.raises(errors.ClientError) as caught:
        embed(c, [row * 205])  # 2,255 bytes, a quarter of what 2,048 words would take
    assert caught.value.code == 400 and "(2050)" in caught.value.message


def test_an_overlong_text_is_silently_cut_to_2048_tokens_when_truncating():
    with GeminiDouble(overlong="truncate") as double:
        c = client(double)
        head = "7" * 2048
        a, b = embed(c, [head + " ending one", head + " ending two"]).embeddings
        [whole] = embed(c, [head]).embeddings
    assert a.values == b.values  # everything after token 2,048 was dropped
    assert a.values == fake_vector(
        truncate(head + " ending one", 2048), "TASK_TYPE_UNSPECIFIED", 3072
    )
    assert whole.values == fake_vector(head, "TASK_TYPE_UNSPECIFIED", 3072)  # 2,048: untouched
    assert double.tokens_embedded == 3 * 2048


def test_truncation_keeps_the_longest_prefix_within_the_limit():
    assert truncate("12345", 3) == "123"
    assert truncate("internationalization", 2) == "internat"  # 8 bytes = 2 tokens
    assert truncate("short text", 2048) == "short text"
    cut = truncate("word, " * 2000, 2048)
    assert count_tokens(cut) == 2048 and ("word, " * 2000).startswith(cut)


def test_an_empty_text_is_refused(gemini_double):
    with pytest.raises(errors.ClientError) as caught:
        embed(client(gemini_double), ["fine", ""])
    assert caught.value.code == 400 and "requests[1]" in caught.value.message


def test_a_429_carries_quota_failure_and_retry_info(gemini_double):
    gemini_double.fail_next(429, retry_delay="12.5s")
    with pytest.raises(errors.ClientError) as caught:
        embed(client(gemini_double), ["x"])
    err = caught.value
    assert (err.code, err.status) == (429, "RESOURCE_EXHAUSTED")
    types_ = [d["@type"] for d in err.details["error"]["details"]]
    assert types_ == [
        "type.googleapis.com/google.rpc.Help",
        "type.googleapis.com/google.rpc.QuotaFailure",
        "type.googleapis.com/google.rpc.RetryInfo",
    ]
    assert err.details["error"]["details"][2]["retryDelay"] == "12.5s"
    assert err.message.endswith("Please retry in 12.5s.")


def test_queued_faults_are_served_in_order_then_it_recovers(gemini_double):
    gemini_double.fail_next(429, times=2)
    gemini_double.fail_next(500)
    gemini_double.fail_next(503)
    c = client(gemini_double)
    seen = []
    for _ in range(4):
        with pytest.raises(errors.APIError) as caught:
            embed(c, ["x"])
        seen.append((caught.value.code, caught.value.status))
    assert seen == [
        (429, "RESOURCE_EXHAUSTED"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
    ]
    assert isinstance(caught.value, errors.ServerError)
    assert len(embed(c, ["x"]).embeddings) == 1
    assert gemini_double.texts_embedded == 1


def _outcomes(double_or_client, n):
    c = double_or_client if isinstance(double_or_client, genai.Client) else client(double_or_client)
    codes = []
    for _ in range(n):
        try:
            embed(c, ["x"])
            codes.append(200)
        except errors.APIError as exc:
            codes.append(exc.code)
    return codes


def test_the_fault_rate_is_seeded_so_a_run_can_be_replayed():
    with GeminiDouble() as a, GeminiDouble() as b:
        a.set_fault_rate(0.3, statuses=(429, 503), seed=7)
        b.set_fault_rate(0.3, statuses=(429, 503), seed=7)
        first, second = _outcomes(a, 60), _outcomes(b, 60)
    assert first == second
    assert {429, 503, 200} == set(first)
    assert 5 <= sum(code != 200 for code in first) <= 35


def test_a_slow_answer_makes_the_sdk_time_out(gemini_double):
    gemini_double.slow_next(3.0)
    with pytest.raises(httpx2.TimeoutException):
        embed(client(gemini_double, timeout_ms=300), ["x"])
    assert len(embed(client(gemini_double), ["x"]).embeddings) == 1


def test_a_dropped_connection_reaches_the_sdk_as_a_transport_error(gemini_double):
    gemini_double.drop_next()
    with pytest.raises(httpx2.TransportError):
        embed(client(gemini_double), ["x"])


def test_faults_queued_while_requests_run_are_each_served_once(gemini_double):
    c = client(gemini_double)
    start = threading.Barrier(9)

    def worker():
        start.wait()
        return _outcomes(c, 10)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(worker) for _ in range(8)]
        start.wait()
        gemini_double.fail_next(503, times=20)  # while the workers are already sending
        codes = [code for f in futures for code in f.result()]
    assert len(codes) == 80
    assert codes.count(503) == 20 - gemini_double.faults.pending()
    assert gemini_double.request_count == 80


# quotas -----------------------------------------------------------------------------------


def _quota_error(c, texts):
    with pytest.raises(errors.ClientError) as caught:
        embed(c, texts)
    err = caught.value
    assert (err.code, err.status) == (429, "RESOURCE_EXHAUSTED")
    details = {d["@type"].rsplit(".", 1)[1]: d for d in err.details["error"]["details"]}
    return err, details["QuotaFailure"]["violations"], details.get("RetryInfo")


def test_each_text_of_a_batch_counts_as_one_request_against_the_per_minute_quota():
    clock = ManualClock()
    with GeminiDouble(requests_per_minute=10, clock=clock) as double:
        c = client(double)
        embed(c, [f"t{i}" for i in range(6)])
        err, violations, retry = _quota_error(c, [f"u{i}" for i in range(5)])
        assert violations == [
            {
                "quotaMetric": "generativelanguage.googleapis.com/embed_content_free_tier_requests",
                "quotaId": "EmbedContentRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": MODEL},
                "quotaValue": "10",
            }
        ]
        assert retry["retryDelay"] == "60s"
        embed(c, [f"u{i}" for i in range(4)])  # 6 + 4 fits exactly; the 429 cost nothing
        assert double.texts_embedded == 10


def test_the_per_minute_window_moves_and_retry_info_says_when_there_is_room():
    clock = ManualClock()
    with GeminiDouble(requests_per_minute=10, clock=clock) as double:
        c = client(double)
        embed(c, [f"a{i}" for i in range(6)])
        clock.advance(30)
        embed(c, [f"b{i}" for i in range(4)])
        clock.advance(15.5)
        err, _, retry = _quota_error(c, ["c"])
        assert retry["retryDelay"] == "14s"  # whole seconds, as the service writes it...
        assert "Please retry in 14.500000000s." in err.message  # ...the message has the rest
        clock.advance(14)
        _quota_error(c, ["c"])  # retrying after retryDelay alone is half a second early
        clock.advance(0.5)
        assert len(embed(c, ["c"]).embeddings) == 1


def test_input_tokens_count_against_the_per_minute_token_quota():
    clock = ManualClock()
    with GeminiDouble(tokens_per_minute=100, clock=clock) as double:
        c = client(double)
        embed(c, ["1" * 60])
        _, violations, retry = _quota_error(c, ["2" * 41])
        assert [v["quotaId"] for v in violations] == [
            "EmbedContentInputTokensPerMinutePerProjectPerModel-FreeTier"
        ]
        assert violations[0]["quotaMetric"].endswith("embed_content_free_tier_input_token_count")
        assert retry["retryDelay"] == "60s"
        embed(c, ["2" * 40])
        assert double.tokens_embedded == 100


def test_the_per_day_quota_is_told_apart_only_by_its_quota_id():
    clock = ManualClock()
    with GeminiDouble(requests_per_minute=100, requests_per_day=5, clock=clock) as double:
        c = client(double)
        embed(c, [f"t{i}" for i in range(5)])
        clock.advance(120)  # the minute window is empty again
        err, violations, retry = _quota_error(c, ["late"])
        assert [v["quotaId"] for v in violations] == [
            "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier"
        ]
        # like the real service, it still suggests retrying within the minute...
        assert retry is not None and int(retry["retryDelay"].rstrip("s")) <= 60
        clock.advance(int(retry["retryDelay"].rstrip("s")) + 1)
        _quota_error(c, ["late"])  # ...which does not help
        clock.advance(24 * 3600)
        assert len(embed(c, ["late"]).embeddings) == 1
        assert double.texts_embedded == 6


def test_every_quota_exceeded_is_listed_in_one_429():
    clock = ManualClock()
    with GeminiDouble(
        requests_per_minute=3, requests_per_day=3, tokens_per_day=1000, clock=clock
    ) as double:
        _, violations, retry = _quota_error(client(double), ["a", "b", "c", "d"])
    assert [v["quotaId"] for v in violations] == [
        "EmbedContentRequestsPerMinutePerProjectPerModel-FreeTier",
        "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier",
    ]
    assert retry["retryDelay"] == "60s"


def test_a_paid_tier_reports_quotas_without_the_free_tier_names():
    with GeminiDouble(requests_per_day=1, free_tier=False, clock=ManualClock()) as double:
        _, violations, _ = _quota_error(client(double), ["a", "b"])
    assert violations[0]["quotaId"] == "EmbedContentRequestsPerDayPerProjectPerModel"
    assert (
        violations[0]["quotaMetric"] == "generativelanguage.googleapis.com/embed_content_requests"
    )


# what the service refuses ------------------------------------------------------------------


@pytest.mark.parametrize("task_type", ["RETRIEVAL_QUERY", "SEMANTIC_SIMILARITY", None])
def test_a_title_is_refused_unless_the_task_type_is_retrieval_document(gemini_double, task_type):
    c = client(gemini_double)
    with pytest.raises(errors.ClientError) as caught:
        embed(c, ["x"], task_type=task_type, title="Annual report")
    assert (caught.value.code, caught.value.message) == (400, TITLE_REFUSED)
    embed(c, ["x"], task_type="RETRIEVAL_DOCUMENT", title="Annual report")
    assert gemini_double.texts_embedded == 1


def test_a_field_the_api_does_not_have_is_refused(gemini_double):
    r = httpx.post(
        f"{gemini_double.url}/v1beta/models/{MODEL}:batchEmbedContents",
        headers={"x-goog-api-key": GeminiDouble.API_KEY},
        json={"requests": [{"content": {"parts": [{"text": "x"}]}, "autoTruncate": False}]},
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Invalid JSON payload received. Unknown name \"autoTruncate\" at 'requests[0]': "
        "Cannot find field."
    )


def test_an_unknown_api_version_gets_googles_html_404(gemini_double):
    c = client(gemini_double, api_version="v2")
    with pytest.raises(errors.ClientError) as caught:
        embed(c, ["x"])
    assert caught.value.code == 404
    assert "was not found on this server" in caught.value.message
    assert gemini_double.requests[-1].path == f"/v2/models/{MODEL}:batchEmbedContents"


def test_the_sdks_client_headers_are_sent_but_not_required(gemini_double):
    embed(client(gemini_double), ["x"])
    sent = gemini_double.requests[-1].headers
    assert sent["x-goog-api-client"].startswith("google-genai-sdk/")
    r = httpx.post(  # the service identifies the caller by its key, not by these headers
        f"{gemini_double.url}/v1/models/{MODEL}:batchEmbedContents",
        headers={"x-goog-api-key": GeminiDouble.API_KEY, "user-agent": "curl/8"},
        json={"requests": [{"content": {"parts": [{"text": "x"}]}}]},
    )
    assert r.status_code == 200


def test_latency_delays_every_answer():
    with GeminiDouble(latency=1.0) as double:
        with pytest.raises(httpx2.TimeoutException):
            embed(client(double, timeout_ms=300), ["x"])
        assert len(embed(client(double, timeout_ms=5000), ["x"]).embeddings) == 1
