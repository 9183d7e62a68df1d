"""Glossaries: reading (TSV, request values) with errors naming the line or field, and term matching on
subword ids as whole words."""

import pytest

from translate.search.glossary import Glossary, GlossaryError, glossary_from_value, holds, read_glossary


class Pieces:
    """A tokenizer over a fixed word list: each word is one piece '▁word', punctuation its own piece."""

    def __init__(self, words):
        self.pieces = ["<pad>", "<unk>", "<s>", "</s>"] + ["\u2581" + w for w in words] + [",", ".", "o"]
        self.tgt_vocab_size = len(self.pieces)

    def encode(self, text, side):
        out = []
        for word in text.replace(",", " ,").replace(".", " .").split():
            if word in (",", "."):
                out.append(self.pieces.index(word))
            elif word.endswith("o") and "\u2581" + word[:-1] in self.pieces:  # "Jacobo" = ▁Jacob + o
                out += [self.pieces.index("\u2581" + word[:-1]), self.pieces.index("o")]
            else:
                out.append(self.pieces.index("\u2581" + word) if "\u2581" + word in self.pieces else 1)
        return out

    def id_to_piece(self, i, side):
        return self.pieces[i]


TOK = Pieces(["Jacob", "dijo", "a", "Dios", "dios", "casa", "de", "house", "God", "the"])


def test_terms_match_whole_words_only():
    g = Glossary((("Jacob", "Jacob"), ("casa de", "house"), ("dios", "God")))
    units = [TOK.encode(s, "src") for s in ["Jacob dijo a Dios", "Jacobo dijo", "casa de Jacob.", "dijo,"]]
    found = [[list(term) for term in unit] for unit in g.constraints(TOK, units)]
    jacob, house, god = TOK.encode("Jacob", "tgt"), TOK.encode("house", "tgt"), TOK.encode("God", "tgt")
    assert found[0] == [jacob, god]  # "dios" also matches "Dios" (a sentence may start with it)
    assert found[1] == []  # "Jacobo" is another word
    assert found[2] == [jacob, house]
    assert found[3] == []
    assert g.constraints(TOK, units)[0][0].no_follow.tolist() == [TOK.pieces.index("o")]  # glues onto a word
    piece = TOK.pieces.__getitem__
    assert holds([5, 6], [5], piece) and not holds([5, TOK.pieces.index("o")], [5], piece)


def test_read_glossary_skips_comments_and_names_the_bad_line(tmp_path):
    path = tmp_path / "g.tsv"
    path.write_text("# names\nJehová\tYahweh\n\nMoisés\tMoses\r\n", encoding="utf-8")
    assert read_glossary(path).terms == (("Jehová", "Yahweh"), ("Moisés", "Moses"))
    path.write_text("Jehová\tYahweh\nMoisés Moses\n", encoding="utf-8")
    with pytest.raises(GlossaryError, match=r"g.tsv:2: expected 'source<TAB>target'"):
        read_glossary(path)
    path.write_text("a\tb\na\tc\n", encoding="utf-8")
    with pytest.raises(GlossaryError, match="two targets"):
        read_glossary(path)
    with pytest.raises(GlossaryError, match="no such glossary file"):
        read_glossary(tmp_path / "missing.tsv")
    path.write_bytes(b"a\t\xff\n")
    with pytest.raises(GlossaryError, match="not UTF-8"):
        read_glossary(path)


def test_request_values():
    assert glossary_from_value({"Jehová": "Yahweh"}).terms == (("Jehová", "Yahweh"),)
    assert glossary_from_value([["a", "b"]]).terms == (("a", "b"),)
    for bad in ("Jehová", [["a"]], {"a": 3}, {"": "b"}):
        with pytest.raises(GlossaryError, match="glossary"):
            glossary_from_value(bad)
