"""`translate import marian`: the imported checkpoint is the same model as transformers' MarianMTModel.

A tiny MarianMTModel with random weights and SentencePiece models trained here on the fixture corpus
(tests/models/marian_tiny.py): nothing is downloaded. Logits (teacher forcing, fp32), greedy and beam outputs
against generate(), tokenizer ids against MarianTokenizer, the CTranslate2 export against CTranslate2's own
TransformersConverter, and the refusals.
"""

import json
import math
import random
import shutil

import pytest
import torch

from tests.models.marian_tiny import build_tiny_marian, fixture_pairs, marian_tokenizer
from tests.test_cli_robustness import hostile_lines
from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID
from translate.importer import main as import_main
from translate.models.checkpoint import load_model
from translate.models.marian import MarianImportError, id_map, import_marian, marian_to_ours, read_json
from translate.search import SearchConfig
from translate.search.config import REPETITION_OFF
from translate.search.dataset import translate_ids
from translate.search.stepper import mask_specials

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")

LIMIT = 12  # generated tokens before the forced </s>: ours max_len_b, generate()'s max_new_tokens - 1


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    """(model directory, imported checkpoint path, transformers model, MarianTokenizer, Marian id -> ours)."""
    tmp = tmp_path_factory.mktemp("marian")
    directory = build_tiny_marian(tmp / "opus-mt-tiny")
    ckpt = tmp / "imported.pt"
    assert import_main(["marian", str(directory), "-o", str(ckpt)]) == 0
    hf = transformers.MarianMTModel.from_pretrained(directory).eval()
    cfg = read_json(directory / "config.json")
    to_ours = marian_to_ours(id_map(read_json(directory / "vocab.json"), cfg, directory)[0])
    return directory, ckpt, hf, marian_tokenizer(directory), to_ours


def ours_of(ids, to_ours):
    return [to_ours[i] for i in ids]


def tok_id(ours: int, to_ours) -> int:
    return to_ours.index(ours)


def test_teacher_forced_logits_equal_marians_on_a_padded_batch(marian):
    directory, ckpt, hf, tok, to_ours = marian
    model, tokenizer, payload = load_model(ckpt)
    pairs = fixture_pairs("dev")[:5]
    pairs[1] = ("Dios es amor.", "God is love.")  # short rows: padding on both sides
    enc = tok([s for s, _ in pairs], text_target=[t for _, t in pairs], padding=True, return_tensors="pt")
    pad = hf.config.pad_token_id
    assert (enc["input_ids"] == pad).any() and (enc["labels"] == pad).any()
    dec_in = torch.cat([torch.full((len(pairs), 1), pad), enc["labels"][:, :-1]], 1)  # shift_tokens_right
    index = torch.tensor(to_ours)
    src = index[enc["input_ids"]]  # Marian's pad -> our PAD
    tgt_in = index[dec_in]
    tgt_in[:, 0] = BOS_ID  # our decoder start: the copy of Marian's decoder_start row
    with torch.no_grad():
        theirs = hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    decoder_input_ids=dec_in).logits  # fmt: skip
        ours = model(src, tgt_in)
    assert ours.shape[-1] == theirs.shape[-1] + 1  # BOS added to the id space
    torch.testing.assert_close(ours[..., index], theirs, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours[..., BOS_ID], ours[..., PAD_ID], rtol=0, atol=0)  # the start row's copy
    # what the checkpoint says about itself
    assert payload["config"]["data"]["src_lang"] == "es" and payload["config"]["data"]["tgt_lang"] == "en"
    assert payload["model_config"]["activation"] == "swish"
    assert payload["model_config"]["positions"] == "sinusoidal_halves"
    assert tokenizer.src_vocab_size == hf.config.vocab_size + 1


def generate(hf, tok, sources, beam, returns=1):
    enc = tok(sources, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = hf.generate(
            **enc, num_beams=beam, num_return_sequences=returns, do_sample=False, max_new_tokens=LIMIT + 1,
            length_penalty=0.0, early_stopping=False, forced_eos_token_id=hf.config.eos_token_id,
            bad_words_ids=[[hf.config.pad_token_id]], output_scores=True, return_dict_in_generate=True,
        )  # fmt: skip
    seqs = []
    for row in out.sequences.tolist():
        row = row[1:]  # the decoder start
        seqs.append(row[: row.index(hf.config.eos_token_id)] if hf.config.eos_token_id in row else row)
    scores = out.sequences_scores.tolist() if beam > 1 else [math.nan] * len(seqs)
    return seqs, scores


def eos_logprob(model, src_ids, tokens):
    """Our log p(</s> | tokens) for one source: what our search charges when it forces </s> at the limit."""
    src = torch.tensor([src_ids + [EOS_ID]])
    with torch.no_grad():
        logits = model(src, torch.tensor([[BOS_ID] + tokens]))[0, -1:].clone()
    return torch.log_softmax(mask_specials(logits), -1)[0, EOS_ID].item()


def test_greedy_and_beam_equal_generate_on_50_sentences(marian):
    """Settings mapped one to one: beam_size = num_beams, alpha 0 = length_penalty 0 (both rank by the raw
    log-probability; GNMT's ((5+L)/6)^alpha and generate()'s L^length_penalty agree only there),
    max_len_a 0 / max_len_b LIMIT = max_new_tokens LIMIT + 1 with forced_eos_token_id (</s> forced after
    LIMIT tokens), pad never generated (bad_words_ids; ours never generates PAD or BOS), and the stopping
    rule: early_stopping=False with length_penalty 0 stops, as ours does, once no live beam can beat the
    N-th finished hypothesis.

    By design the two differ at the length limit only: generate() forces </s> at log-probability 0, ours
    charges log p(</s>). So a hypothesis that reached the limit scores, in ours, its generate() score plus
    our log p(</s>) after it, and the best of the N-best lists is taken after that correction."""
    directory, ckpt, hf, tok, to_ours = marian
    model, tokenizer, _ = load_model(ckpt)
    sources = [s for s, _ in fixture_pairs("dev")[:50]]
    src_ids = [tokenizer.encode(s, "src") for s in sources]
    assert [ours_of(tok(s)["input_ids"][:-1], to_ours) for s in sources] == src_ids

    # generate() has no repetition control (the random model repeats "▁"): ours runs without them too
    greedy = SearchConfig(beam_size=1, max_len_a=0, max_len_b=LIMIT, **REPETITION_OFF)
    theirs, _ = generate(hf, tok, sources, beam=1)
    ours = [h[0].tokens for h in translate_ids(model, src_ids, greedy)]
    assert ours == [ours_of(t, to_ours) for t in theirs]
    lengths = {len(t) for t in ours}
    assert LIMIT in lengths and min(lengths) < LIMIT  # sentences that ended and sentences that hit the limit

    beam = 4
    theirs, scores = generate(hf, tok, sources, beam=beam, returns=beam)
    ours = translate_ids(model, src_ids, SearchConfig(beam_size=beam, nbest=beam, alpha=0.0, max_len_a=0,
                                                      max_len_b=LIMIT, **REPETITION_OFF))  # fmt: skip
    one = SearchConfig(beam_size=beam, alpha=0.0, max_len_a=0, max_len_b=LIMIT, **REPETITION_OFF)
    best = translate_ids(model, src_ids, one)
    ended_early = 0
    for i, hyps in enumerate(ours):
        expected = {}
        for seq, score in zip(theirs[i * beam : (i + 1) * beam], scores[i * beam : (i + 1) * beam]):
            tokens = ours_of(seq, to_ours)
            at_limit = len(tokens) == LIMIT
            expected[tuple(tokens)] = score + (eos_logprob(model, src_ids[i], tokens) if at_limit else 0.0)
            ended_early += not at_limit
        got = {tuple(h.tokens): h.logprob for h in hyps}
        assert set(got) == set(expected), i  # the same N-best hypotheses
        for tokens, logprob in got.items():
            assert logprob == pytest.approx(expected[tokens], abs=1e-4), i
        assert tuple(best[i][0].tokens) == max(expected, key=expected.get), i  # nbest 1: the same best
    assert ended_early > 0  # some hypotheses ended before the limit, where the scores agree unchanged


def test_tokenizer_ids_equal_marian_tokenizer_on_corpus_and_hostile_lines(marian):
    directory, ckpt, hf, tok, to_ours = marian
    _, tokenizer, _ = load_model(ckpt)
    raw, _ = hostile_lines(random.Random(23), 60)
    lines = [line.decode("utf-8", errors="replace") for line in raw]
    pairs = fixture_pairs("dev")[:40]
    lines += [s for s, _ in pairs] + ["", " ", "¿Qué?", "Ölçü ☃ 🙂 日本"]
    for line in lines:
        expected = ours_of(tok(line)["input_ids"], to_ours)
        assert expected == tokenizer.encode(line, "src") + [EOS_ID], repr(line)
    for _, target in pairs:
        expected = ours_of(tok(text_target=target)["input_ids"], to_ours)
        assert expected == tokenizer.encode(target, "tgt") + [EOS_ID]
    # ids -> text: our decode of our ids is MarianTokenizer's decode of its ids
    for _, target in pairs[:10]:
        ids = tok(text_target=target)["input_ids"]
        assert tokenizer.decode(ours_of(ids, to_ours), "tgt") == tok.decode(ids, skip_special_tokens=True)


def test_special_token_text_is_text_in_ours_and_a_token_in_marian_tokenizer(marian):
    """By design: MarianTokenizer turns the strings "</s>", "<unk>", "<pad>" inside the text into those
    tokens; ours keeps text as text (a user cannot end the source early by typing "</s>"). With
    split_special_tokens=True MarianTokenizer does what ours does."""
    directory, ckpt, hf, tok, to_ours = marian
    _, tokenizer, _ = load_model(ckpt)
    line = "Dios </s> es <pad> amor <unk>"
    ours = tokenizer.encode(line, "src") + [EOS_ID]
    assert EOS_ID not in ours[:-1]
    theirs = tok(line)["input_ids"]
    assert theirs.count(hf.config.eos_token_id) == 2 and hf.config.pad_token_id in theirs
    plain = marian_tokenizer(directory, split_special_tokens=True)
    assert ours_of(plain(line)["input_ids"], to_ours) == ours


def test_a_leading_language_token_stays_whole_as_in_marian_tokenizer(marian, tmp_path):
    """Multilingual OPUS-MT targets start the source with >>xx<<; both tokenizers keep it as one token."""
    directory = tmp_path / "multi"
    shutil.copytree(marian[0], directory)
    vocab = read_json(directory / "vocab.json")
    vocab[">>fra<<"] = vocab.pop("<pad>")
    vocab["<pad>"] = len(vocab)
    cfg = read_json(directory / "config.json")
    (directory / "vocab.json").write_text(json.dumps(vocab))
    cfg.update(vocab_size=len(vocab), decoder_vocab_size=len(vocab), pad_token_id=len(vocab) - 1,
               decoder_start_token_id=len(vocab) - 1)  # fmt: skip
    tok = marian_tokenizer(directory)
    from translate.data.tokenizer import Tokenizer

    o2m, pieces = id_map(vocab, cfg, directory)
    ours = Tokenizer((directory / "source.spm").read_bytes(), (directory / "target.spm").read_bytes(), pieces)
    to_ours = marian_to_ours(o2m)
    for line in (">>fra<< Dios es amor.", ">>fra<<Dios", "Dios >>fra<< es", ">>xyz<< luz", ">> no code"):
        assert ours_of(tok(line)["input_ids"], to_ours) == ours.encode(line, "src") + [EOS_ID], line
    assert ours.encode(">>fra<< Dios", "src")[0] == pieces.index(">>fra<<")


def test_ct2_export_matches_ctranslate2s_own_converter(marian, tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from translate.engines.ct2_export import export_ct2

    directory, ckpt, hf, tok, to_ours = marian
    ours_dir = export_ct2(ckpt, tmp_path / "ours", quantization="float32")
    theirs_dir = tmp_path / "theirs"
    converter = ctranslate2.converters.TransformersConverter(str(directory))
    converter.convert(str(theirs_dir), quantization="float32")
    ours = ctranslate2.Translator(str(ours_dir), intra_threads=1)
    theirs = ctranslate2.Translator(str(theirs_dir), intra_threads=1)
    sources = [s for s, _ in fixture_pairs("dev")[:20]]
    pieces = [tok.convert_ids_to_tokens(tok(s)["input_ids"]) for s in sources]  # </s> included
    for beam in (1, 3):
        options = dict(beam_size=beam, max_decoding_length=LIMIT)
        # our export adds </s> itself and holds <pad> and <s> (never generated, as translate/engines/ct2.py
        # asks); CTranslate2's converter drops Marian's pad and starts from a zero embedding (the pad row)
        a = ours.translate_batch([p[:-1] for p in pieces], suppress_sequences=[["<pad>"], ["<s>"]], **options)
        b = theirs.translate_batch(pieces, **options)
        assert [r.hypotheses[0] for r in a] == [r.hypotheses[0] for r in b]
        assert len({len(r.hypotheses[0]) for r in a}) > 1


def test_imported_checkpoint_translates_and_quantizes_through_the_cli(marian, tmp_path, capsys):
    from translate.cli import main

    directory, ckpt, hf, tok, to_ours = marian
    fast = ["--beam", "1", "--max-len-a", "0", "--max-len-b", str(LIMIT)]
    sources = [s for s, _ in fixture_pairs("dev")[:6]]
    for extra in ([], ["--quantize", "int8"]):
        assert main(["-c", str(ckpt), *fast, *extra, *sources]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == len(sources), extra
    # (the random model ends most sentences at once or repeats "▁": its lines are mostly empty) ids -> text
    # through the shared vocabulary as MarianTokenizer decodes them
    model, tokenizer, _ = load_model(ckpt)
    verses = [s for s, _ in fixture_pairs("dev")[:50]]
    hyps = translate_ids(model, [tokenizer.encode(s, "src") for s in verses],
                         SearchConfig(beam_size=1, max_len_a=0, max_len_b=LIMIT))  # fmt: skip
    texts = [tokenizer.decode(h[0].tokens, "tgt") for h in hyps]
    theirs = [tok.decode([tok_id(t, to_ours) for t in h[0].tokens], skip_special_tokens=True) for h in hyps]
    assert any(h[0].tokens for h in hyps) and texts == theirs


def test_refusals_are_one_line_and_name_what(marian, tmp_path):
    directory = marian[0]

    def variant(name, edit_config=None, drop=None):
        d = tmp_path / name
        shutil.copytree(directory, d)
        if edit_config:
            cfg = read_json(d / "config.json")
            edit_config(cfg)
            (d / "config.json").write_text(json.dumps(cfg))
        if drop:
            (d / drop).unlink()
        return d

    cases = {
        "separate source and target vocabularies": variant("sep", lambda c: c.update(decoder_vocab_size=7)),
        "activation_function 'tanh'": variant("act", lambda c: c.update(activation_function="tanh")),
        "model_type 'bart'": variant("bart", lambda c: c.update(model_type="bart")),
        "not tied": variant("untied", lambda c: c.update(tie_word_embeddings=False)),
        "encoder and decoder head counts": variant("heads", lambda c: c.update(decoder_attention_heads=1)),
        "target.spm: missing": variant("spm", drop="target.spm"),
        "no model.safetensors or pytorch_model.bin": variant("weights", drop="model.safetensors"),
    }
    for message, d in cases.items():
        with pytest.raises(MarianImportError, match=message) as e:
            import_marian(str(d))
        assert "\n" not in str(e.value)
    extra = variant("extra")
    from safetensors.torch import load_file, save_file

    weights = load_file(str(extra / "model.safetensors"))
    weights["model.encoder.layer_norm.weight"] = torch.ones(4)  # a final encoder LayerNorm: not Marian's
    save_file(weights, str(extra / "model.safetensors"))
    with pytest.raises(MarianImportError, match="encoder.layer_norm.weight has no place"):
        import_marian(str(extra))
    assert import_main(["marian", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()
