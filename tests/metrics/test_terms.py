"""Term success and repetition rate on text."""

from translate.metrics.terms import repeats, repetition_rate, term_success


def test_term_success_counts_source_occurrences_and_target_hits():
    terms = [("Jehová", "Yahweh"), ("dios", "God")]
    sources = ["Jehová es mi pastor.", "Dios es amor.", "Nada aquí.", "Jehováh no."]
    hyps = ["Yahweh is my shepherd.", "Godly love.", "Yahweh.", "no."]
    assert term_success(terms, sources, hyps) == (1, 2)  # "Godly" is not "God"; source 3 holds no term
    refs = ["Yahweh is my shepherd.", "Love is divine.", "Yahweh.", "no."]
    assert term_success(terms, sources, hyps, refs) == (1, 1)  # only the terms the reference uses count


def test_repetition_rate():
    assert repeats("there there there".split()) and repeats("a b a b a b".split())
    assert not repeats("there there to God".split())
    outs = ["They have been kkkkkkeeeeeeee.", "God said to Jacob.", "salad salad salad", "a b a b"]
    assert repetition_rate(outs) == 0.5
    assert repetition_rate([]) == 0.0
