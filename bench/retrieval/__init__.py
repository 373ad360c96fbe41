"""The retrieval benchmark (issue 12): query sets built from the corpus, pluggable retrievers,
fusion, scoring. ``bench/retrieval/build_sets.py`` writes the sets, ``bench/bench_retrieval.py``
scores them; docs/retrieval.md explains both."""
