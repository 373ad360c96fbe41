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

from tests.doubles.gemini import GeminiDouble, estimate_tokens, fake_vector

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
    embed(c, ["wordy " * 1365])  # max(1365 words, ceil(8190 bytes / 4) = 2048): accepted
    with pytest.raises(errors.ClientError) as caught:
        embed(c, ["wordy " * 1366])  # ceil(8196 / 4) = 2049
    assert caught.value.code == 400 and "2048" in caught.value.message
    with pytest.raises(errors.ClientError):
        embed(c, ["a, " * 1025])  # only 3,075 bytes, but 2,050 words and marks


def test_token_estimate_takes_the_larger_of_words_and_bytes_over_4():
    assert estimate_tokens("a, b; c.") == 6  # 3 words + 3 marks
    assert estimate_tokens("文字" * 100) == 150  # 600 bytes / 4; one "word" only
    assert estimate_tokens("x" * 9) == 3


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
        "type.googleapis.com/google.rpc.QuotaFailure",
        "type.googleapis.com/google.rpc.RetryInfo",
    ]
    assert err.details["error"]["details"][1]["retryDelay"] == "12.5s"


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
