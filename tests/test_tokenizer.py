"""The tokenizer and word index on hand-written cases, against scikit-learn, and the hashing trick."""
import numpy as np
import pytest

from components.data.text import sample_sentences
from components.topics.text.text_vectors import buckets, colliding, collision_table
from components.topics.text.tokenizer import OOV, PAD, WORD, Tokenizer, WordIndex


def test_punctuation_splits_and_inner_apostrophes_stay():
    assert Tokenizer()("Hello, world!!! It's great... (really) -- 10/10; snake_case") == [
        "hello", "world", "it's", "great", "really", "10", "10", "snake", "case"]
    assert Tokenizer()("'quoted' words, trailing' apostrophe") == ["quoted", "words", "trailing", "apostrophe"]


def test_case_is_folded_only_when_asked():
    assert Tokenizer()("Good GOOD good") == ["good"] * 3
    assert Tokenizer(lowercase=False)("Good GOOD good") == ["Good", "GOOD", "good"]


def test_unicode_normalisation_scripts_and_accents():
    tokenize = Tokenizer()
    # full-width letters and the fi ligature (NFKC), typographic apostrophe, other scripts
    assert tokenize("Ｃafé ﬁne, don\u2019t") == ["café", "fine", "don't"]
    assert tokenize("Привет, мир! Ωραία ταινία") == ["привет", "мир", "ωραία", "ταινία"]
    # the composed and decomposed spellings of é are one token
    assert tokenize("cafe\u0301") == tokenize("caf\u00e9")
    assert Tokenizer(strip_accents=True)("Café naïve Ångström") == ["cafe", "naive", "angstrom"]


def test_ngrams_follow_the_single_words_in_scikit_learn_order():
    assert Tokenizer(ngrams=2)("Not very good.") == ["not", "very", "good", "not very", "very good"]
    assert Tokenizer(ngrams=3)("a b") == ["a", "b", "a b"]
    with pytest.raises(ValueError):
        Tokenizer(ngrams=0)


def test_word_index_order_cut_offs_and_oov():
    docs = [["b", "a", "a", "rare"], ["a", "c"], ["b", "c", "c", "c"], ["a", "b"]]
    index = WordIndex.fit(docs)
    # counts a 4, c 4, b 3, rare 1: by count, ties alphabetical, after padding and OOV
    assert index.terms == (PAD, OOV, "a", "c", "b", "rare")
    assert index.encode(["c", "unknown", "a"]) == [3, 1, 2]
    # min_count counts documents: c is 4 times in the text but in 2 documents
    assert WordIndex.fit(docs, min_count=3).terms == (PAD, OOV, "a", "b")
    assert WordIndex.fit(docs, min_count=2, max_words=2).terms == (PAD, OOV, "a", "c")
    assert index.vocabulary() == {"a": 0, "c": 1, "b": 2, "rare": 3}
    with pytest.raises(ValueError):
        WordIndex.fit(docs, min_count=0)


def test_sequences_cut_and_pad_with_zero():
    index = WordIndex.fit([["a", "b"]])
    out = index.sequences([["a"], ["b", "x", "a", "b"]], length=3)
    assert out.dtype == np.int32
    assert out.tolist() == [[2, 0, 0], [3, 1, 2]]


def _corpus() -> list[str]:
    texts, _ = sample_sentences(300, 1)
    return texts + ["Ωραία ταινία, really good!", "Привет мир", "Don't stop; don't go", "naïve café au lait"]


def _untied_cut(texts: list[str], tokenize: Tokenizer, min_count: int, wanted: int) -> int:
    """The largest cut <= ``wanted`` that falls between two different counts, so that no tie
    (which scikit-learn breaks by an unstable sort) decides what is kept."""
    from sklearn.feature_extraction.text import CountVectorizer

    full = WordIndex.fit([tokenize(t) for t in texts], min_count=min_count)
    counts = CountVectorizer(analyzer=tokenize, vocabulary=full.vocabulary()).transform(texts).sum(axis=0).A1
    return max(k for k in range(1, wanted + 1) if counts[k - 1] > counts[k])


@pytest.mark.parametrize("ngrams,min_count,max_words", [(1, 1, 0), (2, 1, 0), (1, 3, 0), (2, 2, 0), (2, 1, 40),
                                                         (1, 2, 25)])
def test_word_index_agrees_with_count_vectorizer(ngrams, min_count, max_words):
    from sklearn.feature_extraction.text import CountVectorizer

    texts = _corpus()
    tokenize = Tokenizer(ngrams=ngrams)
    if max_words:
        max_words = _untied_cut(texts, tokenize, min_count, max_words)
    index = WordIndex.fit([tokenize(t) for t in texts], min_count=min_count, max_words=max_words)
    vectorizer = CountVectorizer(token_pattern=WORD, lowercase=True, ngram_range=(1, ngrams), min_df=min_count,
                                 max_features=max_words or None).fit(texts)
    assert set(index.vocabulary()) == set(vectorizer.vocabulary_)
    assert not max_words or len(index) - 2 == max_words > 10
    # and the count vectors agree once columns are matched by term
    ours = CountVectorizer(analyzer=tokenize, vocabulary=index.vocabulary()).transform(texts).toarray()
    order = [vectorizer.vocabulary_[t] for t in index.vocabulary()]
    assert np.array_equal(ours, vectorizer.transform(texts).toarray()[:, order])


def test_hash_buckets_are_the_hashing_vectorizers_columns():
    from sklearn.feature_extraction.text import HashingVectorizer

    terms = ["good", "bad", "not good", "café", "a", "ταινία"]
    hashing = HashingVectorizer(analyzer=lambda t: [t], n_features=2 ** 10, alternate_sign=False, norm=None)
    columns = [int(hashing.transform([t]).indices[0]) for t in terms]
    assert buckets(terms, 10).tolist() == columns


def test_collision_counts_on_constructed_vocabularies():
    assert colliding(np.array([0, 0, 1, 2, 2, 2, 3])) == 5
    assert colliding(np.array([4, 1, 7])) == 0
    # build a vocabulary with exactly one colliding pair in 2**8 buckets
    bits, taken, words = 8, {}, []
    pair = None
    for i in range(2000):
        word = f"w{i}"
        b = int(buckets([word], bits)[0])
        if b in taken and pair is None:
            pair = (taken[b], word)
        elif b not in taken:
            taken[b] = word
            words.append(word)
        if pair and len(words) >= 20:
            break
    unique = [w for w in words if w != pair[0]][:18]
    vocabulary = [*pair, *unique]
    (row,) = collision_table(vocabulary, (bits,))
    assert row == {"words": 20, "buckets": 256, "colliding_words": 2, "pct_colliding": 10.0,
                   "pct_expected": round(100 * (1 - (1 - 1 / 256) ** 19), 2)}
    # 100 words into 4 buckets all collide; into 2**20 almost none do
    words = [f"term{i}" for i in range(100)]
    small, large = collision_table(words, (2, 20))
    assert small["colliding_words"] == 100 and small["pct_colliding"] == 100.0
    assert large["colliding_words"] <= 2
