# ruff: noqa: E501  (raw module snippets are kept verbatim, so some lines run long)
"""Cleaning of raw OSIS verses, on snippets copied verbatim from the SWORD modules engWEB2015eb (WEB)
and spaRV1909eb (RV1909). No SWORD installation needed."""

import pytest
from bible_clean import (
    casing_table,
    clean_verse,
    fix_opening_capitals,
    normalize_text,
    strip_osis,
    strip_subscription,
)

# WEB Gen 1:1: a footnote sits between two <w> elements with no whitespace around it.
WEB_GEN_1_1 = (
    '<w lemma="strong:H0430">In</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H7225">beginning</w>, '
    '<w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">1:1 </reference>'
    "The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note>"
    '<w lemma="strong:H1254">created</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H8064">heavens</w> '
    '<w lemma="strong:H0430">and</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H0776">earth</w>. \n'
)

# WEB John 3:16: words of Jesus in <q>, a footnote between "born" and "Son" across two <q> elements.
WEB_JOHN_3_16 = (
    '<q marker="" who="Jesus"><w lemma="strong:G1063">For</w> <w lemma="strong:G2316">God</w> '
    '<w lemma="strong:G2443">so</w> <w lemma="strong:G0025">loved</w> <w lemma="strong:G3956">the</w> '
    '<w lemma="strong:G2889">world</w>, <w lemma="strong:G2443">that</w> <w lemma="strong:G0846">he</w> '
    '<w lemma="strong:G1325">gave</w> <w lemma="strong:G0846">his</w> <w lemma="strong:G3439">only</w> born</q>'
    '<note placement="foot"><reference type="annotateRef">3:16 </reference>The phrase “only born” is from the '
    "Greek word “μονογενη”, which is sometimes translated “only begotten” or “one and only”.</note>"
    '<q marker="" who="Jesus"><w lemma="strong:G5207">Son</w>, <w lemma="strong:G2443">that</w> '
    '<w lemma="strong:G3588">whoever</w> <w lemma="strong:G4100">believes</w> <w lemma="strong:G1519">in</w> '
    '<w lemma="strong:G0846">him</w> <w lemma="strong:G2443">should</w> <w lemma="strong:G3361">not</w> '
    '<w lemma="strong:G0622">perish</w>, <w lemma="strong:G0235">but</w> <w lemma="strong:G2192">have</w> '
    '<w lemma="strong:G0166">eternal</w> <w lemma="strong:G2222">life</w>. </q>'
)


def test_note_between_words_leaves_a_space():
    assert clean_verse(WEB_GEN_1_1) == "In the beginning, God created the heavens and the earth."


def test_note_between_quoted_words_leaves_a_space():
    assert clean_verse(WEB_JOHN_3_16) == (
        "For God so loved the world, that he gave his only born Son, that whoever believes in him "
        "should not perish, but have eternal life."
    )


def test_note_after_comma_and_closing_quotes():
    # WEB Matt 4:10 (shortened): comma, </q>, footnote, <q>, word; then a cross-reference note at the end.
    raw = (
        '<div type="x-milestone" subType="x-preverse" sID="pv13799"/><div sID="gen30335" type="x-p"/>'
        '<div type="x-milestone" subType="x-preverse" eID="pv13799"/><w lemma="strong:G2532">Then</w> '
        '<w lemma="strong:G2424">Jesus</w> <w lemma="strong:G3004">said</w> <w lemma="strong:G3004">to</w> '
        '<w lemma="strong:G0846">him</w>, <q marker="" who="Jesus">“<w lemma="strong:G5217">Get</w> behind '
        '<w lemma="strong:G3004">me</w>,</q><note placement="foot"><reference type="annotateRef">4:10 '
        "</reference>TR and NU read “Go away” instead of “Get behind me”</note>"
        '<q marker="" who="Jesus"><w lemma="strong:G4567">Satan</w>! <w lemma="strong:G1063">For</w> '
        '<w lemma="strong:G0846">it</w> <w lemma="strong:G2316">is</w> <w lemma="strong:G1125">written</w>, '
        '‘<w lemma="strong:G4771">You</w> <w lemma="strong:G2532">shall</w> <w lemma="strong:G4352">worship</w> '
        '<w lemma="strong:G3000">serve</w> <w lemma="strong:G0846">him</w> <w lemma="strong:G3441">only</w>.’”</q>'
        '<note type="crossReference"><reference subType="x-origin" type="annotateRef">4:10 </reference>'
        '<reference>Deuteronomy 6:13</reference></note><div eID="gen30335" type="x-p"/>'
    )
    assert clean_verse(raw) == (
        "Then Jesus said to him, “Get behind me, Satan! For it is written, ‘You shall worship serve him only.’”"
    )


def test_closing_quote_then_word_and_note_before_punctuation():
    # WEB Matt 3:15 tail: .”</q><w>Then  ->  a space after the closing quote.
    raw = (
        '<w lemma="strong:G1343">righteousness</w>.”</q><w lemma="strong:G5119">Then</w> '
        '<w lemma="strong:G0846">he</w> <w lemma="strong:G0863">allowed</w> <w lemma="strong:G0846">him</w>. '
        '<div eID="gen30321" type="x-p"/>'
    )
    assert clean_verse(raw) == "righteousness.” Then he allowed him."
    # WEB Exod 30:13: a footnote right before ");" must not leave a space.
    raw = (
        '(<w lemma="strong:H3605">the</w> <w lemma="strong:H8255">shekel</w> <w lemma="strong:H3068">is</w> '
        '<w lemma="strong:H6242">twenty</w> <w lemma="strong:H1626">gerahs</w><note placement="foot">'
        '<reference type="annotateRef">30:13 </reference>a gerah is about 0.5 grams or about 7.7 grains</note>); '
        '<w lemma="strong:H4276">half</w>'
    )
    assert clean_verse(raw) == "(the shekel is twenty gerahs); half"


def test_psalm_title_kept_speaker_and_markup_dropped():
    # WEB Ps 3:1: the superscription is canonical (RV1909 has it as plain text in verse 1).
    raw = (
        '<div type="x-milestone" subType="x-preverse" sID="pv4877"/><title canonical="true" type="psalm">'
        'A Psalm by David, when he fled from Absalom his son.</title> <lg sID="gen7860"/> '
        '<l level="1" sID="gen7861"/><div type="x-milestone" subType="x-preverse" eID="pv4877"/>Yahweh, how '
        '<w lemma="strong:H1732">my</w> adversaries <w lemma="strong:H1121">have</w> increased!'
        '<l eID="gen7861" level="1"/> <l level="2" sID="gen7862"/>Many <w lemma="strong:H1121">are</w>'
    )
    assert clean_verse(raw) == (
        "A Psalm by David, when he fled from Absalom his son. Yahweh, how my adversaries have increased! Many are"
    )
    # WEB Song 1:2: the <speaker> label is not part of the text.
    raw = (
        '<div type="x-milestone" subType="x-preverse" sID="pv8242"/><speaker>Beloved</speaker> '
        '<lg sID="gen15617"/> <l level="1" sID="gen15618"/><div type="x-milestone" subType="x-preverse" '
        'eID="pv8242"/>Let <w lemma="strong:H3588">him</w> kiss <w lemma="strong:H3588">me</w>'
    )
    assert clean_verse(raw) == "Let him kiss me"


def test_non_canonical_title_and_text_after_book_end_dropped():
    # WEB Rev 22:21 (cut): the module appends its glossary after the book's closing <div>.
    raw = (
        '<w lemma="strong:G3956">with</w> <w lemma="strong:G3956">all</w> <w lemma="strong:G3956">the</w> '
        'saints. Amen.  <chapter eID="Rev.22"/><div eID="gen35836" type="x-p"/> '
        '<div canonical="true" eID="gen35575" osisID="Rev" type="book"/> <div sID="gen35837" type="glossary"/> '
        '<milestone n="Glossary" type="x-usfm-h"/> <title level="1" type="main">World English Bible Glossary'
        "</title> The following words used in the World English Bible (WEB) are not very common"
    )
    assert clean_verse(raw) == "with all the saints. Amen."
    assert strip_osis('A<title type="section">Heading</title> b') == "A b"


def test_rv1909_added_words_inside_and_between_words():
    # RV1909 Gen 2:12: an added word between two <w> elements needs spaces on both sides.
    raw = (
        '<w lemma="strong:H2896">es bueno</w>: <w lemma="strong:H8033">hay allí</w><transChange type="added">'
        'también</transChange><w lemma="strong:H0916">bdelio</w> <w lemma="strong:H0068">y piedra</w> '
        '<w lemma="strong:H7718">cornerina</w>. '
    )
    assert clean_verse(raw) == "es bueno: hay allí también bdelio y piedra cornerina."
    # RV1909 1 Chr 10:13: an added enclitic pronoun is part of the word.
    raw = '<w lemma="strong:H0178">al pythón</w>, preguntándo<transChange type="added">le</transChange>, '
    assert clean_verse(raw) == "al pythón, preguntándole,"
    # RV1909 Josh 13:17: a hyphenated name split over two <w> elements.
    raw = '<w lemma="strong:H1120">y Beth-baal</w>-<w lemma="strong:H1010">meón</w>; '
    assert clean_verse(raw) == "y Beth-baal-meón;"


def test_entities_nfc_whitespace_and_numbers():
    assert normalize_text("Tom &amp; Jerry  said\n\t“hi”") == "Tom & Jerry said “hi”"
    assert normalize_text("creo\u0301") == "creó"  # decomposed accent -> NFC
    assert normalize_text("¿ Qué ?") == "¿Qué?"
    assert strip_osis('<w lemma="x">1</w>,<w lemma="x">000</w>') == "1,000"
    assert clean_verse("") == ""


CASING = {"david": "David", "jehová": "Jehová"}


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "EN el principio crió Dios los cielos y la tierra.",
            "En el principio crió Dios los cielos y la tierra.",
        ),
        ("Y ACONTECIÓ en los días de Amraphel", "Y aconteció en los días de Amraphel"),
        ("Y DAVID huyó de Najoth", "Y David huyó de Najoth"),  # a name keeps its capital
        ("Y JEHOVÁ dijo á Noé", "Y Jehová dijo á Noé"),
        ("Y Á SUS discípulos dice", "Y á sus discípulos dice"),
        ("¿CAZARÁS tú la presa para el león?", "¿Cazarás tú la presa para el león?"),
        ("DE VEINTICINCO años era Amasías", "De veinticinco años era Amasías"),
        ("Y EZECHÎAS comenzó á reinar", "Y ezechîas comenzó á reinar"),  # unknown word: lower case
        # Psalm superscription first, then the capitalised opening.
        (
            "Salmo de David. A TI, oh Jehová, levantaré mi alma.",
            "Salmo de David. A ti, oh Jehová, levantaré mi alma.",
        ),
        ("Para Salomón. OH Dios, da tus juicios al rey,", "Para Salomón. Oh Dios, da tus juicios al rey,"),
        # Psalm 119's stanza letter is a label: the word after it is the opening.
        ("ALEPH. BIENAVENTURADOS los perfectos", "ALEPH. Bienaventurados los perfectos"),
        ("ALELUYA. Alabad á Jehová", "Aleluya. Alabad á Jehová"),
        # Only the first run changes: a later inscription keeps its capitals.
        ("Y DIJO Dios á Moisés: YO SOY EL QUE SOY.", "Y dijo Dios á Moisés: YO SOY EL QUE SOY."),
        ("Y el ángel dijo", "Y el ángel dijo"),  # nothing to fix
    ],
)
def test_fix_opening_capitals(text, expected):
    assert fix_opening_capitals(text, CASING) == expected


def test_casing_table_ignores_sentence_starts_and_capitals():
    texts = [
        "Y dijo Jehová á Moisés.",
        "Entonces Jehová habló. Yo soy.",  # "Yo" starts a sentence: not evidence
        "y dijo yo no sé, dijo David",
        "Y YO me paré",  # all capitals: not evidence
    ]
    table = casing_table(texts)
    assert table["jehová"] == "Jehová" and table["david"] == "David"
    assert "yo" not in table and "dijo" not in table


def test_strip_subscription_keeps_the_verse_and_amen():
    # RV1909 Heb 13:25 and Phil 4:23, cleaned.
    assert (
        strip_subscription(
            "La gracia sea con todos vosotros. Amén. Fué escrita á los Hebreos desde Italia con Timoteo."
        )
        == "La gracia sea con todos vosotros. Amén."
    )
    assert strip_subscription("sea con todos vosotros. Amén. Escrita de Roma con Epafrodito.") == (
        "sea con todos vosotros. Amén."
    )
    # A closing doxology without a colophon is untouched (Jude 1:25), as is "escrita" mid-verse.
    jude = "ahora y en todos los siglos. Amén."
    assert strip_subscription(jude) == jude
    text = "Amén. Y la escritura que esculpió es: MENE."
    assert strip_subscription(text) == text
