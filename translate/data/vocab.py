"""Special token ids shared by the tokenizer, the batches, the models and the search.

SentencePiece is trained with exactly these ids (pad_id=0 unk_id=1 bos_id=2 eos_id=3), so a model never
needs the tokenizer to know which id pads or ends a sentence.
"""

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3

PAD_PIECE = "<pad>"
UNK_PIECE = "<unk>"
BOS_PIECE = "<s>"
EOS_PIECE = "</s>"

SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
