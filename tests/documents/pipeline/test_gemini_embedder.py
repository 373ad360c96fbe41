"""GeminiEmbedder against the Gemini double, through the real google-genai SDK."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from google import genai
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from documents.errors import FailureKind, PermanentError, TransientError
from documents.pipeline.embedders.gemini import GeminiEmbedder, seconds_until_daily_reset
from tests.doubles import gemini_tokens
from tests.doubles.gemini import GeminiDouble, fake_vector


@pytest.fixture
def embedder(gemini_double):
    e = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=gemini_double.url)
    yield e
    e.close()


def normalised(v):
    return (np.asarray(v) / np.linalg.norm(v)).tolist()


def test_250_texts_go_out_in_3_requests_of_at_most_100_in_order(embedder, gemini_double):
    texts = [f"chunk number {i}" for i in range(250)]
    vectors = embedder.embed_documents(texts, title="Annual report")

    assert gemini_double.batch_sizes() == [100, 100, 50]
    assert len(vectors) == 250
    for i in (0, 99, 100, 249):
        expected = normalised(fake_vector(texts[i], "RETRIEVAL_DOCUMENT", 768))
        assert vectors[i] == pytest.approx(expected)


def test_document_vectors_are_unit_length(embedder):
    vectors = np.asarray(embedder.embed_documents(["one", "two", "three"]))
    assert vectors.shape == (3, 768)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0, 1.0])


def test_the_full_3072_output_is_used_as_the_service_gives_it(gemini_double):
    e = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=gemini_double.url, dimension=3072)
    [vector] = e.embed_documents(["x"])
    assert vector == fake_vector("x", "RETRIEVAL_DOCUMENT", 3072)


def test_documents_are_sent_as_retrieval_documents_with_their_title(embedder, gemini_double):
    embedder.embed_documents(["a", "b"], title="Annual report")
    items = gemini_double.last_body["requests"]
    assert {(i["taskType"], i["title"], i["outputDimensionality"]) for i in items} == {
        ("RETRIEVAL_DOCUMENT", "Annual report", 768)
    }
    assert [i["content"]["parts"][0]["text"] for i in items] == ["a", "b"]


def test_a_query_is_sent_as_a_retrieval_query_without_title(embedder, gemini_double):
    vector = embedder.embed_query("what was the revenue?")
    [item] = gemini_double.last_body["requests"]
    assert item["taskType"] == "RETRIEVAL_QUERY" and "title" not in item
    assert vector == pytest.approx(
        normalised(fake_vector("what was the revenue?", "RETRIEVAL_QUERY", 768))
    )


def test_no_texts_means_no_request(embedder, gemini_double):
    assert embedder.embed_documents([]) == []
    assert gemini_double.request_count == 0


def test_a_429_becomes_rate_limited_with_the_delay_gemini_asked_for(embedder, gemini_double):
    gemini_double.fail_next(429, retry_delay="12.5s")
    with pytest.raises(TransientError) as caught:
        embedder.embed_documents(["x"])
    err = caught.value
    assert err.kind == FailureKind.RATE_LIMITED and err.retry_after == 12.5
    assert "{" not in err.message and "12.5" in err.message
    assert gemini_double.request_count == 1  # the SDK did not retry on its own


def test_a_429_without_retry_info_has_no_delay(embedder, gemini_double):
    gemini_double.fail_next(429, retry_delay="")
    with pytest.raises(TransientError) as caught:
        embedder.embed_query("x")
    assert caught.value.kind == FailureKind.RATE_LIMITED and caught.value.retry_after is None


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_becomes_unavailable(embedder, gemini_double, status):
    gemini_double.fail_next(status)
    with pytest.raises(TransientError) as caught:
        embedder.embed_documents(["x"])
    assert caught.value.kind == FailureKind.UNAVAILABLE and str(status) in caught.value.message
    assert gemini_double.request_count == 1


def test_a_wrong_key_is_permanent_with_a_readable_message(gemini_double):
    e = GeminiEmbedder(api_key="not-the-key", base_url=gemini_double.url)
    with pytest.raises(PermanentError) as caught:
        e.embed_documents(["x"])
    assert caught.value.kind == FailureKind.REJECTED
    assert caught.value.message == (
        "Gemini refused the request: API key not valid. Please pass a valid API key."
    )


def test_an_unknown_model_is_permanent(gemini_double):
    e = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=gemini_double.url, model="nope-1")
    with pytest.raises(PermanentError) as caught:
        e.embed_query("x")
    assert caught.value.kind == FailureKind.REJECTED and "models/nope-1" in caught.value.message


def test_an_overlong_text_is_permanent_with_the_services_reason(embedder):
    with pytest.raises(PermanentError) as caught:
        embedder.embed_documents(["wordy " * 1400])
    assert caught.value.kind == FailureKind.REJECTED
    assert caught.value.message == (
        "Gemini refused the request: The input token count (2800) exceeds the maximum number "
        "of tokens allowed (2048)."
    )


def test_a_refused_text_is_permanent_without_the_field_path_bullets(embedder, gemini_double):
    gemini_double.fail_next(
        400,
        message="* BatchEmbedContentsRequest.requests[0].content.parts[0].data: required "
        "oneof field 'data' must have one initialized field\n",
    )
    with pytest.raises(PermanentError) as caught:
        embedder.embed_documents(["text"])
    message = caught.value.message
    assert message.startswith("Gemini refused the request: BatchEmbedContentsRequest")
    assert "\n" not in message and "* " not in message


def test_an_empty_text_is_refused_before_any_request(embedder, gemini_double):
    with pytest.raises(PermanentError, match="Text 2 is empty"):
        embedder.embed_documents(["fine", "  "])
    assert gemini_double.request_count == 0


def test_a_slow_answer_beyond_the_timeout_is_transient(gemini_double):
    e = GeminiEmbedder(
        api_key=GeminiDouble.API_KEY, base_url=gemini_double.url, timeout_seconds=0.3
    )
    gemini_double.slow_next(3.0)
    with pytest.raises(TransientError) as caught:
        e.embed_documents(["x"])
    assert caught.value.kind == FailureKind.UNAVAILABLE
    assert caught.value.message == "Gemini did not answer within 0.3 seconds."


def test_a_dropped_connection_is_transient(embedder, gemini_double):
    gemini_double.drop_next()
    with pytest.raises(TransientError) as caught:
        embedder.embed_documents(["x"])
    assert caught.value.kind == FailureKind.UNAVAILABLE


def test_vectors_of_another_length_are_a_dimension_mismatch(embedder, gemini_double):
    gemini_double.force_dimension = 1536
    with pytest.raises(PermanentError) as caught:
        embedder.embed_documents(["x"])
    assert caught.value.kind == FailureKind.DIMENSION_MISMATCH
    assert "1536" in caught.value.message and "768" in caught.value.message


def test_errors_survive_celerys_rebuild_from_args(embedder, gemini_double):
    # Celery's JSON result backend rebuilds an exception as cls(*args)
    gemini_double.fail_next(429, retry_delay="3s")
    with pytest.raises(TransientError) as caught:
        embedder.embed_query("x")
    rebuilt = type(caught.value)(*caught.value.args)
    assert (rebuilt.message, rebuilt.kind, rebuilt.retry_after) == (
        caught.value.message,
        FailureKind.RATE_LIMITED,
        3.0,
    )


def test_token_count_is_one_per_digit_mark_and_cjk_character_and_4_bytes_of_letters(embedder):
    assert embedder.count_tokens("") == 0
    assert embedder.count_tokens("hello") == 2  # 5 bytes of letters
    assert embedder.count_tokens("文字") == 2  # one per CJK character
    assert embedder.count_tokens("2026") == 4  # Gemini's tokenizer splits digits
    assert embedder.count_tokens("3.14%") == 5
    assert embedder.count_tokens("a\n\nb") == 3  # a newline run is a token, one space is not
    assert embedder.max_input_tokens == 2048
    assert (embedder.chunk_tokens, embedder.chunk_overlap, embedder.batch_size) == (1024, 100, 100)


def test_a_table_of_figures_is_counted_at_what_it_costs_not_a_third_of_it(embedder):
    table = "1234567890 " * 205  # 2,255 bytes; bytes / 3 said 752 tokens
    assert embedder.count_tokens(table) == gemini_tokens.count_tokens(table) == 2050


_TEXT = st.text(
    alphabet=st.sampled_from(
        list("abcdefghij XYZ\n\t\r0123456789.,;:!?%$€_-()'\"/#@")
        + list("éüßçøñ")
        + list("文字テキスト한국어")
        + ["😀", "\u00a0", "\u0301", "ж", "λ"]
    ),
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_our_estimate_never_falls_short_of_the_doubles_count(text):
    estimate = GeminiEmbedder(api_key="k").count_tokens(text)
    assert estimate >= gemini_tokens.count_tokens(text)


def test_our_estimate_matches_what_the_double_counts_over_http(gemini_double):
    texts = [
        "Revenue 2025: 1,234,567.89 EUR (+7.5 %)",
        "| Q1 | 12.3 | 45.6 |\n| Q2 | 78.9 | 10.1 |",
        "四半期の売上高は七パーセント増加した。",
        "Ordinary prose, with a few words of moderate length.",
    ]
    client = genai.Client(
        api_key=GeminiDouble.API_KEY, http_options=types.HttpOptions(base_url=gemini_double.url)
    )
    ours = GeminiEmbedder(api_key="k")
    for text in texts:
        served = client.models.count_tokens(model="gemini-embedding-001", contents=text)
        assert ours.count_tokens(text) >= served.total_tokens
    client.close()


def test_a_chunk_of_figures_that_we_size_at_1024_tokens_is_embedded_not_refused(gemini_double):
    embedder = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=gemini_double.url)
    figures = " ".join(f"{n:07d}" for n in range(1000))
    cut = len(figures)
    while embedder.count_tokens(figures[:cut]) > embedder.chunk_tokens:
        cut -= 8
    [vector] = embedder.embed_documents([figures[:cut]])
    assert len(vector) == 768 and gemini_double.tokens_embedded <= 1024


def test_a_per_day_quota_waits_for_the_reset_at_midnight_pacific():
    double = GeminiDouble(requests_per_day=2)
    with double:
        embedder = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=double.url)
        embedder.embed_documents(["one", "two"])
        with pytest.raises(TransientError) as caught:
            embedder.embed_documents(["three"])
    err = caught.value
    # the 429 says "retry in under a minute"; only the quotaId says it is a daily quota
    assert err.kind == FailureKind.RATE_LIMITED and err.retry_after > 60
    assert abs(err.retry_after - seconds_until_daily_reset()) < 5
    assert "daily quota (requests per day)" in err.message
    assert "midnight Pacific time" in err.message and "UTC" in err.message


def test_a_per_minute_token_quota_is_named_and_keeps_the_servers_delay():
    double = GeminiDouble(tokens_per_minute=10)
    with double:
        embedder = GeminiEmbedder(api_key=GeminiDouble.API_KEY, base_url=double.url)
        embedder.embed_documents(["five words in this text"])
        with pytest.raises(TransientError) as caught:
            embedder.embed_documents(["and five more words here"])
    assert "tokens per minute" in caught.value.message
    assert 0 < caught.value.retry_after <= 60


def test_the_daily_reset_is_the_next_midnight_in_los_angeles():
    # 2026-07-01 06:30 UTC is 23:30 the day before in Los Angeles (PDT, UTC-7)
    wait = seconds_until_daily_reset(datetime(2026, 7, 1, 6, 30, tzinfo=UTC))
    assert wait == 30 * 60 + 60
    # in winter (PST, UTC-8) midnight is 08:00 UTC
    wait = seconds_until_daily_reset(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert wait == 23 * 3600 + 60


def test_a_full_size_chunk_by_our_count_is_accepted_by_the_service(embedder, gemini_double):
    english = " ".join(["the quarterly revenue grew by seven percent"] * 400)
    cjk = "四半期の売上高は七パーセント増加した。" * 200
    texts = []
    for sample in (english, cjk):
        # the longest prefix our estimate calls 2048 tokens
        cut = len(sample)
        while embedder.count_tokens(sample[:cut]) > embedder.max_input_tokens:
            cut -= 10
        texts.append(sample[:cut])
    assert len(embedder.embed_documents(texts)) == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"dimension": 100}, {"batch_size": 101}, {"chunk_tokens": 4096}, {"chunk_overlap": 1024}],
)
def test_impossible_settings_are_refused_at_construction(kwargs):
    with pytest.raises(ValueError):
        GeminiEmbedder(api_key="k", **kwargs)
